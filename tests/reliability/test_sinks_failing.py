"""Property 5: sinks failing. Calls succeed, the added latency is measured, faults are counted and logged once.

An OTLP endpoint that is down or that accepts and never answers, a subscriber
that raises or blocks, a Prometheus metric that rejects a sample. Latency is
measured per call against the same workload with the failing part healthy or
absent, and written to the figures.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, Counter

import meter

URL = "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
BODY = {"id": "c1", "model": "gpt-4o-2024-11-20", "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def _client(m: meter.Meter) -> httpx2.Client:
    return httpx2.Client(transport=meter.MeteredTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, json=BODY)), meter=m))


def _median_us(client: httpx2.Client, calls: int = 200) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        response = client.post(URL, json={"messages": []})
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200
    return statistics.median(times) * 1e6


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """A port that accepts connections (in the backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("endpoint", ["down", "hanging"])
def test_an_otlp_endpoint_down_or_hanging_costs_the_calls_nothing(
        endpoint: str, hanging_endpoint: str, monkeypatch: pytest.MonkeyPatch, figures: dict[str, object]) -> None:
    url = hanging_endpoint if endpoint == "hanging" else _closed_port()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    tracer_provider, meter_provider = meter.setup_otel(service_name="reliability", set_global=False,
                                                       metric_export_interval_s=0.2)
    records: list[meter.CallRecord] = []
    failing = meter.Meter(on_record=records.append, tracer_provider=tracer_provider, meter_provider=meter_provider,
                          prometheus=False)
    healthy_exporter = InMemorySpanExporter()
    healthy = TracerProvider()
    healthy.add_span_processor(SimpleSpanProcessor(healthy_exporter))
    base = _median_us(_client(meter.Meter(tracer_provider=healthy, prometheus=False, otel=True)))
    got = _median_us(_client(failing), calls=400)  # long enough for exports to fail and retry meanwhile
    assert failing.flush(10)
    assert len(records) == 400 and all(r.usage is not None for r in records)
    assert got - base < 1000, f"{endpoint}: +{got - base:.0f} µs a call"
    t0 = time.perf_counter()
    tracer_provider.shutdown()
    meter_provider.shutdown(timeout_millis=2000)
    shutdown_s = time.perf_counter() - t0
    figures[f"sinks: OTLP endpoint {endpoint}"] = (f"median call {got:.0f} µs vs {base:.0f} µs with a healthy "
                                                   f"in-memory exporter; provider shutdown {shutdown_s:.1f} s")


def test_a_raising_subscriber_is_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="meter")
    got: list[meter.CallRecord] = []

    def broken(record: meter.CallRecord) -> None:
        raise RuntimeError("subscriber bug")

    m = meter.Meter(on_record=[broken, got.append], otel=False, prometheus=False)
    client = _client(m)
    for _ in range(50):
        assert client.post(URL, json={}).status_code == 200
    assert m.flush(10)
    assert len(got) == 50  # the next subscriber still gets every record
    assert m.faults == {"subscriber": 50}
    assert len([r for r in caplog.records if "metering fault (subscriber)" in r.getMessage()]) == 1


def test_a_blocking_subscriber_stalls_the_caller_unless_queued(figures: dict[str, object]) -> None:
    """``metering="inline"``: the caller waits for a blocking subscriber unless it is queued. With the metering
    worker (the default) the worker waits for it, not the caller."""
    block_s = 0.02
    seen: list[str] = []

    def slow(record: meter.CallRecord) -> None:
        seen.append(threading.current_thread().name)
        time.sleep(block_s)

    inline = _median_us(_client(meter.Meter(on_record=slow, otel=False, prometheus=False, metering="inline")),
                        calls=20)
    queued_sub = meter.QueuedSubscriber(slow, maxsize=100)
    queued = _median_us(_client(meter.Meter(on_record=queued_sub, otel=False, prometheus=False,
                                            metering="inline")), calls=20)
    base = _median_us(_client(meter.Meter(otel=False, prometheus=False, metering="inline")), calls=20)
    assert inline - base >= block_s * 1e6 * 0.9  # inline: the caller waits for the subscriber, as documented
    assert queued - base < 1000
    assert queued_sub.close(timeout=5) and queued_sub.dropped == 0
    seen.clear()
    on_worker = meter.Meter(on_record=slow, otel=False, prometheus=False)
    worker = _median_us(_client(on_worker), calls=20)
    worker_base = _median_us(_client(meter.Meter(otel=False, prometheus=False)), calls=20)
    assert worker - worker_base < 1000  # the worker: the caller does not wait for the subscriber
    assert on_worker.flush(10) and seen == ["meter-metering"] * 20  # and every record still reached it
    figures["sinks: subscriber blocking 20 ms"] = (f"inline +{(inline - base) / 1000:.1f} ms a call; "
                                                   f"QueuedSubscriber +{(queued - base):.0f} µs; "
                                                   f"metering worker +{(worker - worker_base):.0f} µs")


