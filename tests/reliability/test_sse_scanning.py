"""Property 6 (bounded resources) for SSE: linear in one huge event, and an oversized event keeps its usage.

Defect 7: the scanner re-joined and re-split the unfinished line with every
chunk, so one 10 MB ``response.completed`` (it carries the whole output, base64
images included) in 16 KiB chunks took 2.1 s; an event over the size limit was
dropped silently and its usage lost. Now time grows with the bytes, and an
oversized event is read from its kept head (type, id, status, model) and tail
(usage), with a fault counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from unittest import mock

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import meter
import meter.core.sse as sse
from meter.core.sse import SSEScanner
from tests.reliability.conftest import soak
from tests.support.memory import peak_kib, rss_kib
from tests.support.replay import CannedResponse, ReplayServer

USAGE = {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": 900,
         "output_tokens_details": {"reasoning_tokens": 256}, "total_tokens": 2100}


def completed_event(payload_bytes: int) -> bytes:
    """A Responses terminal event whose output carries ``payload_bytes`` of base64 (an image)."""
    response = {"id": "resp_big", "object": "response", "created_at": 1, "status": "completed",
                "background": False, "error": None, "incomplete_details": None, "instructions": None,
                "model": "gpt-5-2025-08-07",
                "output": [{"type": "image_generation_call", "id": "ig_1", "status": "completed",
                            "result": "A" * payload_bytes}],
                "tools": [{"type": "function", "name": "f", "parameters": {"properties": {"usage": {"type": "x"}}}}],
                "usage": USAGE, "user": None, "metadata": {}}
    data = json.dumps({"type": "response.completed", "sequence_number": 9, "response": response},
                      separators=(",", ":")).encode()
    return b"event: response.completed\ndata: " + data + b"\n\n"


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _scan_seconds(event: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        scanner = SSEScanner(on_oversized=lambda head, tail: None)
        t0 = time.perf_counter()
        for piece in chunks(event, 16 * 1024):
            scanner.feed(piece, lambda payload: None)
        scanner.flush()
        best = min(best, time.perf_counter() - t0)
    return best


def test_one_huge_event_scans_in_linear_time(figures: dict[str, object]) -> None:
    small, big = _scan_seconds(completed_event(1_000_000)), _scan_seconds(completed_event(10_000_000))
    figures["sse 1 MB event in 16 KiB chunks"] = f"{small * 1000:.1f} ms"
    figures["sse 10 MB event in 16 KiB chunks"] = f"{big * 1000:.1f} ms (was 2.1 s)"
    assert big < 0.5
    assert big < 20 * small + 0.005  # linear: ~10x; the old quadratic scanner: ~100x


def test_a_million_tiny_events(figures: dict[str, object]) -> None:
    n = soak(1_000_000, 5_000_000)
    stream = b"data: {}\n\n" * n
    count = 0

    def seen(payload: bytes) -> None:
        nonlocal count
        count += 1

    scanner = SSEScanner()
    t0 = time.perf_counter()
    for piece in chunks(stream, 16 * 1024):
        scanner.feed(piece, seen)
    seconds = time.perf_counter() - t0
    assert count == n
    figures[f"sse {n} tiny events in 16 KiB chunks"] = f"{seconds:.2f} s ({seconds / n * 1e9:.0f} ns/event)"


@pytest.mark.parametrize("split", [16 * 1024, 65_536, 1_000_003])
def test_an_oversized_event_keeps_its_usage_through_the_transport(split: int) -> None:
    event = completed_event(sse.MAX_EVENT_BYTES + 4_000_000)
    body = (b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":'
            b'{"id":"resp_big","status":"in_progress","model":"gpt-5-2025-08-07"}}\n\n' + event)
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)
    with ReplayServer() as srv:
        srv.add("POST", "/openai/v1/responses", CannedResponse(200, [("content-type", "text/event-stream")],
                                                               list(chunks(body, split))))
        with httpx2.Client(transport=meter.MeteredTransport(httpx2.HTTPTransport(), meter=m)) as client:
            with client.stream("POST", srv.url + "/openai/v1/responses", json={"model": "gpt-5", "stream": True,
                                                                               "input": "draw"}) as response:
                got = b"".join(response.iter_raw())
    assert got == body
    assert m.flush(10)  # the record comes on the metering worker
    (record,) = records
    assert (record.outcome, record.usage_source, record.response_id) == ("ok", "stream", "resp_big")
    assert record.usage == meter.Usage(input_tokens=1200, cached_input_tokens=1024, output_tokens=900,
                                       reasoning_output_tokens=256, total_tokens=2100)
    assert record.response_model == "gpt-5-2025-08-07" and record.finish_reasons == ("completed",)
    assert m.faults == {"event_too_large": 1}


def test_an_oversized_event_takes_bounded_memory() -> None:
    event = completed_event(3 * sse.MAX_EVENT_BYTES)
    scanner = SSEScanner(on_oversized=lambda head, tail: None)
    pieces = list(chunks(event, 64 * 1024))
    base = rss_kib()
    for piece in pieces:
        scanner.feed(piece)
    grown_mb = (peak_kib() - base) / 1024
    assert grown_mb < sse.MAX_EVENT_BYTES / 2**20 + 8, grown_mb  # one event's worth, not three, not twice


@settings(max_examples=soak(300, 5000), deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=9_000), max_size=40),
       multiline=st.booleans(), crlf=st.booleans())
def test_oversized_events_read_the_same_under_any_split(cuts: list[int], multiline: bool, crlf: bool) -> None:
    with mock.patch.object(sse, "MAX_EVENT_BYTES", 1000), mock.patch.object(sse, "KEEP_BYTES", 64):
        _same_under_split(cuts, multiline, crlf)


def _same_under_split(cuts: list[int], multiline: bool, crlf: bool) -> None:
    big = completed_event(4000).split(b"data: ", 1)[1].rstrip(b"\n")
    body = b"data: " + (big[:700] + b"\ndata: " + big[700:] if multiline else big) + b"\n\n: note\n\ndata: {}\n\n"
    if crlf:
        body = body.replace(b"\n", b"\r\n")

    def scan(parts: list[bytes]) -> tuple[list[bytes], list[tuple[bytes, bytes]]]:
        events: list[bytes] = []
        oversized: list[tuple[bytes, bytes]] = []
        scanner = SSEScanner(on_oversized=lambda head, tail: oversized.append((head, tail)))
        for part in parts:
            scanner.feed(part, events.append)
        events += scanner.flush()
        return events, oversized

    whole = scan([body])
    assert whole[0] == [b"{}"] and len(whole[1]) == 1
    head, tail = whole[1][0]
    assert head.startswith(b'{"type":"response.completed"') and tail.endswith(b'"metadata":{}}}')
    points = sorted({c % len(body) for c in cuts} - {0})
    parts = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert scan(parts) == whole
