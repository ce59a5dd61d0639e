"""Property 3: exactly one record per HTTP attempt, whatever happens to the stream.

Every way a call can end, through both stacks, sync and async, over real
sockets where the ending is a network event: normal end, close after every
chunk, break after the end marker (defect 9: recorded ``aborted`` before),
cancellation at random points, connection reset, read timeout, the inner
transport raising, a body never read, a response garbage-collected (defect 11:
finished by the orphans thread, never in the finaliser, so no lock the
collecting thread holds can deadlock it). Each test counts its records; the
suite's total of endings and records lost goes to the figures.
"""

from __future__ import annotations

import asyncio
import gc
import random
import socket
import threading
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import httpx2
import pytest

import meter
from meter.adapters import orphans
from tests.reliability.conftest import soak
from tests.reliability.harness import quiet_meter
from tests.support.replay import CannedResponse, ReplayServer
from tests.transport.chunks import chunk_transport

STACKS = [httpx, httpx2]
PATH = "/openai/deployments/d/chat/completions"
QUERY = "?api-version=2024-10-21"
EVENTS = [
    b'data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"he"},"finish_reason":null}],'
    b'"usage":null}\n\n',
    b'data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"llo"},"finish_reason":null}],'
    b'"usage":null}\n\n',
    b'data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n',
    b'data: {"id":"c1","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,'
    b'"total_tokens":7}}\n\n',
    b"data: [DONE]\n\n",
]
SSE = [("content-type", "text/event-stream")]
TALLY = {"endings": 0, "records": 0}


@pytest.fixture(autouse=True)
def _tally(figures: dict[str, object]) -> Iterator[None]:
    yield
    figures["exactly once: endings exercised"] = TALLY["endings"]
    figures["exactly once: records lost or doubled"] = TALLY["endings"] - TALLY["records"]


def _count(m: meter.Meter, records: list[meter.CallRecord], endings: int = 1) -> None:
    assert m.flush(10.0)  # the records come on the metering worker, a moment after the calls ended
    TALLY["endings"] += endings
    TALLY["records"] += len(records) if len(records) == endings else -abs(len(records) - endings)
    assert len(records) == endings, [r.outcome for r in records]


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as srv:
        yield srv


def _serve(srv: ReplayServer, **options: Any) -> str:
    srv.clear()
    srv.add("POST", PATH, CannedResponse(200, SSE, list(EVENTS), **options))
    return srv.url + PATH + QUERY


# -- normal end, close after every chunk --------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
def test_close_after_every_chunk(stack: Any) -> None:
    for read in range(len(EVENTS) + 1):
        records: list[meter.CallRecord] = []
        m = quiet_meter(records)
        inner = chunk_transport(stack, 200, SSE, list(EVENTS))
        with stack.Client(transport=meter.MeteredTransport(inner, meter=m)) as client:
            with client.stream("POST", "https://r.openai.azure.com" + PATH + QUERY, content=b'{"stream":true}') as r:
                stream = r.iter_raw()
                for _ in range(read):
                    next(stream)
        _count(m, records)
        (record,) = records
        if read == len(EVENTS):
            assert (record.outcome, record.usage_source) == ("ok", "stream")
        elif read >= 4:  # the usage arrived, the end marker did not
            assert record.usage_source == "stream"
        else:
            assert record.outcome == "aborted"


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
async def test_async_close_after_every_chunk(stack: Any) -> None:
    for read in range(len(EVENTS) + 1):
        records: list[meter.CallRecord] = []
        m = quiet_meter(records)
        inner = chunk_transport(stack, 200, SSE, list(EVENTS))
        transport = meter.AsyncMeteredTransport(inner, meter=m)
        async with stack.AsyncClient(transport=transport) as client:
            async with client.stream("POST", "https://r.openai.azure.com" + PATH + QUERY,
                                     content=b'{"stream":true}') as r:
                stream = r.aiter_raw()
                for _ in range(read):
                    await stream.__anext__()
                await stream.aclose()
        _count(m, records)


