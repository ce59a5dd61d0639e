"""Exactly one record per call, whatever ends it; the caller always gets what the inner transport gave."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from typing import Any

import httpx
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meter
from tests.support.cases import OWN_CASES, load_cases
from tests.support.replay import CannedResponse, ReplayServer, case_response, split_sse_events
from tests.support.splits import split_at
from tests.transport.chunks import chunk_transport
from tests.transport.conftest import Records

CASES = {c.name.split("-", 1)[0]: c for c in load_cases(OWN_CASES)}
SSE = [("content-type", "text/event-stream")]
CHAT_URL = "https://res.openai.azure.com/openai/deployments/gpt4o-east/chat/completions?api-version=2024-10-21"
RESP_URL = "https://res.openai.azure.com/openai/v1/responses"
BODY = b'{"model":"gpt4o-east","stream":true,"messages":[{"role":"user","content":"hello there"}]}'


def run_sync(chunks: list[bytes], url: str = CHAT_URL, close_after: int | None = None,
             headers: list[tuple[str, str]] = SSE, stack: Any = httpx2) -> tuple[Records, bytes, meter.Meter]:
    records = Records()
    m = meter.Meter(on_record=records.append)
    transport = meter.MeteredTransport(chunk_transport(stack, 200, headers, chunks), m)
    got = b""
    with stack.Client(transport=transport) as client:
        with client.stream("POST", url, content=BODY) as response:
            for i, chunk in enumerate(response.iter_raw()):
                if close_after is not None and i >= close_after:
                    break
                got += chunk
    m.flush()
    return records, got, m


# -- early close at every event boundary ---------------------------------------------------------

@pytest.mark.parametrize("name", ["03", "13", "07"])
def test_close_at_every_event_boundary(name: str) -> None:
    case = CASES[name]
    events = split_sse_events(case.body)
    url = RESP_URL if case.api == "responses" else CHAT_URL
    full, _, _ = run_sync(events, url)
    complete = full.one()
    assert complete.outcome == "ok"
    end_index = next(i for i in range(len(events) + 1) if run_sync(events, url, close_after=i)[0].one().outcome == "ok")
    for k in range(len(events) + 1):
        records, got, m = run_sync(events, url, close_after=k)
        record = records.one()
        assert got == b"".join(events[:k])
        assert not m.faults
        if k < end_index:
            assert record.outcome == "aborted"
            if record.usage is not None:
                assert record.usage_source in ("estimated", "stream")
        else:
            assert record.outcome == "ok"
            assert record.usage == complete.usage
    assert 0 < end_index <= len(events)


def test_body_never_read_is_recorded_on_close() -> None:
    records = Records()
    m = meter.Meter(on_record=records.append)
    inner = chunk_transport(httpx2, 200, SSE, split_sse_events(CASES["03"].body))
    with httpx2.Client(transport=meter.MeteredTransport(inner, m)) as client:
        request = client.build_request("POST", CHAT_URL, content=BODY)
        response = client.send(request, stream=True)
        m.flush()
        assert not records
        response.close()
    m.flush()
    assert records.one().outcome == "aborted"
    assert inner.streams[0].closed


def test_dropped_response_still_yields_its_record() -> None:
    records = Records()
    m = meter.Meter(on_record=records.append)
    inner = chunk_transport(httpx2, 200, SSE, split_sse_events(CASES["03"].body))
    client = httpx2.Client(transport=meter.MeteredTransport(inner, m))
    response = client.send(client.build_request("POST", CHAT_URL, content=BODY), stream=True)
    del response
    import gc

    from meter.adapters import orphans

    gc.collect()
    assert orphans.wait_idle()  # finished by the orphans thread, never inside the finaliser
    m.flush()
    assert records.one().outcome == "aborted"


# -- transport errors, resets, cancellation ------------------------------------------------------

@pytest.mark.parametrize("stack", [httpx, httpx2])
def test_inner_exception_reaches_caller_unchanged(stack: Any) -> None:
    boom = stack.ReadError("peer went away")
    records = Records()
    m = meter.Meter(on_record=records.append)
    inner = chunk_transport(stack, 200, SSE, split_sse_events(CASES["03"].body), fail_after=3, exc=boom)
    with stack.Client(transport=meter.MeteredTransport(inner, m)) as client:
        with pytest.raises(stack.ReadError) as info:
            with client.stream("POST", CHAT_URL, content=BODY) as response:
                for _ in response.iter_raw():
                    pass
    assert info.value is boom
    m.flush()
    record = records.one()
    assert (record.outcome, record.error_type) == ("transport_error", "ReadError")


def test_connect_error_yields_one_record() -> None:
    records = Records()
    m = meter.Meter(on_record=records.append)
    with httpx2.Client(transport=meter.MeteredTransport(httpx2.HTTPTransport(), m)) as client:
        with pytest.raises(httpx2.ConnectError):
            # port 9 on loopback: nothing listens there
            url = "http://127.0.0.1:9/openai/deployments/d/chat/completions?api-version=2024-10-21"
            client.post(url, content=b"{}")
    m.flush()
    record = records.one()
    assert (record.outcome, record.error_type, record.status_code) == ("transport_error", "ConnectError", None)


@pytest.mark.parametrize("stack", [httpx, httpx2])
def test_connection_reset_mid_stream(stack: Any, server: ReplayServer) -> None:
    response = case_response(CASES["03"])
    response.reset_after_chunks = 4
    response.chunk_delay_s = 0.01
    server.add("POST", "/openai/deployments/gpt4o-east/chat/completions", response)
    records = Records()
    m = meter.Meter(on_record=records.append)
    got = b""
    with stack.Client(transport=meter.MeteredTransport(stack.HTTPTransport(), m)) as client:
        with pytest.raises(stack.TransportError):
            with client.stream("POST", server.url + "/openai/deployments/gpt4o-east/chat/completions"
                               "?api-version=2024-10-21", content=BODY) as r:
                for chunk in r.iter_raw():
                    got += chunk
    m.flush()
    record = records.one()
    assert record.outcome == "transport_error"
    assert got == b"".join(response.chunks[:4])
    assert record.usage_source == "estimated" and record.usage is not None


@pytest.mark.parametrize("stack", [httpx, httpx2])
async def test_asyncio_cancellation(stack: Any, server: ReplayServer) -> None:
    response = case_response(CASES["13"])
    response.hang_after_chunks = 5
    server.add("POST", "/openai/v1/responses", response)
    records = Records()
    m = meter.Meter(on_record=records.append)
    received = asyncio.Event()
    transport = meter.AsyncMeteredTransport(stack.AsyncHTTPTransport(), m)

    async def consume() -> None:
        async with stack.AsyncClient(transport=transport) as client:
            async with client.stream("POST", server.url + "/openai/v1/responses",
                                     content=b'{"model":"gpt-5-mini","stream":true,"input":"x"}') as r:
                n = 0
                async for _ in r.aiter_raw():
                    n += 1
                    if n >= 3:
                        received.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(received.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    m.flush()
    record = records.one()
    assert record.outcome == "aborted"
    assert record.response_id is not None  # learned from response.created before the hang


# -- splits, junk, memory --------------------------------------------------------------------------

def comparable(record: meter.CallRecord) -> tuple[Any, ...]:
    return (record.outcome, record.usage, record.usage_source, record.response_id, record.response_model,
            record.finish_reasons, record.error_type, record.error_code, record.stream)


STREAM_CASES = [c for c in CASES.values() if c.is_sse]


@pytest.mark.parametrize("case", STREAM_CASES, ids=lambda c: c.name)
@given(cuts=st.lists(st.integers(min_value=0, max_value=100_000), max_size=40))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_split_same_record_same_bytes(case: Any, cuts: list[int]) -> None:
    url = RESP_URL if case.api == "responses" else CHAT_URL
    whole, got_whole, _ = run_sync([case.body], url)
    records, got, m = run_sync(split_at(case.body, cuts), url)
    assert got == got_whole == case.body
    assert comparable(records.one()) == comparable(whole.one())
    assert not m.faults


@given(parts=st.lists(st.binary(max_size=300), max_size=12), sse=st.booleans(), responses=st.booleans(),
       status=st.sampled_from([200, 400, 429, 500]))
@settings(max_examples=200, deadline=None)
def test_junk_never_raises_into_caller(parts: list[bytes], sse: bool, responses: bool, status: int) -> None:
    headers = SSE if sse else [("content-type", "application/json")]
    records = Records()
    m = meter.Meter(on_record=records.append)
    transport = meter.MeteredTransport(chunk_transport(httpx2, status, headers, parts), m)
    with httpx2.Client(transport=transport) as client:
        response = client.post(RESP_URL if responses else CHAT_URL, content=BODY)
    assert response.content == b"".join(parts)
    assert response.status_code == status
    m.flush()
    assert len(records) == 1


@pytest.mark.parametrize("prefix", [b"", b"data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"\\xff\"}}]}\n\n"])
def test_truncated_and_invalid_utf8(prefix: bytes) -> None:
    chunks = [prefix + b"data: {\"choices\":[{\"delta\":{\"content\":\"\xff\xfe\"", b"}}]}\n\n", b"data: {\"trunc"]
    records, got, _ = run_sync(chunks)
    assert got == b"".join(chunks)
    assert records.one().outcome == "incomplete"


def test_memory_does_not_grow_with_deltas() -> None:
    import tracemalloc

    delta = (b'data: {"choices":[{"delta":{"content":"tok"},"finish_reason":null,"index":0}],'
             b'"id":"chatcmpl-1","model":"gpt-4o","usage":null}\n\n')
    tail = b'data: {"choices":[],"id":"chatcmpl-1","model":"gpt-4o","usage":{"prompt_tokens":1,' \
           b'"completion_tokens":20000,"total_tokens":20001}}\n\ndata: [DONE]\n\n'
    chunks = [delta] * 20_000 + [tail]
    records = Records()
    m = meter.Meter(on_record=records.append)
    transport = meter.MeteredTransport(chunk_transport(httpx2, 200, SSE, chunks), m)
    tracemalloc.start()
    with httpx2.Client(transport=transport) as client:
        with client.stream("POST", CHAT_URL, content=BODY) as response:
            for _ in response.iter_raw():
                pass
    m.flush()  # the metering work on the worker's thread is in the peak too
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert records.one().usage is not None and records.one().usage.output_tokens == 20_000
    assert peak < 1_000_000, f"peak {peak} bytes for a 20k-delta stream: memory grows with deltas"


# -- isolation: foreign traffic, faulty subscribers ----------------------------------------------------

def test_foreign_traffic_is_untouched() -> None:
    records = Records()
    m = meter.Meter(on_record=records.append)
    inner = chunk_transport(httpx2, 200, [("content-type", "text/plain")], [b"ok"])
    with httpx2.Client(transport=meter.MeteredTransport(inner, m)) as client:
        for url in ("https://example.com/v1/chat/completions", "https://res.openai.azure.com/openai/v1/files",
                    "https://example.com/health"):
            with client.stream("POST", url, content=BODY) as response:
                assert type(response.stream).__name__ == "BoundSyncStream"
                assert type(response.stream._stream).__module__ == "tests.transport.chunks"
                assert response.read() == b"ok"
    m.flush()
    assert not records


def test_a_raising_subscriber_never_reaches_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[meter.CallRecord] = []

    def bad(record: meter.CallRecord) -> None:
        raise RuntimeError("subscriber bug")

    m = meter.Meter(on_record=[bad, seen.append])
    transport = meter.MeteredTransport(chunk_transport(httpx2, 200, SSE, [CASES["03"].body]), m)
    with caplog.at_level(logging.WARNING, logger="meter"), httpx2.Client(transport=transport) as client:
        for _ in range(3):
            assert client.post(CHAT_URL, content=BODY).content == CASES["03"].body
        m.flush()  # inside the log capture: the fault is logged on the metering thread
    assert len(seen) == 3
    assert m.faults == {"subscriber": 3}
    assert len([r for r in caplog.records if "subscriber" in r.getMessage()]) == 1


# -- attribution across threads and tasks ------------------------------------------------------------

def test_attribution_threads_and_nesting() -> None:
    records = Records()
    m = meter.Meter(on_record=records.append)
    transport = meter.MeteredTransport(chunk_transport(httpx2, 200, SSE, [CASES["03"].body]), m)
    client = httpx2.Client(transport=transport)

    def call() -> None:
        client.post(CHAT_URL, content=BODY)

    with meter.attribute(team="search"):
        with meter.attribute(feature="autocomplete"):
            call()
            ctx = contextvars.copy_context()
            t = threading.Thread(target=ctx.run, args=(call,))
            t.start()
            t.join()
        call()
    call()
    m.flush()
    assert [r.attributes for r in records] == [
        {"team": "search", "feature": "autocomplete"}, {"team": "search", "feature": "autocomplete"},
        {"team": "search"}, {},
    ]


async def test_attribution_asyncio_tasks() -> None:
    records = Records()
    m = meter.Meter(on_record=records.append)
    transport = meter.AsyncMeteredTransport(chunk_transport(httpx2, 200, SSE, [CASES["03"].body]), m)
    async with httpx2.AsyncClient(transport=transport) as client:

        async def call(team: str) -> None:
            with meter.attribute(team=team):
                await asyncio.sleep(0)
                await client.post(CHAT_URL, content=BODY)

        await asyncio.gather(*(call(f"t{i}") for i in range(5)))
    m.flush()
    assert sorted(r.attributes["team"] for r in records) == [f"t{i}" for i in range(5)]


# -- Responses background mode: resumed / retrieved responses are counted once -----------------------

def test_resume_and_retrieve_do_not_count_twice(server: ReplayServer) -> None:
    case = CASES["13"]
    response_id = case.expected["response_id"]
    server.add("POST", "/openai/v1/responses", case_response(case))
    server.add("GET", f"/openai/v1/responses/{response_id}", case_response(case))
    final = next(e for e in split_sse_events(case.body) if b"response.completed" in e)
    obj = final.split(b"data: ", 1)[1]
    resp_obj = json.dumps(json.loads(obj)["response"]).encode()
    server.add("GET", f"/openai/v1/responses/{response_id}", CannedResponse(
        200, [("content-type", "application/json")], [resp_obj], chunked=False))
    records = Records()
    m = meter.Meter(on_record=records.append)
    with httpx2.Client(transport=meter.MeteredTransport(httpx2.HTTPTransport(), m)) as client:
        client.post(server.url + "/openai/v1/responses", content=b'{"model":"gpt-5-mini","stream":true}')
        client.get(server.url + f"/openai/v1/responses/{response_id}?stream=true&starting_after=2")
        client.get(server.url + f"/openai/v1/responses/{response_id}")
    m.flush()
    first, resumed, retrieved = records
    assert (first.operation, resumed.operation, retrieved.operation) == ("create", "resume", "retrieve")
    assert first.usage is not None and not first.repeat
    assert resumed.usage is None and resumed.repeat and resumed.response_id == response_id
    assert retrieved.usage is None and retrieved.repeat


def test_gzip_br_zstd_deflate_bodies(server: ReplayServer) -> None:
    case = CASES["12"]
    for encoding in ("gzip", "deflate", "br", "zstd"):
        response = case_response(case)
        response.encoding = encoding
        server.add("POST", "/openai/responses", response)
        records = Records()
        m = meter.Meter(on_record=records.append)
        with httpx2.Client(transport=meter.MeteredTransport(httpx2.HTTPTransport(), m)) as client:
            with client.stream("POST", server.url + "/openai/responses?api-version=2025-04-01-preview",
                               content=b'{"model":"gpt-4.1-nano","input":"x"}') as r:
                raw = b"".join(r.iter_raw())
        assert raw == b"".join(response.wire_pieces()), encoding
        m.flush()
        record = records.one()
        assert record.usage is not None and record.usage.output_tokens == case.expected["usage"]["output_tokens"]
        server.clear()
