"""The Azure Responses calls of LiteLLM's documentation, metered through ``meter.integrations.litellm``.

Each documented call runs against the emulator; meter must give exactly one
record per HTTP call, with the emulator's billed usage, a list-price cost equal
to the price book's own computation, and LiteLLM's return value untouched.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

import meter
from meter.apps.emulator import Emulator
from meter.pricing import PriceBook
from tests.litellm.conftest import API_KEY, DEPLOYMENT_TYPE, DEPLOYMENTS

litellm: Any = pytest.importorskip(
    "litellm", reason="LiteLLM is not installed: pip install litellm (optional test extra)")

# LiteLLM's own pydantic noise (its models, not meter's).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
    pytest.mark.filterwarnings("ignore:Items? .* (is|are) using the `ReadOnly` qualifier:UserWarning"),
]

STORY = "Tell me a three sentence bedtime story about a unicorn."
O1_PRO_VERSION = "2023-03-15-preview"


def _flush() -> None:
    """Wait for the instrumented meter's metering thread: records reach ``records`` there, after the call."""
    from meter.integrations import litellm as integration

    current = integration._meter  # the Meter the ``records`` fixture instrumented LiteLLM with
    if current is not None:
        current.flush()


def _only_call(records: list[meter.CallRecord], emu: Emulator) -> tuple[meter.CallRecord, dict[str, Any]]:
    """The single record and the single ledger entry of a test that made one HTTP call."""
    _flush()
    assert len(emu.usage_log) == 1, emu.usage_log
    assert len(records) == 1, records
    return records[0], emu.usage_log[0]


def _check(record: meter.CallRecord, billed: dict[str, Any], book: PriceBook, *, deployment: str,
           api_version: str, stream: bool, response: Any) -> None:
    """The record is a complete, correctly priced Responses record of the billed call.

    ``response`` is the Responses object LiteLLM handed back (or its final stream event's): with
    ``max_output_tokens=100`` a reasoning model may stop early, and then the call is ``incomplete``
    in both, for the same reason.
    """
    assert (record.api, record.operation, record.status_code) == ("responses", "create", 200)
    assert record.response_id == _wire_id(response.id)
    if response.status == "incomplete":
        assert record.outcome == "incomplete"
        assert record.finish_reasons == (response.incomplete_details.reason,)
    else:
        assert (record.outcome, response.status) == ("ok", "completed")
    assert (record.deployment, record.request_model) == (deployment, deployment)
    assert record.provider == "azure.ai.openai"
    assert record.api_version == api_version
    assert record.stream is stream is billed["stream"]
    assert record.azure.apim_request_id == billed["request_id"]
    usage, want = record.usage, billed["usage"]
    assert usage is not None and record.usage_source == ("stream" if stream else "response")
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_output_tokens,
            usage.total_tokens) == (want["input_tokens"], want["input_tokens_details"]["cached_tokens"],
                                    want["output_tokens"], want["output_tokens_details"]["reasoning_tokens"],
                                    want["total_tokens"])
    assert usage.reasoning_output_tokens > 0  # every deployment here is a reasoning model
    model = DEPLOYMENTS[deployment][1]
    expected = book.cost_of(usage, model=model, deployment_type=DEPLOYMENT_TYPE, at=record.started_at)
    cost = record.cost
    assert cost is not None and cost.basis == "list" and cost.model == expected.model
    assert record.deployment_type == DEPLOYMENT_TYPE
    assert cost.total is not None and cost.total == expected.total and cost.total > 0


def _check_response(response: Any, billed: dict[str, Any]) -> None:
    """LiteLLM's ``ResponsesAPIResponse`` carries the text and the same usage."""
    assert response.output_text.strip()
    want = billed["usage"]
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (
        want["input_tokens"], want["output_tokens"], want["total_tokens"])
    assert response.usage.output_tokens_details.reasoning_tokens == want["output_tokens_details"]["reasoning_tokens"]


def _wire_id(litellm_id: str) -> str:
    """The Azure response id inside an id LiteLLM handed back.

    LiteLLM returns ``resp_`` + base64 of ``litellm:custom_llm_provider:azure;model_id:...;response_id:<id>``
    (so it can route ``previous_response_id`` later); meter records the id Azure sent.
    """
    try:
        decoded = base64.b64decode(litellm_id.removeprefix("resp_"), validate=True).decode()
    except ValueError:
        return litellm_id
    return decoded.rsplit("response_id:", 1)[1] if "response_id:" in decoded else litellm_id


