"""The meter, wrapped around the real SDK, bills what the emulator billed."""

from __future__ import annotations

from typing import Any

import openai

import meter
from meter.apps.emulator import Emulator
from tests.emulator.conftest import API_KEY, API_VERSION

MESSAGES = [{"role": "user", "content": "Meter me carefully"}]


def _expected(billed: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """(input, cached, output, reasoning, total) from either usage shape."""
    if "input_tokens" in billed:
        return (billed["input_tokens"], billed["input_tokens_details"]["cached_tokens"], billed["output_tokens"],
                billed["output_tokens_details"]["reasoning_tokens"], billed["total_tokens"])
    return (billed["prompt_tokens"], billed["prompt_tokens_details"]["cached_tokens"], billed["completion_tokens"],
            billed["completion_tokens_details"]["reasoning_tokens"], billed["total_tokens"])


def test_records_match_the_emulator_bill(emu: Emulator) -> None:
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append)
    client = meter.wrap(
        openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=API_VERSION), meter=m)
    for deployment in ("gpt-4o-mini", "gpt-5"):
        client.chat.completions.create(model=deployment, messages=MESSAGES)
        for _ in client.chat.completions.create(model=deployment, messages=MESSAGES, stream=True):
            pass  # the meter injects include_usage
        client.responses.create(model=deployment, input="Meter me carefully")
        with client.responses.stream(model=deployment, input="Meter me as a stream") as stream:
            stream.get_final_response()
    m.flush()
    assert len(records) == len(emu.usage_log) == 8
    for record, billed in zip(records, emu.usage_log, strict=True):
        assert (record.api, record.stream, record.deployment) == (billed["api"], billed["stream"],
                                                                  billed["deployment"])
        assert record.usage is not None, record
        usage = record.usage
        assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_output_tokens,
                usage.total_tokens) == _expected(billed["usage"])
        assert record.azure.apim_request_id == billed["request_id"]
