"""Property 6: bounded resources. Huge and endless streams, and label values without end.

(The decompression bombs are in test_bombs.py; one huge SSE event and a million
tiny ones in test_sse_scanning.py.) Streams here come from an in-process
generator, so nothing but the client and meter holds their bytes, and the peak
resident memory of the read is compared with an unmetered read of the same.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2
from prometheus_client import CollectorRegistry

import meter
from meter import names
from tests.reliability.conftest import soak
from tests.support.memory import peak_kib, rss_kib

URL = "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
DELTA = (b'data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"' + b"x" * 16_000
         + b'"},"finish_reason":null}],"usage":null}\n\n')
USAGE = (b'data: {"id":"c1","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":%d,'
         b'"total_tokens":%d}}\n\ndata: [DONE]\n\n')


class GeneratedStream(httpx2.SyncByteStream):
    def __init__(self, total: int | None) -> None:
        self.total = total

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        events = 0
        while self.total is None or sent < self.total:
            yield DELTA
            sent += len(DELTA)
            events += 1
        yield USAGE % (events, events + 9)


class Generated(httpx2.BaseTransport):
    def __init__(self, total: int | None) -> None:
        self.total = total

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=GeneratedStream(self.total))


def _read(transport: Any, limit: int | None = None) -> tuple[float, float, int]:
    """(peak MB added, seconds, bytes read); stops after ``limit`` bytes if given."""
    base = rss_kib()
    t0 = time.perf_counter()
    read = 0
    with httpx2.Client(transport=transport) as client:
        with client.stream("POST", URL, content=b'{"stream":true}') as response:
            for chunk in response.iter_raw():
                read += len(chunk)
                if limit is not None and read >= limit:
                    break
    return (peak_kib() - base) / 1024, time.perf_counter() - t0, read


def test_a_100_mb_stream_takes_no_memory(figures: dict[str, object]) -> None:
    total = soak(100, 1000) * 1024 * 1024
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)
    raw_mb, raw_s, _ = _read(Generated(total))
    metered_mb, metered_s, read = _read(meter.MeteredTransport(Generated(total), meter=m))
    assert read >= total
    assert m.flush(60)
    (record,) = records
    assert record.outcome == "ok" and record.usage is not None and record.usage.output_tokens > 6000
    assert metered_mb - raw_mb < 2, f"+{metered_mb - raw_mb:.1f} MB"
    figures[f"bounded: {total >> 20} MB stream"] = (f"peak +{metered_mb:.1f} MB metered vs +{raw_mb:.1f} MB raw; "
                                                    f"{metered_s:.2f} s vs {raw_s:.2f} s")


def test_an_endless_stream_closed_by_the_caller(figures: dict[str, object]) -> None:
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)
    limit = soak(200, 2000) * 1024 * 1024
    grown_mb, seconds, read = _read(meter.MeteredTransport(Generated(None), meter=m), limit=limit)
    assert m.flush(60)
    (record,) = records
    assert record.outcome == "aborted" and record.usage_source == "estimated"
    assert record.usage is not None and record.usage.output_tokens == read // len(DELTA)
    assert grown_mb < 2
    figures["bounded: endless stream"] = (f"read {read >> 20} MB in {seconds:.1f} s, peak +{grown_mb:.1f} MB, "
                                          "closed: 1 record")


def test_ten_thousand_label_values_stay_bounded(figures: dict[str, object]) -> None:
    registry = CollectorRegistry()
    seen = {"records": 0, "last_team": ""}

    def count(record: meter.CallRecord) -> None:  # keeps no record: the memory measured is meter's
        seen["records"] += 1
        seen["last_team"] = record.attributes["team"]

    m = meter.Meter(on_record=count, otel=False, registry=registry, label_keys=("team",), max_label_values=100)
    body = (b'{"id":"c","model":"gpt-4o-2024-11-20","choices":[],'
            b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}')
    transport = meter.MeteredTransport(httpx2.MockTransport(
        lambda request: httpx2.Response(200, content=body, headers={"content-type": "application/json"})), meter=m)
    n = soak(10_000, 100_000)
    before = rss_kib()
    with httpx2.Client(transport=transport) as client:
        for i in range(n):
            with meter.attribute(team=f"team-{i}"):
                client.post(URL.replace("/d/", f"/dep-{i}/"), content=b"{}")
    assert m.flush(60)  # every call metered (the worker's queue emptied) before the memory is read
    grown_mb = (rss_kib() - before) / 1024
    ns = names.DEFAULT_NAMESPACE
    series = [s for metric in registry.collect() for s in metric.samples if s.name == names.requests_total(ns)]
    teams = {s.labels["team"] for s in series}
    deployments = {s.labels["deployment"] for s in series}
    assert len(teams) <= 101 and "other" in teams
    assert len(deployments) <= 101 and "other" in deployments
    assert sum(s.value for s in series) == n  # folded into "other", never lost
    overflow = {s.labels["label"]: s.value for metric in registry.collect() for s in metric.samples
                if s.name == names.label_overflow_total(ns)}
    assert overflow["team"] == n - 100 and overflow["deployment"] == n - 100
    assert seen == {"records": n, "last_team": f"team-{n - 1}"}  # records keep every value
    assert grown_mb < 8
    figures["bounded: distinct label values"] = (f"{n} teams and deployments -> {len(teams)} and {len(deployments)} "
                                                 f"series values; RSS +{grown_mb:.1f} MB")
