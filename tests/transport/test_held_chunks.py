"""Steady-state chunks are held and looked at when the end is built; none is lost or counted twice.

A chat stream without a usage chunk gets its output estimated from the deltas meter saw,
so the estimate counts exactly the delta events the caller received, wherever the
caller stopped: before, at and after a sync stream's run boundary (``streams.RUN_CHUNKS``),
past the held-bytes bound (``call.HELD_BYTES``), with oversized chunks mixed in, and for
streams read to the end; sync and async. The caller's thread looks at the head only, and a
sync stream runs no meter code per chunk in its steady state.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest

import meter
from meter.adapters.streams import RUN_CHUNKS
from meter.core import call as call_mod

URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
HEAD = (b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":'
        b'[{"prompt_index":0,"content_filter_results":{}}]}\n\n')


def delta(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"content_filter_results": {}, "delta": {"content": text},
                                                "finish_reason": None, "index": 0, "logprobs": None}],
                                   "created": 1, "id": "chatcmpl-held", "model": "gpt-4o-2024-11-20",
                                   "object": "chat.completion.chunk"}, separators=(",", ":")).encode() + b"\n\n"


FINISH = (b'data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,'
          b'"logprobs":null}],"created":1,"id":"chatcmpl-held","model":"gpt-4o-2024-11-20",'
          b'"object":"chat.completion.chunk"}\n\ndata: [DONE]\n\n')
BODY = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


def run_sync(chunks: list[bytes], read: int | None, got: list[bytes] | None = None) -> meter.CallRecord:
    records: list[meter.CallRecord] = []

    class Body(httpx2.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield from chunks

    def azure(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Body())

    m = meter.Meter(otel=False, prometheus=False, on_record=records.append)
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with client.stream("POST", URL, json=BODY) as r:
        for i, piece in enumerate(r.iter_raw()):
            if got is not None:
                got.append(piece)
            if read is not None and i + 1 >= read:
                break
    m.flush()
    assert len(records) == 1
    return records[0]


def run_async(chunks: list[bytes], read: int | None, got: list[bytes] | None = None) -> meter.CallRecord:
    records: list[meter.CallRecord] = []

    class Body(httpx2.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

    def azure(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Body())

    m = meter.Meter(otel=False, prometheus=False, on_record=records.append)

    async def main() -> None:
        transport = meter.AsyncMeteredTransport(httpx2.MockTransport(azure), meter=m)
        async with httpx2.AsyncClient(transport=transport) as client, client.stream("POST", URL, json=BODY) as r:
            i = 0
            async for piece in r.aiter_raw():
                if got is not None:
                    got.append(piece)
                i += 1
                if read is not None and i >= read:
                    break

    asyncio.run(main())
    m.flush()
    assert len(records) == 1
    return records[0]


RUNS = {"sync": run_sync, "async": run_async}


@pytest.mark.parametrize("stack", RUNS)
@pytest.mark.parametrize("deltas", [1, RUN_CHUNKS - 1, RUN_CHUNKS, RUN_CHUNKS + 1, 3 * RUN_CHUNKS + 5])
def test_a_stream_read_to_its_end_counts_every_delta(stack: str, deltas: int) -> None:
    record = RUNS[stack]([HEAD] + [delta(f" w{i}") for i in range(deltas)] + [FINISH], None)
    assert record.outcome == "ok" and record.usage_source == "estimated"
    assert record.usage is not None and record.usage.output_tokens == deltas


@pytest.mark.parametrize("stack", RUNS)
@pytest.mark.parametrize("seen", [2, 3, 4, RUN_CHUNKS, RUN_CHUNKS + 1, RUN_CHUNKS + 2, 2 * RUN_CHUNKS + 1, 90])
def test_a_stream_closed_anywhere_counts_the_deltas_the_caller_saw(stack: str, seen: int) -> None:
    record = RUNS[stack]([HEAD] + [delta(f" w{i}") for i in range(3 * RUN_CHUNKS)] + [FINISH], seen)
    assert record.outcome == "aborted" and record.usage is not None
    assert record.usage.output_tokens == seen - 1  # the first chunk is the prompt filter results


@pytest.mark.parametrize("stack", RUNS)
def test_every_byte_passes_in_the_same_pieces(stack: str) -> None:
    same = delta(" same")  # one bytes object repeated: a store keyed by the chunk would give it back once
    chunks = [HEAD] + [same] * (2 * RUN_CHUNKS + 7) + [delta(f" w{i}") for i in range(RUN_CHUNKS)] + [FINISH]
    got: list[bytes] = []
    record = RUNS[stack](chunks, None, got)
    assert got == chunks
    assert record.usage is not None and record.usage.output_tokens == 3 * RUN_CHUNKS + 7


@pytest.mark.parametrize("stack", RUNS)
@pytest.mark.parametrize("seen", [None, 40, 302, 450])
def test_past_the_held_bound_the_caller_looks_at_them_in_order(stack: str, seen: int | None,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(call_mod, "HELD_BYTES", 3000)  # about 15 deltas
    big = delta("x" * 5000)  # alone over the bound
    chunks = ([HEAD] + [delta(f" w{i}") for i in range(300)] + [big]
              + [delta(f" v{i}") for i in range(RUN_CHUNKS + 40)] + [FINISH])
    record = RUNS[stack](chunks, seen)
    assert record.usage is not None
    if seen is None:
        assert record.usage.output_tokens == 301 + RUN_CHUNKS + 40
        assert record.finish_reasons == ("stop",) and record.outcome == "ok"
    else:
        assert record.usage.output_tokens == seen - 1 and record.outcome == "aborted"


@pytest.mark.parametrize("stack", RUNS)
def test_a_finish_reason_after_held_deltas_is_seen(stack: str) -> None:
    record = RUNS[stack]([HEAD] + [delta(f" w{i}") for i in range(RUN_CHUNKS + 3)] + [FINISH], None)
    assert record.finish_reasons == ("stop",) and record.outcome == "ok"


@pytest.mark.parametrize("stack", RUNS)
def test_the_callers_thread_looks_at_the_head_only(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steady-state chunks are looked at where the end is built (the metering worker), not as they pass."""
    caller = threading.get_ident()
    on_caller: list[bytes] = []
    look = call_mod.Call._look

    def counted(self: call_mod.Call, chunk: bytes) -> None:
        if threading.get_ident() == caller:
            on_caller.append(chunk)
        look(self, chunk)

    monkeypatch.setattr(call_mod.Call, "_look", counted)
    record = RUNS[stack]([HEAD] + [delta(f" w{i}") for i in range(600)] + [FINISH], None)
    assert record.usage is not None and record.usage.output_tokens == 600
    assert len(on_caller) <= 3, f"the caller's thread looked at {len(on_caller)} chunks"