# -- break after the end marker (defect 9) ------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
def test_break_after_the_end_marker_is_ok(stack: Any, server: ReplayServer) -> None:
    records: list[meter.CallRecord] = []
    m = quiet_meter(records)
    server.clear()
    server.add("POST", PATH, CannedResponse(200, SSE, [*EVENTS, b": a trailing comment\n\n", b": more\n\n"]))
    with stack.Client(transport=meter.MeteredTransport(stack.HTTPTransport(), meter=m)) as c:
        with c.stream("POST", server.url + PATH + QUERY, content=b'{"stream":true}') as response:
            for line in response.iter_lines():
                if line == "data: [DONE]":
                    break
    _count(m, records)
    (record,) = records
    assert (record.outcome, record.error_type, record.usage_source) == ("ok", None, "stream")


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
async def test_async_break_after_the_end_marker_is_ok(stack: Any, server: ReplayServer) -> None:
    records: list[meter.CallRecord] = []
    m = quiet_meter(records)
    server.clear()
    server.add("POST", PATH, CannedResponse(200, SSE, [*EVENTS, b": trailing\n\n"]))
    transport = meter.AsyncMeteredTransport(stack.AsyncHTTPTransport(), meter=m)
    async with stack.AsyncClient(transport=transport) as c:
        async with c.stream("POST", server.url + PATH + QUERY, content=b'{"stream":true}') as response:
            async for line in response.aiter_lines():
                if line == "data: [DONE]":
                    break
    _count(m, records)
    assert records[0].outcome == "ok"


def test_the_openai_sdk_stream_breaking_at_done_is_ok(server: ReplayServer) -> None:
    import openai

    records: list[meter.CallRecord] = []
    m = quiet_meter(records)
    server.clear()
    server.add("POST", PATH, CannedResponse(200, SSE, [*EVENTS, b": trailing\n\n"]))
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version="2024-10-21",
                                           max_retries=0), meter=m)
    chunks = list(client.chat.completions.create(model="d", messages=[], stream=True))
    assert chunks[-1].usage is not None
    _count(m, records)
    assert (records[0].outcome, records[0].usage_source) == ("ok", "stream")


# -- cancellation, reset, timeout, inner raise, never read ----------------------------------------------------


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
async def test_cancellation_at_random_points(stack: Any, server: ReplayServer) -> None:
    rng = random.Random(7)
    url = _serve(server, chunk_delay_s=0.004)
    runs = soak(20, 200)
    records: list[meter.CallRecord] = []
    m = quiet_meter(records)
    transport = meter.AsyncMeteredTransport(stack.AsyncHTTPTransport(), meter=m)
    async with stack.AsyncClient(transport=transport) as client:
        async def read() -> None:
            async with client.stream("POST", url, content=b'{"stream":true}') as response:
                async for _ in response.aiter_raw():
                    pass

        for _ in range(runs):
            task = asyncio.ensure_future(read())
            await asyncio.sleep(rng.uniform(0, 0.025))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert orphans.wait_idle()
    _count(m, records, runs)
    assert {r.outcome for r in records} <= {"ok", "aborted"}


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
def test_connection_reset_mid_stream(stack: Any, server: ReplayServer) -> None:
    records: list[meter.CallRecord] = []
    m = quiet_meter(records)
    url = _serve(server, reset_after_chunks=2)
    with stack.Client(transport=meter.MeteredTransport(stack.HTTPTransport(), meter=m)) as c:
        with pytest.raises(stack.TransportError), c.stream("POST", url, content=b'{"stream":true}') as response:
            for _ in response.iter_raw():
                pass
    _count(m, records)
    assert records[0].outcome == "transport_error"


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
def test_read_timeout(stack: Any, server: ReplayServer) -> None:
    records: list[meter.CallRecord] = []
    m = quiet_meter(records)
    url = _serve(server, hang_after_chunks=2)
    transport = meter.MeteredTransport(stack.HTTPTransport(), meter=m)
    with stack.Client(transport=transport, timeout=stack.Timeout(5, read=0.3)) as c:
        with pytest.raises(stack.ReadTimeout), c.stream("POST", url, content=b'{"stream":true}') as response:
            for _ in response.iter_raw():
                pass
    _count(m, records)
    assert (records[0].outcome, records[0].error_type) == ("transport_error", "ReadTimeout")


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
def test_the_inner_transport_raising(stack: Any) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # nothing listens here once closed
    records: list[meter.CallRecord] = []
    m = quiet_meter(records)
    with stack.Client(transport=meter.MeteredTransport(stack.HTTPTransport(), meter=m)) as c:
        with pytest.raises(stack.ConnectError):
            c.post(f"http://127.0.0.1:{port}{PATH}{QUERY}", content=b"{}")
    _count(m, records)
    assert (records[0].outcome, records[0].error_type) == ("transport_error", "ConnectError")


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
def test_body_never_read(stack: Any, server: ReplayServer) -> None:
    records: list[meter.CallRecord] = []
    m = quiet_meter(records)
    url = _serve(server)
    with stack.Client(transport=meter.MeteredTransport(stack.HTTPTransport(), meter=m)) as c:
        response = c.send(c.build_request("POST", url, content=b'{"stream":true}'), stream=True)
        response.close()
    _count(m, records)
    assert records[0].outcome == "aborted"


