"""The openai SDK pointed at the proxy: same answers as direct, and the meter bills what the emulator billed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from meter.apps.emulator import Emulator
from meter.apps.proxy import ProxyServer
from tests.proxy.conftest import API_KEY, API_VERSION, Metered

MESSAGES: Any = [{"role": "user", "content": "Proxy me carefully"}]


def _billed(billed: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """(input, cached, output, reasoning, total) from either usage shape the emulator bills in."""
    if "input_tokens" in billed:
        return (billed["input_tokens"], billed["input_tokens_details"]["cached_tokens"], billed["output_tokens"],
                billed["output_tokens_details"]["reasoning_tokens"], billed["total_tokens"])
    details = billed.get("completion_tokens_details") or {"reasoning_tokens": 0}
    return (billed["prompt_tokens"], (billed.get("prompt_tokens_details") or {"cached_tokens": 0})["cached_tokens"],
            billed.get("completion_tokens", 0), details["reasoning_tokens"], billed["total_tokens"])


def _assert_agrees(metered: Metered, emu: Emulator, count: int) -> None:
    records = metered.wait_records(count)
    assert len(records) == len(emu.usage_log) == count
    for record, billed in zip(records, emu.usage_log, strict=True):
        assert record.outcome == "ok", record
        assert (record.api, record.stream, record.deployment) == (billed["api"], billed["stream"], billed["deployment"])
        assert record.usage is not None and record.usage_source in ("response", "stream"), record
        usage = record.usage
        assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_output_tokens,
                usage.total_tokens) == _billed(billed["usage"])
        assert record.azure.apim_request_id == billed["request_id"]


@pytest.fixture
def azure(proxy: ProxyServer) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(azure_endpoint=proxy.url, api_key=API_KEY, api_version=API_VERSION,
                            max_retries=0) as client:
        yield client


def test_azure_sdk_calls_are_metered_as_billed(azure: openai.AzureOpenAI, emu: Emulator, metered: Metered) -> None:
    azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    chunks = list(azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None
    azure.chat.completions.create(model="o4-mini", messages=MESSAGES, max_completion_tokens=50)
    azure.responses.create(model="gpt-5", input="Proxy me carefully")
    with azure.responses.stream(model="gpt-5", input="Proxy me as a stream") as stream:
        final = stream.get_final_response()
    assert final.usage is not None
    azure.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    _assert_agrees(metered, emu, 6)


def test_v1_sdk_calls_are_metered_as_billed(proxy: ProxyServer, emu: Emulator, metered: Metered) -> None:
    with openai.OpenAI(base_url=proxy.url + "/openai/v1/", api_key=API_KEY, max_retries=0) as v1:
        list(v1.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                        stream_options={"include_usage": True}))
        with v1.responses.stream(model="gpt-4o-mini", input="Proxy me as a stream") as stream:
            stream.get_final_response()
    _assert_agrees(metered, emu, 2)


def _same(text: str) -> str:
    """The answer without what differs on every call (ids, timestamps); everything else must match."""
    text = re.sub(r"(chatcmpl|resp|msg|rs)[-_][0-9a-zA-Z]+", "ID", text)
    return re.sub(r'"(created|created_at|completed_at)":\d+', r'"\1":0', text)


def test_answers_are_the_same_as_direct(azure: openai.AzureOpenAI, emu: Emulator, metered: Metered) -> None:
    """Bodies through the proxy equal direct ones; a stream without include_usage gets no usage chunk added."""
    with openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=API_VERSION,
                            max_retries=0) as direct:
        calls = [
            lambda c: c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES),
            lambda c: c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES,
                                                                  stream=True),
            lambda c: c.responses.with_raw_response.create(model="gpt-4o-mini", input="Same", stream=True),
        ]
        for call in calls:
            want = call(direct).http_response.read().decode()
            got = call(azure).http_response.read().decode()
            assert _same(got) == _same(want)
            assert got != want  # the ids differ: these really are two answers
    chat_stream = metered.wait_records(3)[1]
    assert chat_stream.stream and chat_stream.usage_source == "estimated"  # nothing injected by default


def test_a_meter_that_injects_include_usage_gets_exact_stream_usage(emu: Emulator) -> None:
    metered = Metered(emu.url, inject_stream_usage=True)
    with ProxyServer(emu.url, meter=metered.meter) as proxy, \
            openai.AzureOpenAI(azure_endpoint=proxy.url, api_key=API_KEY, api_version=API_VERSION) as client:
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    _assert_agrees(metered, emu, 1)


def test_errors_pass_through_and_are_metered(azure: openai.AzureOpenAI, emu: Emulator, metered: Metered) -> None:
    emu.fail_next(429)
    with pytest.raises(openai.RateLimitError) as caught:
        azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.response.headers.get("retry-after")
    with pytest.raises(openai.NotFoundError):
        azure.chat.completions.create(model="no-such-deployment", messages=MESSAGES)
    first, second = metered.wait_records(2)
    assert (first.outcome, first.status_code, first.error_code) == ("http_error", 429, "429")
    assert (second.outcome, second.status_code, second.error_code) == ("http_error", 404, "DeploymentNotFound")
