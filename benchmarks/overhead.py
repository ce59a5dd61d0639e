"""Per-call overhead through the real openai SDK: raw transport vs meter, in blocks, in one process.

Five arms share each round: ``raw`` (the canned transport alone) and meter in four
configurations, each with a ``Meter`` of its own: ``pricing`` (pricing only), ``prometheus``
(pricing + Prometheus on its own registry), ``full`` (pricing + Prometheus + OpenTelemetry SDK
spans through a ``SimpleSpanProcessor`` and SDK metrics), all three with ``metering="worker"``,
and ``inline``: ``full`` with ``metering="inline"`` (everything on the caller's thread).

Why blocks, not call by call: with the metering worker a call's deferred work runs while the
*next* call runs; interleaved call by call, that next call is often another arm's (raw's), which
is then charged for meter's work. So an arm runs a block of calls on its own, and the block's
last call ends only when ``Meter.flush()`` returns (inside its timed region): every job a block
made is paid by that block. Blocks rotate between the arms (the first arm moves by one each
block) so drift in the machine hits every arm alike.

Per arm, two numbers: the median over rounds of the per-call median (and p90), what one call
takes as the caller sees it; and the throughput cost, a round's total block wall time
(flushes included) over its calls, what a steady stream of calls costs. Each with its ratio to raw.
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

ARMS = ("raw", "pricing", "prometheus", "full", "inline")
JSON_BLOCK = 100
"""Calls per block (JSON); a stream block is a tenth of it."""
STREAM_BLOCK = 10
SCENARIOS = {"S1": "chat JSON", "S2": "chat stream", "S3": "Responses JSON", "S4": "Responses stream"}
API_VERSION = "2025-04-01-preview"
ENDPOINT = "https://bench.openai.azure.com"
MESSAGES: Any = [{"role": "user", "content": "How does Azure OpenAI billing work?"}]


class DiscardingExporter(SpanExporter):
    """Spans are built, ended and exported (the SDK's full path), then dropped: memory stays flat."""

    def export(self, spans: Any) -> SpanExportResult:
        self.last: ReadableSpan | None = spans[-1] if spans else None
        return SpanExportResult.SUCCESS


def arm_meter(arm: str) -> meter.Meter | None:
    """A new ``Meter`` configured as ``arm`` (``None`` for raw); the metering mode is explicit, never the env's."""
    if arm == "raw":
        return None
    if arm == "pricing":
        return meter.Meter(otel=False, prometheus=False, metering="worker")
    if arm == "prometheus":
        return meter.Meter(otel=False, registry=CollectorRegistry(), metering="worker")
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return meter.Meter(registry=CollectorRegistry(), tracer_provider=tracer_provider, meter_provider=meter_provider,
                       metering="inline" if arm == "inline" else "worker")


def sync_client(arm: str, answers: Answers, m: meter.Meter | None = None, latency_s: float = 0.0,
                ) -> openai.AzureOpenAI:
    """The SDK's sync client for ``arm``, metered by ``m`` (a new ``arm_meter(arm)`` when not given), over a
    transport that answers after ``latency_s``."""
    m = m if m is not None else arm_meter(arm)
    inner = AzureTransport(answers, latency_s)
    transport: httpx2.BaseTransport = inner if m is None else meter.MeteredTransport(inner, meter=m)
    return openai.AzureOpenAI(api_key="bench-key", api_version=API_VERSION, azure_endpoint=ENDPOINT,
                              http_client=httpx2.Client(transport=transport), max_retries=0)


def async_client(arm: str, answers: Answers, m: meter.Meter | None = None, latency_s: float = 0.0,
                 ) -> openai.AsyncAzureOpenAI:
    """The async twin of ``sync_client``."""
    m = m if m is not None else arm_meter(arm)
    inner = AsyncAzureTransport(answers, latency_s)
    transport: httpx2.AsyncBaseTransport = inner if m is None else meter.AsyncMeteredTransport(inner, meter=m)
    return openai.AsyncAzureOpenAI(api_key="bench-key", api_version=API_VERSION, azure_endpoint=ENDPOINT,
                                   http_client=httpx2.AsyncClient(transport=transport), max_retries=0)


def _flush(m: meter.Meter | None) -> None:
    if m is not None and not m.flush(60.0):
        raise RuntimeError("the metering worker did not drain in 60 s")


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


Round = dict[str, tuple[list[float], float]]
"""Per arm: the per-call seconds, and the summed wall seconds of its blocks (flushes included)."""


def _summarise(rounds: list[Round]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def throughput(r: Round, arm: str) -> float:
        return r[arm][1] / len(r[arm][0])

    raw_median = statistics.median(statistics.median(r["raw"][0]) for r in rounds)
    raw_p90 = statistics.median(_p90(r["raw"][0]) for r in rounds)
    raw_throughput = statistics.median(throughput(r, "raw") for r in rounds)
    for arm in ARMS:
        median = statistics.median(statistics.median(r[arm][0]) for r in rounds)
        p90 = statistics.median(_p90(r[arm][0]) for r in rounds)
        per_call = statistics.median(throughput(r, arm) for r in rounds)
        out[arm] = {"median_us": median * 1e6, "p90_us": p90 * 1e6, "ratio": median / raw_median,
                    "p90_ratio": p90 / raw_p90, "delta_us": (median - raw_median) * 1e6,
                    "throughput_us": per_call * 1e6, "throughput_ratio": per_call / raw_throughput,
                    "throughput_delta_us": (per_call - raw_throughput) * 1e6,
                    "samples": sum(len(r[arm][0]) for r in rounds)}
    return out


def _blocks(calls: int, block: int) -> tuple[int, int]:
    """(blocks per arm per round, calls per block): at least one block, ``calls`` rounded to whole blocks."""
    block = max(1, min(block, calls))
    return max(1, calls // block), block


def _order(n: int) -> tuple[str, ...]:
    k = n % len(ARMS)
    return ARMS[k:] + ARMS[:k]


def run_sync(scenario: str, rounds: int, calls: int, deltas: int, block: int = JSON_BLOCK,
             latency_s: float = 0.0) -> dict[str, Any]:
    answers = Answers(deltas)
    meters = {arm: arm_meter(arm) for arm in ARMS}
    clients = {arm: sync_client(arm, answers, meters[arm], latency_s) for arm in ARMS}
    call = sync_call(scenario)
    for _ in range(max(5, calls // 10)):  # warm every arm: imports, caches, the price quote
        for arm in ARMS:
            call(clients[arm])
    for m in meters.values():
        _flush(m)
    blocks, size = _blocks(calls, block)
    results: list[Round] = []
    for r in range(rounds):
        times: dict[str, list[float]] = {arm: [] for arm in ARMS}
        walls = dict.fromkeys(ARMS, 0.0)
        for b in range(blocks):
            for arm in _order(r * blocks + b):
                client, m, spent = clients[arm], meters[arm], times[arm]
                began = time.perf_counter()
                for _ in range(size - 1):
                    t0 = time.perf_counter()
                    call(client)
                    spent.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                call(client)
                _flush(m)  # the block's jobs are the block's: paid inside its last call
                t1 = time.perf_counter()
                spent.append(t1 - t0)
                walls[arm] += t1 - began
        results.append({arm: (times[arm], walls[arm]) for arm in ARMS})
    return _summarise(results)


def run_async(scenario: str, rounds: int, calls: int, deltas: int, block: int = JSON_BLOCK,
              latency_s: float = 0.0) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        answers = Answers(deltas)
        meters = {arm: arm_meter(arm) for arm in ARMS}
        clients = {arm: async_client(arm, answers, meters[arm], latency_s) for arm in ARMS}
        call = async_call(scenario)
        for _ in range(max(5, calls // 10)):
            for arm in ARMS:
                await call(clients[arm])
        for m in meters.values():
            _flush(m)
        blocks, size = _blocks(calls, block)
        results: list[Round] = []
        for r in range(rounds):
            times: dict[str, list[float]] = {arm: [] for arm in ARMS}
            walls = dict.fromkeys(ARMS, 0.0)
            for b in range(blocks):
                for arm in _order(r * blocks + b):
                    client, m, spent = clients[arm], meters[arm], times[arm]
                    began = time.perf_counter()
                    for _ in range(size - 1):
                        t0 = time.perf_counter()
                        await call(client)
                        spent.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    await call(client)
                    _flush(m)  # blocks the loop: nothing else runs on it here
                    t1 = time.perf_counter()
                    spent.append(t1 - t0)
                    walls[arm] += t1 - began
            results.append({arm: (times[arm], walls[arm]) for arm in ARMS})
        return _summarise(results)

    return asyncio.run(main())


def run(rounds: int, json_calls: int, stream_calls: int, deltas: int,
        scenarios: tuple[str, ...] = ("S1", "S2", "S3", "S4"), asynchronous: bool = True,
        latency_s: float = 0.0) -> dict[str, Any]:
    """Every scenario sync (S1-S4) and async (A1-A4): per arm, median and p90 µs, throughput µs per call, and
    the ratios to raw. ``latency_s``: the transport waits that long before it answers (0: at once, the worst
    case for meter; with a wait, the metering worker runs while the caller waits, as with a real network)."""
    out: dict[str, Any] = {}
    for scenario in scenarios:
        stream = scenario in ("S2", "S4")
        calls = stream_calls if stream else json_calls
        block = STREAM_BLOCK if stream else JSON_BLOCK
        out[scenario] = run_sync(scenario, rounds, calls, deltas, block, latency_s)
        if asynchronous:
            out["A" + scenario[1:]] = run_async(scenario, rounds, calls, deltas, block, latency_s)
    return out


def table(result: dict[str, Any]) -> str:
    """Markdown: per scenario, raw's per-call median and throughput µs, then each arm's with its ratios."""
    lines = ["per arm: per-call median µs (ratio to raw) / throughput µs per call, block wall time with the flush "
             "(ratio)", "",
             "| scenario | raw µs | " + " | ".join(ARMS[1:]) + " |", "|---|---:|" + "---:|" * (len(ARMS) - 1)]
    for scenario, arms in result.items():
        raw = arms["raw"]
        cells = [f"{a['median_us']:,.0f} (**{a['ratio']:.3f}x**) / {a['throughput_us']:,.0f} "
                 f"(**{a['throughput_ratio']:.3f}x**)" for a in (arms[arm] for arm in ARMS[1:])]
        lines.append(f"| {scenario} | {raw['median_us']:,.0f} / {raw['throughput_us']:,.0f} | " + " | ".join(cells)
                     + " |")
    return "\n".join(lines)
