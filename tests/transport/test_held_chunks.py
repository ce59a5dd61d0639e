"""Steady-state chunks are held and looked at in batches; none is lost or counted twice.

A chat stream without a usage chunk gets its output estimated from the deltas meter saw,
so the estimate counts exactly the delta events the caller received, wherever the
caller stopped: before, at and after a batch boundary (``call.HELD_CHUNKS``), with
small and oversized chunks mixed in, and for streams read to the end.
"""

from __future__ import annotations

import json

import httpx2
import pytest

import meter
from meter.core.call import HELD_CHUNK_BYTES, HELD_CHUNKS

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


def run(chunks: list[bytes], read: int | None) -> meter.CallRecord:
    records: list[meter.CallRecord] = []

    class Body(httpx2.SyncByteStream):
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield from chunks

    def azure(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Body())

    m = meter.Meter(otel=False, prometheus=False, on_record=records.append)
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with client.stream("POST", URL, json={"messages": [{"role": "user", "content": "hi"}], "stream": True}) as r:
        for i, _ in enumerate(r.iter_raw()):
            if read is not None and i + 1 >= read:
                break
    m.flush()
    assert len(records) == 1
    return records[0]


@pytest.mark.parametrize("deltas", [1, HELD_CHUNKS - 1, HELD_CHUNKS, HELD_CHUNKS + 1, 3 * HELD_CHUNKS + 5])
def test_a_stream_read_to_its_end_counts_every_delta(deltas: int) -> None:
    record = run([HEAD] + [delta(f" w{i}") for i in range(deltas)] + [FINISH], None)
    assert record.outcome == "ok" and record.usage_source == "estimated"
    assert record.usage is not None and record.usage.output_tokens == deltas


@pytest.mark.parametrize("seen", [2, 3, HELD_CHUNKS, HELD_CHUNKS + 1, HELD_CHUNKS + 2, 2 * HELD_CHUNKS + 1, 90])
def test_a_stream_closed_anywhere_counts_the_deltas_the_caller_saw(seen: int) -> None:
    record = run([HEAD] + [delta(f" w{i}") for i in range(200)] + [FINISH], seen)
    assert record.outcome == "aborted" and record.usage is not None
    assert record.usage.output_tokens == seen - 1  # the first chunk is the prompt filter results


def test_an_oversized_chunk_flushes_what_is_held_in_order() -> None:
    big = delta("x" * (HELD_CHUNK_BYTES + 10))
    chunks = [HEAD] + [delta(f" w{i}") for i in range(10)] + [big] + [delta(f" v{i}") for i in range(10)] + [FINISH]
    record = run(chunks, None)
    assert record.usage is not None and record.usage.output_tokens == 21
    assert record.finish_reasons == ("stop",)


def test_a_finish_reason_after_held_deltas_is_seen() -> None:
    record = run([HEAD] + [delta(f" w{i}") for i in range(HELD_CHUNKS + 3)] + [FINISH], None)
    assert record.finish_reasons == ("stop",) and record.outcome == "ok"
