"""Built-in tool calls (issue 22, item 2): counted from the output items, per call, over real loopback sockets.

The recorded cases of ``../shared/conformance/cases-billing`` (web search, file search, code
interpreter, the image tool, an Azure web search stream, a chat search model) give the counts a
meter must find; the project's own bodies add what the recordings do not show: a stream cut off
after its tool item, an item without an id, a container used by two calls, hostile items.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx2
import pytest

import meter
from meter.core.record import Usage
from meter.core.tools import ToolItems, counted, is_search_model
from tests.support.cases import SHARED_CONFORMANCE, load_case
from tests.support.replay import CannedResponse, ReplayServer, case_response

BILLING = SHARED_CONFORMANCE / "cases-billing"
TOOL_KINDS = ("web_search_calls", "file_search_calls", "code_interpreter_sessions", "image_generation_calls",
              "computer_calls", "mcp_calls")
RESPONSES = "/openai/v1/responses"


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as srv:
        yield srv


def _meter(records: list[meter.CallRecord]) -> meter.Meter:
    return meter.Meter(otel=False, prometheus=False, on_record=records.append)


def _send(server: ReplayServer, m: meter.Meter, path: str, body: dict[str, Any]) -> None:
    try:
        with httpx2.Client(transport=meter.MeteredTransport(httpx2.HTTPTransport(), meter=m)) as client, \
                client.stream("POST", server.url + path, json=body) as response:
            for _ in response.iter_bytes():
                pass
    finally:  # the call raised or not, its record comes on the metering worker: wait for it
        m.flush(10)


def _tools(record: meter.CallRecord) -> dict[str, int]:
    assert record.usage is not None
    return {kind: getattr(record.usage, kind) for kind in TOOL_KINDS if getattr(record.usage, kind)}


@pytest.mark.skipif(not BILLING.is_dir(), reason=f"shared billing corpus not found at {BILLING}")
@pytest.mark.parametrize(("case", "expected"), [
    ("01-openai-responses-stream-web-search-call", {"web_search_calls": 1}),
    ("05-openai-responses-nonstream-file-search-call", {"file_search_calls": 1}),
    ("07-openai-responses-nonstream-code-interpreter-files-cached", {"code_interpreter_sessions": 1}),
    ("08-openai-responses-nonstream-image-generation-call", {"image_generation_calls": 1}),
    ("21-azure-responses-v1-stream-web-search-preview", {"web_search_calls": 1}),
    ("29-openai-chat-nonstream-web-search-annotations", {"web_search_calls": 1}),
    ("30-openai-chat-nonstream-service-tier-reasoning", {}),
])
def test_the_recorded_tool_calls_are_counted(server: ReplayServer, case: str, expected: dict[str, int]) -> None:
    recorded = load_case(BILLING / case)
    records: list[meter.CallRecord] = []
    m = meter.Meter(otel=False, prometheus=False, on_record=records.append, hosts=["127.0.0.1"])
    path = recorded.path if recorded.path.startswith("/v1/") or "/openai/" in recorded.path else "/v1/responses"
    server.add(recorded.method, path.split("?")[0], case_response(recorded))
    body = recorded.request_body if isinstance(recorded.request_body, dict) else {"model": "m", "stream": True}
    _send(server, m, path, body)
    [record] = records
    assert _tools(record) == expected


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


def _response(output: Any, status: str = "completed", response_id: str = "resp_1") -> dict[str, Any]:
    return {"id": response_id, "object": "response", "model": "gpt-4.1-mini", "status": status, "output": output,
            "usage": {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110}}


WEB = {"id": "ws_1", "type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "q"}}


def test_a_stream_cut_off_after_its_tool_item_still_counts_it(server: ReplayServer) -> None:
    chunks = [_event("response.created", {"response": _response([], "in_progress")}),
              _event("response.output_item.done", {"output_index": 0, "item": WEB}),
              _event("response.output_text.delta", {"output_index": 1, "delta": "partial"})]
    server.add("POST", RESPONSES, CannedResponse(200, [("Content-Type", "text/event-stream")], chunks,
                                                 reset_after_chunks=3))
    records: list[meter.CallRecord] = []
    with pytest.raises(httpx2.HTTPError):
        _send(server, _meter(records), RESPONSES, {"model": "gpt-4.1-mini", "stream": True, "input": "hi"})
    [record] = records
    assert record.usage_source == "estimated"  # flagged: the stream never said its usage
    assert _tools(record) == {"web_search_calls": 1}


def test_an_item_seen_in_an_event_and_in_the_terminal_object_counts_once_with_or_without_an_id(
        server: ReplayServer) -> None:
    anonymous = {"type": "file_search_call", "status": "completed", "queries": ["q"]}
    output = [WEB, anonymous, {"type": "message", "content": []}]
    chunks = [_event("response.output_item.done", {"output_index": 0, "item": WEB}),
              _event("response.output_item.done", {"output_index": 1, "item": anonymous}),
              _event("response.completed", {"response": _response(output)})]
    server.add("POST", RESPONSES, CannedResponse(200, [("Content-Type", "text/event-stream")], chunks))
    records: list[meter.CallRecord] = []
    _send(server, _meter(records), RESPONSES, {"model": "gpt-4.1-mini", "stream": True, "input": "hi"})
    assert _tools(records[0]) == {"web_search_calls": 1, "file_search_calls": 1}


def test_a_container_is_one_session_however_many_calls_use_it(server: ReplayServer) -> None:
    def calls(container: str, n: int) -> list[dict[str, Any]]:
        return [{"id": f"ci_{container}_{i}", "type": "code_interpreter_call", "container_id": container,
                 "code": "1+1", "status": "completed"} for i in range(n)]

    server.add("POST", RESPONSES, CannedResponse.json(200, _response(calls("cntr_a", 3), response_id="resp_a")))
    server.add("POST", RESPONSES, CannedResponse.json(200, _response(calls("cntr_a", 2) + calls("cntr_b", 1),
                                                                     response_id="resp_b")))
    records: list[meter.CallRecord] = []
    m = _meter(records)
    for _ in range(2):
        _send(server, m, RESPONSES, {"model": "gpt-4.1-mini", "input": "hi"})
    assert [_tools(r) for r in records] == [{"code_interpreter_sessions": 1}, {"code_interpreter_sessions": 1}]


def test_a_tool_call_without_a_published_price_makes_the_cost_unknown_never_the_tokens_alone(
        server: ReplayServer) -> None:
    server.add("POST", RESPONSES, CannedResponse.json(200, _response([WEB])))
    records: list[meter.CallRecord] = []
    _send(server, _meter(records), RESPONSES, {"model": "gpt-4.1-mini", "input": "hi"})
    cost = records[0].cost
    assert cost is not None and cost.total is None and cost.basis == "unknown"
    assert cost.reason is not None and "web_search" in cost.reason
    assert cost.amounts["input"] is not None and cost.amounts["input"] > Decimal(0)  # the part that is priced
    assert cost.amounts["web_search"] is None


@pytest.mark.parametrize("output", [
    "not a list", [None, 3, "x"], [{"type": ["web_search_call"]}], [{"type": "web_search_call", "id": 7}],
    [{"type": "code_interpreter_call", "container_id": "c" * 1_000_000}],
    [{"type": "web_search_call", "id": "ws_\x00\ud800"}] * 3,
])
def test_hostile_items_are_counted_as_what_they_are_or_not_at_all(server: ReplayServer, output: Any) -> None:
    server.add("POST", RESPONSES, CannedResponse.json(200, _response(output)))
    records: list[meter.CallRecord] = []
    m = _meter(records)
    _send(server, m, RESPONSES, {"model": "gpt-4.1-mini", "input": "hi"})
    [record] = records
    assert record.usage is not None and record.usage.input_tokens == 100
    assert all(0 <= n <= 3 for n in _tools(record).values())
    assert m.faults == {}


def test_counting_rules() -> None:
    items = ToolItems()
    items.add_event(b'{"type":"response.output_item.done","output_index":4,"item":{"type":"mcp_call","name":"x"}}')
    items.add_event(b'{"type":"response.output_item.done","item":{"type":"computer_call"}}')  # no id, no index
    assert items.counts() == ({"mcp_calls": 1}, ())
    usage = Usage(input_tokens=1, output_tokens=1, total_tokens=2)
    assert counted(None, items, "responses", None) == (None, ())  # unknown usage stays unknown
    assert counted(usage, None, "chat", "gpt-4o-mini-search-preview-2025-03-11")[0] == Usage(
        input_tokens=1, output_tokens=1, total_tokens=2, web_search_calls=1)
    assert [is_search_model(m) for m in ("gpt-5-search-api", "gpt-4o", None)] == [True, False, False]


def test_a_cut_off_streams_tool_calls_are_counted_in_prometheus_its_estimated_tokens_are_not(
        server: ReplayServer) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    chunks = [_event("response.created", {"response": _response([], "in_progress")}),
              _event("response.output_item.done", {"output_index": 0, "item": WEB}),
              _event("response.output_text.delta", {"output_index": 1, "delta": "partial"})]
    server.add("POST", RESPONSES, CannedResponse(200, [("Content-Type", "text/event-stream")], chunks,
                                                 reset_after_chunks=3))
    registry = CollectorRegistry()
    with pytest.raises(httpx2.HTTPError):
        _send(server, meter.Meter(otel=False, registry=registry), RESPONSES,
              {"model": "gpt-4.1-mini", "stream": True, "input": "hi"})
    samples = {line.split("{")[0]: float(line.rsplit(" ", 1)[1])
               for line in generate_latest(registry).decode().splitlines() if line.startswith("llm_")}
    assert samples["llm_web_search_calls_total"] == 1
    assert samples["llm_input_tokens_total"] == 0  # the estimate is in its own counter, never here
    assert samples["llm_estimated_input_tokens_total"] > 0
