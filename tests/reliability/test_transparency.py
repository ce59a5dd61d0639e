"""Property 2: transparency. Whatever the response, the caller sees exactly what it would without meter.

Generated responses (hypothesis: any status, content type, encoding, body,
chunking, and an exception at any point) are read through the real httpx and
httpx2 clients twice, raw and metered, and the caller's view (status, header
list, every raw chunk in order, the exception's type and text) must be equal.
Then every recorded case of the conformance corpus is mutated (truncated at
every byte of its terminal event, events duplicated or reordered, comments
inserted, CRLF line ends) and the usage meter reports must be the recorded
usage or unknown, never a number that is not in the bytes.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meter
from tests.reliability.conftest import soak
from tests.reliability.harness import encode, read_async, read_sync, split
from tests.support.cases import OWN_CASES, SHARED_CONFORMANCE, Case, load_cases
from tests.support.replay import split_sse_events
from tests.transport.test_conformance import as_expected

STACKS = [httpx, httpx2]
CASES = [*load_cases(OWN_CASES), *(load_cases(SHARED_CONFORMANCE) if SHARED_CONFORMANCE.is_dir() else [])]
URLS = ["https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
        "https://res.openai.azure.com/openai/v1/responses",
        "https://res.openai.azure.com/openai/deployments/e/embeddings?api-version=2024-10-21",
        "https://example.com/not/an/llm/call"]
CONTENT_TYPES = ["application/json", "text/event-stream", "text/event-stream; charset=utf-8", "text/plain",
                 "application/octet-stream", "", "TEXT/EVENT-STREAM", "application/json; charset=utf-8"]
ENCODINGS = ["", "gzip", "deflate", "br", "zstd", "gzip, br", "identity", "compress", "x-unknown"]
SSE_BODY = (b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],'
            b'"usage":null}\n\ndata: {"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":3,'
            b'"completion_tokens":1,"total_tokens":4}}\n\ndata: [DONE]\n\n')
JSON_BODY = json.dumps({"id": "c", "model": "m", "choices": [], "usage": {"prompt_tokens": 3,
                                                                        "completion_tokens": 1}}).encode()


def _errors(stack: Any) -> list[BaseException]:
    return [stack.ReadError("reset by peer"), stack.ReadTimeout("timed out"),
            stack.RemoteProtocolError("peer closed connection"), RuntimeError("inner transport bug")]


bodies = st.one_of(st.binary(max_size=400), st.just(SSE_BODY), st.just(JSON_BODY),
                   st.integers(0, len(SSE_BODY)).map(lambda n: SSE_BODY[:n]),
                   st.integers(0, len(JSON_BODY)).map(lambda n: JSON_BODY[:n]),
                   st.sampled_from([b"", b"null", b"[]", b"{}", b"data: [DONE]\n\n", b"\r\r\r"]))


@settings(max_examples=soak(400, 20_000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stack=st.sampled_from(STACKS), url=st.sampled_from(URLS), status=st.sampled_from([200, 201, 400, 429, 500]),
       content_type=st.sampled_from(CONTENT_TYPES), encoding=st.sampled_from(ENCODINGS), body=bodies,
       cuts=st.lists(st.integers(0, 2000), max_size=12), fail_at=st.none() | st.integers(0, 12),
       error=st.integers(0, 3), request=st.sampled_from([b"{}", b'{"stream":true}', b"not json", b""]))
def test_the_caller_sees_the_same_response(stack: Any, url: str, status: int, content_type: str, encoding: str,
                                           body: bytes, cuts: list[int], fail_at: int | None, error: int,
                                           request: bytes) -> None:
    wire = encode(body, encoding)
    if encoding == "gzip, br":
        wire = encode(encode(body, "gzip"), "br")
    headers = [("content-type", content_type)] if content_type else []
    if encoding:
        headers.append(("content-encoding", encoding))
    headers.append(("x-ms-region", "East US"))
    chunks = split(wire, cuts)
    exc = _errors(stack)[error] if fail_at is not None else None
    raw = read_sync(stack, url, request, status, headers, chunks, metered=False, fail_after=fail_at, exc=exc)
    metered = read_sync(stack, url, request, status, headers, chunks, metered=True, fail_after=fail_at, exc=exc)
    assert metered.caller_view() == raw.caller_view()
    expected_records = 0 if "example.com" in url else 1
    assert len(metered.records) == expected_records


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("fail_at", [None, 0, 1, 3])
@pytest.mark.parametrize("encoding", ["", "gzip", "br"])
async def test_the_async_caller_sees_the_same_response(stack: Any, fail_at: int | None, encoding: str) -> None:
    wire = encode(SSE_BODY, encoding)
    headers = [("content-type", "text/event-stream")] + ([("content-encoding", encoding)] if encoding else [])
    chunks = split(wire, [7, 30, 31, 100, 200])
    exc = stack.ReadError("reset") if fail_at is not None else None
    raw = await read_async(stack, URLS[0], b'{"stream":true}', 200, headers, chunks, metered=False,
                           fail_after=fail_at, exc=exc)
    metered = await read_async(stack, URLS[0], b'{"stream":true}', 200, headers, chunks, metered=True,
                               fail_after=fail_at, exc=exc)
    assert metered.caller_view() == raw.caller_view() and len(metered.records) == 1


# -- mutations of every recorded case ---------------------------------------------------------------------


def _url(case: Case) -> str:
    return "https://" + case.host + case.path if "api.openai.com" not in case.url else case.url


def _headers(case: Case) -> list[tuple[str, str]]:
    drop = {"content-length", "transfer-encoding", "content-encoding"}
    return [(k, v) for k, v in case.response_headers.items() if k.lower() not in drop]


def _meter_once(case: Case, body: bytes, chunks: list[bytes] | None = None) -> tuple[meter.CallRecord, bytes]:
    request = json.dumps(case.request_body).encode() if case.request_body is not None else b""
    seen = read_sync(httpx2, _url(case), request, case.status, _headers(case), chunks or [body], metered=True)
    assert seen.error is None and b"".join(seen.chunks) == body
    assert len(seen.records) == 1
    return seen.records[0], body


def _usage(record: meter.CallRecord) -> dict[str, int] | None:
    view = as_expected(record)["usage"]
    return view if isinstance(view, dict) else None


def _never_invented(case: Case, record: meter.CallRecord) -> None:
    """Reported usage is the recorded usage, or unknown (or flagged as an estimate)."""
    usage = _usage(record)
    if usage is not None:
        assert usage == case.expected["usage"], (case.name, usage)
    elif record.usage is not None:
        assert record.usage_source == "estimated"


SSE_CASES = [c for c in CASES if c.is_sse]


@pytest.mark.parametrize("case", SSE_CASES, ids=[c.name for c in SSE_CASES])
def test_truncated_at_every_byte_of_the_terminal_event(case: Case, figures: dict[str, object]) -> None:
    events = split_sse_events(case.body)
    # From the start of the event that carries the usage (or the last event) to the end of the body.
    last = max((i for i, e in enumerate(events) if b'"usage":{' in e or b'"usage": {' in e),
               default=len(events) - 1)
    start = sum(len(e) for e in events[:last])
    end = len(case.body)
    for cut in range(start, end + 1):
        body = case.body[:cut]
        record, _ = _meter_once(case, body, split(body, [start]))
        _never_invented(case, record)
    figures["transparency: terminal-event truncations"] = int(figures.get(
        "transparency: terminal-event truncations", 0)) + (end - start + 1)  # type: ignore[call-overload]


JSON_CASES = [c for c in CASES if not c.is_sse and c.body]


@pytest.mark.parametrize("case", JSON_CASES, ids=[c.name for c in JSON_CASES])
def test_json_bodies_truncated_anywhere(case: Case) -> None:
    step = max(1, len(case.body) // soak(200, 5000))
    for cut in range(0, len(case.body), step):
        record, _ = _meter_once(case, case.body[:cut])
        assert record.usage is None or _usage(record) == case.expected["usage"]


def _mutations(case: Case) -> dict[str, bytes]:
    events = split_sse_events(case.body)
    out = {
        "comments between events": b"".join(b": keep-alive\n\n" + e for e in events),
        "crlf": case.body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
        "cr only": case.body.replace(b"\r\n", b"\n").replace(b"\n", b"\r"),
    }
    for i in range(len(events)):
        out[f"event {i} twice"] = b"".join(events[:i + 1] + events[i:])
    deltas = [i for i, e in enumerate(events) if b'"delta"' in e and b"usage\":{" not in e]
    for a, b in itertools.pairwise(deltas):
        swapped = list(events)
        swapped[a], swapped[b] = swapped[b], swapped[a]
        out[f"events {a} and {b} swapped"] = b"".join(swapped)
    return out


@pytest.mark.parametrize("case", SSE_CASES, ids=[c.name for c in SSE_CASES])
def test_duplicated_reordered_commented_and_crlf_streams_give_the_recorded_usage(case: Case) -> None:
    for name, body in _mutations(case).items():
        record, _ = _meter_once(case, body, split(body, list(range(11, len(body), 97))))
        _never_invented(case, record)
        if case.expected.get("usage") is not None:
            assert _usage(record) == case.expected["usage"], (case.name, name)
