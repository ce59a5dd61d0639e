"""Per-call overhead through the real openai SDK: raw transport vs meter, interleaved, in one process.

Four arms share each round: ``raw`` (the canned transport alone) and meter in three
configurations, ``pricing`` (pricing only), ``prometheus`` (pricing + Prometheus on its
own registry) and ``full`` (pricing + Prometheus + OpenTelemetry SDK spans through a
``SimpleSpanProcessor`` and SDK metrics). Calls rotate through the arms (raw, pricing,
prometheus, full, then the next rotation starting one arm later), so drift in the
machine hits every arm alike. Each round gives a median and a p90 per arm; the result
is the median over rounds, and each arm's ratio to raw.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

import meter
from benchmarks.azure import Answers, AsyncAzureTransport, AzureTransport

ARMS = ("raw", "pricing", "prometheus", "full")
SCENARIOS = {"S1": "chat JSON", "S2": "chat stream", "S3": "Responses JSON", "S4": "Responses stream"}
API_VERSION = "2025-04-01-preview"
ENDPOINT = "https://bench.openai.azure.com"
MESSAGES: Any = [{"role": "user", "content": "How does Azure OpenAI billing work?"}]


class DiscardingExporter(SpanExporter):
    """Spans are built, ended and exported (the SDK's full path), then dropped: memory stays flat."""

    def export(self, spans: Any) -> SpanExportResult:
        self.last: ReadableSpan | None = spans[-1] if spans else None
        return SpanExportResult.SUCCESS


def _meter(arm: str) -> meter.Meter | None:
    if arm == "raw":
        return None
    if arm == "pricing":
        return meter.Meter(otel=False, prometheus=False)
    if arm == "prometheus":
        return meter.Meter(otel=False, registry=CollectorRegistry())
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return meter.Meter(registry=CollectorRegistry(), tracer_provider=tracer_provider, meter_provider=meter_provider)


def sync_client(arm: str, answers: Answers) -> openai.AzureOpenAI:
    m = _meter(arm)
    inner = AzureTransport(answers)
    transport: httpx2.BaseTransport = inner if m is None else meter.MeteredTransport(inner, meter=m)
    return openai.AzureOpenAI(api_key="bench-key", api_version=API_VERSION, azure_endpoint=ENDPOINT,
                              http_client=httpx2.Client(transport=transport), max_retries=0)


def async_client(arm: str, answers: Answers) -> openai.AsyncAzureOpenAI:
    m = _meter(arm)
    inner = AsyncAzureTransport(answers)
    transport: httpx2.AsyncBaseTransport = inner if m is None else meter.AsyncMeteredTransport(inner, meter=m)
    return openai.AsyncAzureOpenAI(api_key="bench-key", api_version=API_VERSION, azure_endpoint=ENDPOINT,
                                   http_client=httpx2.AsyncClient(transport=transport), max_retries=0)


def sync_call(scenario: str) -> Callable[[openai.AzureOpenAI], None]:
    def s1(c: openai.AzureOpenAI) -> None:
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    def s2(c: openai.AzureOpenAI) -> None:
        for _ in c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                           stream_options={"include_usage": True}):
            pass

    def s3(c: openai.AzureOpenAI) -> None:
        c.responses.create(model="gpt-4o", input="How does Azure OpenAI billing work?")

    def s4(c: openai.AzureOpenAI) -> None:
        for _ in c.responses.create(model="gpt-4o", input="How does Azure OpenAI billing work?", stream=True):
            pass

    return {"S1": s1, "S2": s2, "S3": s3, "S4": s4}[scenario]


def async_call(scenario: str) -> Callable[[openai.AsyncAzureOpenAI], Awaitable[None]]:
    async def a1(c: openai.AsyncAzureOpenAI) -> None:
        await c.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    async def a2(c: openai.AsyncAzureOpenAI) -> None:
        async for _ in await c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                                       stream_options={"include_usage": True}):
            pass

    async def a3(c: openai.AsyncAzureOpenAI) -> None:
        await c.responses.create(model="gpt-4o", input="How does Azure OpenAI billing work?")

    async def a4(c: openai.AsyncAzureOpenAI) -> None:
        async for _ in await c.responses.create(model="gpt-4o", input="How does Azure OpenAI billing work?",
                                                stream=True):
            pass

    return {"S1": a1, "S2": a2, "S3": a3, "S4": a4}[scenario]


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def _summarise(rounds: list[dict[str, list[float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    raw_median = statistics.median(statistics.median(r["raw"]) for r in rounds)
    raw_p90 = statistics.median(_p90(r["raw"]) for r in rounds)
    for arm in ARMS:
        median = statistics.median(statistics.median(r[arm]) for r in rounds)
        p90 = statistics.median(_p90(r[arm]) for r in rounds)
        out[arm] = {"median_us": median * 1e6, "p90_us": p90 * 1e6, "ratio": median / raw_median,
                    "p90_ratio": p90 / raw_p90, "delta_us": (median - raw_median) * 1e6,
                    "samples": sum(len(r[arm]) for r in rounds)}
    return out


def run_sync(scenario: str, rounds: int, calls: int, deltas: int) -> dict[str, Any]:
    answers = Answers(deltas)
    clients = {arm: sync_client(arm, answers) for arm in ARMS}
    call = sync_call(scenario)
    for _ in range(max(5, calls // 10)):  # warm every arm: imports, caches, the price quote
        for arm in ARMS:
            call(clients[arm])
    results = []
    for _ in range(rounds):
        times: dict[str, list[float]] = {arm: [] for arm in ARMS}
        for i in range(calls):
            for k in range(len(ARMS)):
                arm = ARMS[(i + k) % len(ARMS)]
                t0 = time.perf_counter()
                call(clients[arm])
                times[arm].append(time.perf_counter() - t0)
        results.append(times)
    return _summarise(results)


def run_async(scenario: str, rounds: int, calls: int, deltas: int) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        answers = Answers(deltas)
        clients = {arm: async_client(arm, answers) for arm in ARMS}
        call = async_call(scenario)
        for _ in range(max(5, calls // 10)):
            for arm in ARMS:
                await call(clients[arm])
        results = []
        for _ in range(rounds):
            times: dict[str, list[float]] = {arm: [] for arm in ARMS}
            for i in range(calls):
                for k in range(len(ARMS)):
                    arm = ARMS[(i + k) % len(ARMS)]
                    t0 = time.perf_counter()
                    await call(clients[arm])
                    times[arm].append(time.perf_counter() - t0)
            results.append(times)
        return _summarise(results)

    return asyncio.run(main())


def run(rounds: int, json_calls: int, stream_calls: int, deltas: int,
        scenarios: tuple[str, ...] = ("S1", "S2", "S3", "S4"), asynchronous: bool = True) -> dict[str, Any]:
    """Every scenario sync (S1-S4) and async (A1-A4): per arm, median and p90 µs, and the ratios to raw."""
    out: dict[str, Any] = {}
    for scenario in scenarios:
        calls = stream_calls if scenario in ("S2", "S4") else json_calls
        out[scenario] = run_sync(scenario, rounds, calls, deltas)
        if asynchronous:
            out["A" + scenario[1:]] = run_async(scenario, rounds, calls, deltas)
    return out