def test_a_queued_subscriber_that_falls_behind_drops_and_counts() -> None:
    gate = __import__("threading").Event()
    handled: list[meter.CallRecord] = []

    def stuck(record: meter.CallRecord) -> None:
        gate.wait(10)
        handled.append(record)

    sub = meter.QueuedSubscriber(stuck, maxsize=5)
    m = meter.Meter(on_record=sub, otel=False, prometheus=False)
    client = _client(m)
    t0 = time.perf_counter()
    for _ in range(30):
        client.post(URL, json={})
    assert m.flush(2)  # the worker hands the records to the queued subscriber: never waits on it either
    assert time.perf_counter() - t0 < 2  # never waited on the stuck subscriber
    assert sub.dropped >= 30 - 5 - 1
    gate.set()
    assert sub.close(timeout=5)
    assert len(handled) + sub.dropped == 30


async def _ticker(gaps: list[float]) -> None:
    """Tick every millisecond on the event loop, keeping the gaps between ticks (a stall shows as a long one)."""
    last = time.perf_counter()
    while True:
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def test_a_blocking_subscriber_stalls_the_event_loop(figures: dict[str, object]) -> None:
    """Documented: with ``metering="inline"`` subscribers run on the loop for async clients. Measured here,
    with a ticker task."""
    block_s = 0.05

    def slow(record: meter.CallRecord) -> None:
        time.sleep(block_s)

    transport = meter.AsyncMeteredTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, json=BODY)),
        meter=meter.Meter(on_record=slow, otel=False, prometheus=False, metering="inline"))
    gaps: list[float] = []
    tick = asyncio.ensure_future(_ticker(gaps))
    async with httpx2.AsyncClient(transport=transport) as client:
        for _ in range(5):
            await client.post(URL, json={})
            await asyncio.sleep(0.005)
    tick.cancel()
    assert max(gaps) >= block_s * 0.9
    figures["sinks: subscriber blocking 50 ms, async"] = f"event loop stalled up to {max(gaps) * 1000:.0f} ms"


async def test_a_blocking_subscriber_does_not_stall_the_event_loop_with_the_metering_worker(
        figures: dict[str, object]) -> None:
    """The default: the subscriber runs on the metering worker, so the loop's ticker keeps ticking."""
    block_s = 0.3
    seen: list[str] = []

    def slow(record: meter.CallRecord) -> None:
        seen.append(threading.current_thread().name)
        time.sleep(block_s)

    m = meter.Meter(on_record=slow, otel=False, prometheus=False, price_book=False)
    transport = meter.AsyncMeteredTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, json=BODY)), meter=m)
    gaps: list[float] = []
    tick = asyncio.ensure_future(_ticker(gaps))
    async with httpx2.AsyncClient(transport=transport) as client:
        for _ in range(3):
            await client.post(URL, json={})
            await asyncio.sleep(0.005)
    await asyncio.sleep(block_s * 2)  # the worker is in the subscriber meanwhile
    tick.cancel()
    assert max(gaps) < block_s / 2
    assert m.flush(10) and seen == ["meter-metering"] * 3
    figures["sinks: subscriber blocking 300 ms, async, metering worker"] = (
        f"event loop's longest gap {max(gaps) * 1000:.0f} ms")


@pytest.mark.parametrize("store", ["aggregate", "multiprocess"])
def test_a_metric_rejecting_a_sample_is_a_counted_fault(monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                                        caplog: pytest.LogCaptureFixture, store: str) -> None:
    """Both Prometheus stores: the in-process aggregate one (its additions fail) and the multiprocess one
    (prometheus-client's ``Counter.inc`` rejects the sample)."""
    caplog.set_level(logging.WARNING, logger="meter")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    got: list[meter.CallRecord] = []
    if store == "multiprocess":
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        real_inc = Counter.inc

        def rejecting(self: Any, amount: float = 1, exemplar: Any = None) -> None:
            if self._name.endswith("input_tokens"):
                raise ValueError("sample rejected")
            real_inc(self, amount, exemplar)

        monkeypatch.setattr(Counter, "inc", rejecting)
    else:
        from meter.sinks import prometheus_aggregate

        def rejecting_add(counter: Any, amount: float, trace_id: str | None, now: float) -> None:
            raise ValueError("sample rejected")

        monkeypatch.setattr(prometheus_aggregate, "_add", rejecting_add)
    m = meter.Meter(on_record=got.append, registry=CollectorRegistry(), tracer_provider=provider)
    client = _client(m)
    for _ in range(20):
        assert client.post(URL, json={}).status_code == 200
    assert m.flush(10)
    assert len(got) == 20 and len(exporter.get_finished_spans()) == 20  # the other sinks were unaffected
    assert m.faults == {"sink": 20}
    assert len([r for r in caplog.records if "metering fault (sink)" in r.getMessage()]) == 1


def test_a_registry_that_refuses_meters_metrics_fails_at_construction() -> None:
    registry = CollectorRegistry()
    Counter("llm_requests", "someone else's metric", registry=registry)
    with pytest.raises(ValueError, match="llm_requests"):
        meter.Meter(registry=registry)


def test_a_clash_halfway_leaves_the_registry_as_it_was() -> None:
    from prometheus_client import Gauge

    registry = CollectorRegistry()
    Gauge("llm_label_overflow_total", "someone else's, registered last by meter", registry=registry)
    before = set(registry._names_to_collectors)
    with pytest.raises(ValueError, match="clash"):
        meter.Meter(registry=registry)
    assert set(registry._names_to_collectors) == before  # nothing of meter's left half-registered
    meter.Meter(registry=registry, namespace="mine")  # another namespace fits beside it