# -- garbage-collected responses (defect 11) ------------------------------------------------------------------


@pytest.mark.parametrize("metering", ["inline", "worker"])
@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.__name__)
def test_a_dropped_response_is_finished_off_the_collecting_thread(stack: Any,
                                                                 metering: Literal["inline", "worker"]) -> None:
    """Inline, the orphans thread meters it; with the metering worker, the worker does (after the orphans
    thread ended the call): never the thread that collected the response."""
    records: list[meter.CallRecord] = []
    threads: list[str] = []

    def subscriber(record: meter.CallRecord) -> None:
        threads.append(threading.current_thread().name)
        records.append(record)

    m = meter.Meter(on_record=subscriber, otel=False, prometheus=False, price_book=False,
                    metering=metering)
    inner = chunk_transport(stack, 200, SSE, list(EVENTS))
    client = stack.Client(transport=meter.MeteredTransport(inner, meter=m))
    response = client.send(client.build_request("POST", "https://r.openai.azure.com" + PATH + QUERY,
                                                content=b'{"stream":true}'), stream=True)
    del response
    gc.collect()
    assert orphans.wait_idle()
    _count(m, records)
    expected = "meter-orphans" if metering == "inline" else "meter-metering"
    assert threads == [expected] and records[0].outcome == "aborted"


def test_a_collection_on_a_thread_holding_the_subscribers_lock_does_not_deadlock() -> None:
    """The finaliser used to emit in place: a subscriber needing a lock the collecting thread held hung it."""
    lock = threading.Lock()
    records: list[meter.CallRecord] = []

    def subscriber(record: meter.CallRecord) -> None:
        with lock:
            records.append(record)

    m = meter.Meter(on_record=subscriber, otel=False, prometheus=False, price_book=False)
    inner = chunk_transport(httpx2, 200, SSE, list(EVENTS))
    client = httpx2.Client(transport=meter.MeteredTransport(inner, meter=m))
    done = threading.Event()

    def work() -> None:
        response = client.send(client.build_request("POST", "https://r.openai.azure.com" + PATH + QUERY,
                                                    content=b'{"stream":true}'), stream=True)
        with lock:  # e.g. the application's own lock, or prometheus-client's
            del response
            gc.collect()
        done.set()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    assert done.wait(10), "the collecting thread deadlocked in a finaliser"
    assert orphans.wait_idle()
    _count(m, records)