def _bridged(response: Any) -> SimpleNamespace:
    """What the chat-shaped answer of the completion bridge says about the Responses call under it."""
    assert response.choices[0].finish_reason == "stop"
    return SimpleNamespace(id=response.id, status="completed")


def _stream_text(events: list[Any]) -> str:
    return "".join(event.delta for event in events if str(event.type).endswith("output_text.delta")
                   or event.type == "response.output_text.delta")


def _final(events: list[Any]) -> Any:
    """The Responses object of the stream's terminal event."""
    done = [event for event in events if event.type in ("response.completed", "response.incomplete")]
    assert len(done) == 1, [event.type for event in events]
    return done[0].response


# --- litellm.responses(model="azure/o1-pro", ..., api_version="2023-03-15-preview") -------------------------------


def test_o1_pro(emu: Emulator, records: list[meter.CallRecord], seen: list[str], book: PriceBook) -> None:
    response = litellm.responses(model="azure/o1-pro", input=STORY, max_output_tokens=100, api_key=API_KEY,
                                 api_base=emu.url, api_version=O1_PRO_VERSION)
    record, billed = _only_call(records, emu)
    assert seen == [f"POST /openai/responses?api-version={O1_PRO_VERSION}"]
    _check(record, billed, book, deployment="o1-pro", api_version=O1_PRO_VERSION, stream=False, response=response)
    _check_response(response, billed)


def test_o1_pro_stream(emu: Emulator, records: list[meter.CallRecord], seen: list[str], book: PriceBook) -> None:
    """LiteLLM's model map says o1-pro cannot stream, so LiteLLM asks for one JSON answer and replays it as events.

    The HTTP call is therefore not a stream (nor is it billed as one); meter meters what went over the wire.
    """
    events = list(litellm.responses(model="azure/o1-pro", input=STORY, max_output_tokens=100, api_key=API_KEY,
                                    api_base=emu.url, api_version=O1_PRO_VERSION, stream=True))
    record, billed = _only_call(records, emu)
    assert seen == [f"POST /openai/responses?api-version={O1_PRO_VERSION}"]
    final = _final(events)
    _check(record, billed, book, deployment="o1-pro", api_version=O1_PRO_VERSION, stream=False, response=final)
    assert _stream_text(events).strip()
    assert final.usage is not None


# --- litellm.responses(model="azure/codex-mini", ..., api_version="preview"): the /openai/v1/ path ----------------


def test_codex_mini_preview_goes_to_v1(emu: Emulator, records: list[meter.CallRecord], seen: list[str],
                                       book: PriceBook) -> None:
    response = litellm.responses(model="azure/codex-mini", input=STORY, max_output_tokens=100, api_key=API_KEY,
                                 api_base=emu.url, api_version="preview")
    record, billed = _only_call(records, emu)
    assert seen == ["POST /openai/v1/responses?api-version=preview"]
    _check(record, billed, book, deployment="codex-mini", api_version="preview", stream=False, response=response)
    _check_response(response, billed)


def test_codex_mini_preview_stream(emu: Emulator, records: list[meter.CallRecord], seen: list[str],
                                   book: PriceBook) -> None:
    """codex-mini streams for real: meter reads the usage from the SSE events as LiteLLM consumes them."""
    events = list(litellm.responses(model="azure/codex-mini", input=STORY, max_output_tokens=100, api_key=API_KEY,
                                    api_base=emu.url, api_version="preview", stream=True))
    record, billed = _only_call(records, emu)
    assert seen == ["POST /openai/v1/responses?api-version=preview"]
    final = _final(events)
    _check(record, billed, book, deployment="codex-mini", api_version="preview", stream=True, response=final)
    assert record.time_to_first_token_s is not None
    assert _stream_text(events).strip()
    assert final.usage.output_tokens == billed["usage"]["output_tokens"]


# --- litellm.completion(model="azure/responses/my-custom-o1-pro", messages=[...]) --------------------------------


