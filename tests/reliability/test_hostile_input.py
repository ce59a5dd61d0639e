"""Property 7: hostile request and response bodies never raise into the caller; usage is correct or ``None``.

Defect 8: a request body nested ~1,000 levels raised ``RecursionError`` in body
parsing and the call went unmetered (through the proxy, a way to hide calls).
Now it is metered from what needs no parse (route, model, stream flag). Usage
numbers that are negative, fractional, strings or absurdly large give ``None``,
never a zero or a number that would be priced.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

import meter

CHAT = "https://res.openai.azure.com/openai/deployments/chat-prod/chat/completions?api-version=2024-10-21"
V1_RESPONSES = "https://res.openai.azure.com/openai/v1/responses"
GOOD_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def _call(url: str, request: bytes, status: int, body: bytes, content_type: str = "application/json",
          stream: bool = False) -> tuple[httpx2.Response, bytes, list[meter.CallRecord], meter.Meter]:
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)

    def handler(req: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": content_type}, content=body)

    with httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(handler), meter=m)) as client:
        with client.stream("POST", url, content=request, headers={"content-type": "application/json"}) as resp:
            got = resp.read()
    assert m.flush(10.0)  # the record and any fault come on the metering worker, a moment after the call
    return resp, got, records, m


def _nested(depth: int) -> bytes:
    return b'{"model":"gpt-5","stream":true,"input":' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_deeply_nested_request_is_still_metered(depth: int) -> None:
    sse = (b'data: {"type":"response.completed","response":{"id":"r1","status":"completed","model":"gpt-5",'
           b'"usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}}\n\n')
    _response, got, records, m = _call(V1_RESPONSES, _nested(depth), 200, sse, "text/event-stream")
    assert got == sse
    (record,) = records
    assert (record.deployment, record.request_model, record.usage_source) == ("gpt-5", "gpt-5", "stream")
    assert record.usage is not None and record.usage.total_tokens == 5
    assert m.faults == {}


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": -5, "completion_tokens": 7},
    {"prompt_tokens": 11.5, "completion_tokens": 7},
    {"prompt_tokens": "11", "completion_tokens": 7},
    {"prompt_tokens": 11, "completion_tokens": 10**30},
    {"prompt_tokens": True, "completion_tokens": 7},
    {"prompt_tokens": None, "completion_tokens": None},
    {},
    "many",
    [11, 7],
], ids=repr)
def test_hostile_usage_numbers_give_unknown_usage(usage: Any) -> None:
    body = json.dumps({"id": "c1", "model": "gpt-4o", "choices": [], "usage": usage}).encode()
    _, got, records, _m = _call(CHAT, b'{"messages":[]}', 200, body)
    assert got == body
    (record,) = records
    assert record.usage is None and record.usage_source is None


def test_a_number_too_long_to_parse_is_a_fault_not_a_raise() -> None:
    body = b'{"id":"c1","choices":[],"usage":{"prompt_tokens":' + b"9" * 5000 + b',"completion_tokens":1}}'
    _, got, records, m = _call(CHAT, b"{}", 200, body)
    assert got == body and records[0].usage is None and m.faults == {"parse": 1}


def test_duplicate_keys_take_the_last_like_every_json_reader() -> None:
    body = (b'{"id":"c1","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1},'
            b'"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}')
    _, _, records, _ = _call(CHAT, b"{}", 200, body)
    assert records[0].usage == meter.Usage(input_tokens=11, output_tokens=7, total_tokens=18)


@pytest.mark.parametrize("body", [
    b"\xff\xfe\x00garbage",
    b'{"id":"c1","usage":{"prompt_tokens":11,"completion_tokens":7}\x00}',
    b'{"id":"c1\xc3\x28","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7}}',
    b"[" * 50_000,
    b'{"usage":' * 5_000,
    b"",
    b"null",
    b"\x1f\x8b\x08\x00not gzip at all",
], ids=lambda b: repr(b[:20]))
def test_junk_bodies_pass_through_and_give_no_usage(body: bytes) -> None:
    response, got, records, _m = _call(CHAT, b"{}", 200, body)
    assert got == body and response.status_code == 200
    (record,) = records
    assert record.usage is None


@pytest.mark.parametrize("separator", [b"\r", b"\r\n", b"\n"], ids=["CR", "CRLF", "LF"])
def test_any_line_ending_gives_the_same_stream_usage(separator: bytes) -> None:
    events = [b'data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"hi"},'
              b'"finish_reason":null}],"usage":null}',
              b'data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
              b'"usage":null}',
              b'data: {"id":"c1","model":"gpt-4o","choices":[],"usage":' + json.dumps(GOOD_USAGE).encode() + b"}",
              b"data: [DONE]"]
    body = b"".join(e + separator * 2 for e in events)
    _, got, records, _ = _call(CHAT, b'{"stream":true,"messages":[]}', 200, body, "text/event-stream")
    assert got == body
    (record,) = records
    assert (record.outcome, record.usage_source, record.finish_reasons) == ("ok", "stream", ("stop",))
    assert record.usage == meter.Usage(input_tokens=11, output_tokens=7, total_tokens=18)


def test_an_sse_event_with_hostile_usage_is_unknown_not_estimated_from_it() -> None:
    body = (b'data: {"id":"c1","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":2}}\n\n'
            b"data: [DONE]\n\n")
    _, _, records, _ = _call(CHAT, b'{"stream":true,"stream_options":{"include_usage":true},"messages":[]}', 200,
                             body, "text/event-stream")
    (record,) = records
    assert record.usage_source != "stream"