def test_a_sync_stream_runs_no_meter_code_per_steady_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"on_chunk": 0, "end_run": 0}
    on_chunk, end_run = call_mod.Call.on_chunk, call_mod.Call.end_run

    def counted_chunk(self: call_mod.Call, chunk: bytes) -> None:
        calls["on_chunk"] += 1
        on_chunk(self, chunk)

    def counted_run(self: call_mod.Call) -> None:
        calls["end_run"] += 1
        end_run(self)

    monkeypatch.setattr(call_mod.Call, "on_chunk", counted_chunk)
    monkeypatch.setattr(call_mod.Call, "end_run", counted_run)
    record = run_sync([HEAD] + [delta(f" w{i}") for i in range(4 * RUN_CHUNKS)] + [FINISH], None)
    assert record.usage is not None and record.usage.output_tokens == 4 * RUN_CHUNKS
    assert calls["on_chunk"] <= 3
    assert calls["end_run"] <= 6


def test_an_end_on_another_thread_mid_run_counts_what_the_caller_got() -> None:
    """A watchdog closes the response while a sync stream is inside a run: the end reads the run's store."""
    records: list[meter.CallRecord] = []
    m = meter.Meter(otel=False, prometheus=False, on_record=records.append)
    cut = RUN_CHUNKS + 10  # inside the second run
    chunks = [HEAD] + [delta(f" w{i}") for i in range(2 * RUN_CHUNKS)] + [FINISH]
    response: dict[str, httpx2.Response] = {}

    def watchdog() -> None:
        response["r"].close()
        m.flush()

    class Body(httpx2.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for i, chunk in enumerate(chunks):
                if i == cut:  # the caller has had chunks 0 .. cut - 1
                    other = threading.Thread(target=watchdog)
                    other.start()
                    other.join()
                yield chunk

    def azure(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Body())

    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with client.stream("POST", URL, json=BODY) as r:
        response["r"] = r
        for _ in r.iter_raw():
            pass
    m.flush()
    assert len(records) == 1
    assert records[0].outcome == "aborted"
    assert records[0].usage is not None and records[0].usage.output_tokens == cut - 1