def test_completion_bridged_to_responses(emu: Emulator, records: list[meter.CallRecord], seen: list[str],
                                         book: PriceBook) -> None:
    response = litellm.completion(model="azure/responses/my-custom-o1-pro",
                                  messages=[{"role": "user", "content": "Hello world"}],
                                  api_base=emu.url + "/", api_version=O1_PRO_VERSION, api_key=API_KEY)
    record, billed = _only_call(records, emu)
    assert len(seen) == 1 and seen[0].endswith(f"/openai/responses?api-version={O1_PRO_VERSION}")
    _check(record, billed, book, deployment="my-custom-o1-pro", api_version=O1_PRO_VERSION, stream=False,
           response=_bridged(response))
    assert response.choices[0].message.content.strip()
    want = billed["usage"]
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (
        want["input_tokens"], want["output_tokens"], want["total_tokens"])


# --- async twins: litellm.aresponses / litellm.acompletion (LiteLLM's aiohttp transport inside meter's) -----------


async def test_async_o1_pro(emu: Emulator, records: list[meter.CallRecord], seen: list[str], book: PriceBook) -> None:
    response = await litellm.aresponses(model="azure/o1-pro", input=STORY, max_output_tokens=100, api_key=API_KEY,
                                        api_base=emu.url, api_version=O1_PRO_VERSION)
    record, billed = _only_call(records, emu)
    assert seen == [f"POST /openai/responses?api-version={O1_PRO_VERSION}"]
    _check(record, billed, book, deployment="o1-pro", api_version=O1_PRO_VERSION, stream=False, response=response)
    _check_response(response, billed)


async def test_async_codex_mini_stream(emu: Emulator, records: list[meter.CallRecord], seen: list[str],
                                       book: PriceBook) -> None:
    stream = await litellm.aresponses(model="azure/codex-mini", input=STORY, max_output_tokens=100, api_key=API_KEY,
                                      api_base=emu.url, api_version="preview", stream=True)
    events = [event async for event in stream]
    record, billed = _only_call(records, emu)
    assert seen == ["POST /openai/v1/responses?api-version=preview"]
    _check(record, billed, book, deployment="codex-mini", api_version="preview", stream=True,
           response=_final(events))
    assert _stream_text(events).strip()


async def test_async_completion_bridged_to_responses(emu: Emulator, records: list[meter.CallRecord],
                                                     seen: list[str], book: PriceBook) -> None:
    response = await litellm.acompletion(model="azure/responses/my-custom-o1-pro",
                                         messages=[{"role": "user", "content": "Hello world"}],
                                         api_base=emu.url, api_version=O1_PRO_VERSION, api_key=API_KEY)
    record, billed = _only_call(records, emu)
    assert seen == [f"POST /openai/responses?api-version={O1_PRO_VERSION}"]
    _check(record, billed, book, deployment="my-custom-o1-pro", api_version=O1_PRO_VERSION, stream=False,
           response=_bridged(response))
    assert response.choices[0].message.content.strip()


# --- the switch itself ------------------------------------------------------------------------------------------


def test_uninstrument_stops_metering_and_instrument_covers_cached_handlers(
        emu: Emulator, records: list[meter.CallRecord]) -> None:
    from meter.integrations import litellm as integration

    call = dict(model="azure/o1-pro", input=STORY, max_output_tokens=100, api_key=API_KEY, api_base=emu.url,
                api_version=O1_PRO_VERSION)
    integration.uninstrument()
    assert not integration.is_instrumented()
    litellm.responses(**call)  # LiteLLM builds (and caches) a plain handler
    _flush()
    assert records == [] and len(emu.usage_log) == 1

    other: list[meter.CallRecord] = []
    first = meter.Meter(on_record=other.append, prometheus=False, otel=False)
    last = meter.Meter(on_record=records.append, prometheus=False, otel=False)
    integration.instrument(first)
    integration.instrument(last)  # the last one wins
    assert integration.is_instrumented()
    litellm.responses(**call)  # the cached handler from before instrument() is metered now
    first.flush()
    last.flush()
    assert other == [] and len(records) == 1 and records[0].usage is not None

    integration.uninstrument()
    integration.uninstrument()  # idempotent
    litellm.responses(**call)
    first.flush()
    last.flush()
    assert len(records) == 1 and len(emu.usage_log) == 3


def test_import_meter_does_not_import_litellm() -> None:
    code = ("import sys, meter, meter.integrations.litellm as m; "
            "assert 'litellm' not in sys.modules, 'litellm imported'; m.uninstrument(); "
            "assert 'litellm' not in sys.modules and not m.is_instrumented()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
