"""What meter adds on the caller's thread per JSON call (issue 25: p50 <= 20 µs, p99 <= 60 µs).

meter's entry points on the caller's thread are wrapped with ``perf_counter_ns`` accumulators,
reset per call: ``meter.adapters.transport.start`` (recognise the call, ``Meter.begin``),
``meter.adapters.transport.attach`` (the response head; an in-memory JSON body's chunks and end
are handed over inside it) and ``Call.on_chunk``, ``Call.on_end``, ``Call.on_close`` (a streamed
body's). Only the outermost entry counts (``attach`` calls ``on_chunk`` and ``on_end`` for a body
already in memory), and only on the caller's thread (the metering worker never reaches these, but
a finaliser might). What the ``MeteredTransport`` does around them (a context variable set and
reset, the meter's lookup) is outside and not counted.

Two clocks per entry: wall time (``perf_counter_ns``: what the caller waits, preemption and GIL
waits included) and the thread's CPU time (``thread_time_ns``: meter's own work on this thread; on
a busy machine the steadier of the two). The wrapper's own cost inside its accumulators (the
clock reads and the call through the wrapper) is measured on an empty function and subtracted per
entry; it is reported.

Two ways to call: ``back to back`` (the next call starts at once, so in worker mode the worker's
jobs for the previous call run meanwhile, and their holding the GIL can land inside meter's entry
points: real time the caller waits) and ``isolated`` (``Meter.flush()`` after each call, outside the
measurement: only the caller's own work).
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import meter.adapters.transport as transport_module
from benchmarks import overhead
from benchmarks.azure import Answers
from meter.core.call import Call

F = TypeVar("F", bound=Callable[..., Any])
MODES = ("worker", "inline")
SCENARIOS = ("S1", "S3")
TARGET_P50_US = 20.0
TARGET_P99_US = 60.0


class Probe:
    """Nanoseconds spent in meter's entry points on one thread since ``reset``, and how many entries."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.ns = 0
        self.cpu_ns = 0
        self.entries = 0
        self.depth = 0
        self.by_name: dict[str, int] = {}
        """Wall ns per entry point (outermost entries only)."""

    def reset(self) -> None:
        self.ns = self.cpu_ns = self.entries = 0
        self.by_name = {}

    def wrap(self, fn: F, name: str = "") -> F:
        """``fn`` timed when it is entered from outside meter on the probe's thread."""
        now, cpu, ident = time.perf_counter_ns, time.thread_time_ns, threading.get_ident

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.depth or ident() != self.thread:
                return fn(*args, **kwargs)
            self.depth = 1
            c0 = cpu()
            t0 = now()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = now() - t0
                self.cpu_ns += cpu() - c0
                self.ns += spent
                self.by_name[name] = self.by_name.get(name, 0) + spent
                self.entries += 1
                self.depth = 0

        return timed  # type: ignore[return-value]


ENTRY_POINTS: tuple[tuple[Any, str], ...] = (
    (transport_module, "start"), (transport_module, "attach"),
    (Call, "on_chunk"), (Call, "on_end"), (Call, "on_close"),
)


@contextmanager
def probing(probe: Probe) -> Iterator[Probe]:
    """Meter's entry points wrapped by ``probe`` for the block; put back after it."""
    saved = [(owner, name, owner.__dict__[name]) for owner, name in ENTRY_POINTS]
    try:
        for owner, name, fn in saved:
            setattr(owner, name, probe.wrap(fn, name))
        yield probe
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def wrapper_cost_ns(n: int = 20_000) -> tuple[float, float]:
    """The wrapper's own wall and CPU time inside its accumulators, per entry, on an empty function (median of 5)."""

    def empty(*args: Any) -> None:
        return None

    probe = Probe()
    timed = probe.wrap(empty)
    wall, cpu = [], []
    for _ in range(5):
        probe.reset()
        for _ in range(n):
            timed(None, None)
        wall.append(probe.ns / probe.entries)
        cpu.append(probe.cpu_ns / probe.entries)
    return statistics.median(wall), statistics.median(cpu)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Cost = tuple[float, float]
"""The wrapper's own (wall, CPU) ns per entry."""


def _net_us(per_call_ns: list[int], entries: list[int], cost_ns: float) -> list[float]:
    return [max(0.0, ns - k * cost_ns) / 1000 for ns, k in zip(per_call_ns, entries, strict=True)]


Sample = tuple[int, int, int, dict[str, int]]
"""One call's wall ns, CPU ns, entries, and wall ns per entry point."""


def _sample(probe: Probe) -> Sample:
    return probe.ns, probe.cpu_ns, probe.entries, probe.by_name


def _summary(samples: list[Sample], cost: Cost) -> dict[str, Any]:
    entries = [k for _, _, k, _ in samples]
    names = sorted({name for *_, by_name in samples for name in by_name})
    by_name = {name: statistics.median(max(0.0, s[3].get(name, 0) - cost[0]) / 1000 for s in samples)
               for name in names}
    wall = _net_us([s[0] for s in samples], entries, cost[0])
    cpu = _net_us([s[1] for s in samples], entries, cost[1])
    p50, p99 = _percentile(wall, 0.5), _percentile(wall, 0.99)
    return {"p50_us": p50, "p99_us": p99, "mean_us": statistics.fmean(wall), "max_us": max(wall),
            "cpu_p50_us": _percentile(cpu, 0.5), "cpu_p99_us": _percentile(cpu, 0.99),
            "entries_per_call": statistics.median(entries), "calls": len(wall), "p50_by_entry_us": by_name,
            "meets_targets": p50 <= TARGET_P50_US and p99 <= TARGET_P99_US}


def run_sync(scenario: str, mode: str, calls: int, isolated: bool, cost: Cost, latency_s: float = 0.0,
             ) -> dict[str, Any]:
    m = overhead.arm_meter("inline" if mode == "inline" else "full")
    assert m is not None and m.metering == mode, (mode, m)
    client = overhead.sync_client("full", Answers(5), m, latency_s)
    call = overhead.sync_call(scenario)
    for _ in range(max(20, calls // 10)):
        call(client)
    m.flush(60.0)
    samples: list[Sample] = []
    with probing(Probe()) as probe:
        for _ in range(calls):
            probe.reset()
            call(client)
            samples.append(_sample(probe))
            if isolated:
                m.flush(60.0)
    m.flush(60.0)
    return _summary(samples, cost)


def run_async(scenario: str, mode: str, calls: int, isolated: bool, cost: Cost, latency_s: float = 0.0,
              ) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        m = overhead.arm_meter("inline" if mode == "inline" else "full")
        assert m is not None and m.metering == mode, (mode, m)
        client = overhead.async_client("full", Answers(5), m, latency_s)
        call = overhead.async_call(scenario)
        for _ in range(max(20, calls // 10)):
            await call(client)
        m.flush(60.0)
        samples: list[Sample] = []
        with probing(Probe()) as probe:
            for _ in range(calls):
                probe.reset()
                await call(client)
                samples.append(_sample(probe))
                if isolated:
                    m.flush(60.0)
        m.flush(60.0)
        return _summary(samples, cost)

    return asyncio.run(main())


def run(calls: int, latency_s: float = 0.0) -> dict[str, Any]:
    """S1 and S3, sync and async, worker and inline, back to back and isolated: p50/p99 µs on the caller's thread
    (the full configuration: pricing, Prometheus, OTel SDK spans and metrics); the transport answers after
    ``latency_s`` (0: at once)."""
    cost = wrapper_cost_ns()
    out: dict[str, Any] = {"wrapper_ns_per_entry": cost[0], "wrapper_cpu_ns_per_entry": cost[1], "calls": calls,
                           "latency_ms": latency_s * 1000, "rows": {}}
    for scenario in SCENARIOS:
        for prefix, runner in (("S", run_sync), ("A", run_async)):
            name = prefix + scenario[1:]
            for mode in MODES:
                for isolated in (False, True):
                    key = f"{name} {mode} {'isolated' if isolated else 'back to back'}"
                    out["rows"][key] = runner(scenario, mode, calls, isolated, cost, latency_s)
    return out


def table(result: dict[str, Any]) -> str:
    """Markdown: one row per call, mode and way of calling."""
    lines = [f"{result['calls']:,} calls per row, {result.get('latency_ms', 0):g} ms transport latency; "
             "the wrapper's own cost, subtracted: "
             f"{result['wrapper_ns_per_entry']:.0f} ns wall, {result['wrapper_cpu_ns_per_entry']:.0f} ns CPU "
             "per entry; "
             f"targets p50 <= {TARGET_P50_US:.0f} µs, p99 <= {TARGET_P99_US:.0f} µs", "",
             "| call | metering | calling | p50 µs | p99 µs | CPU p50 / p99 µs | p50 by entry µs | targets |",
             "|---|---|---|---:|---:|---:|---|---|"]
    for key, r in result["rows"].items():
        call, mode, calling = key.split(" ", 2)
        entries = ", ".join(f"{name} {us:.1f}" for name, us in r["p50_by_entry_us"].items())
        lines.append(f"| {call} | {mode} | {calling} | **{r['p50_us']:.1f}** | **{r['p99_us']:.1f}** | "
                     f"{r['cpu_p50_us']:.1f} / {r['cpu_p99_us']:.1f} | {entries} | "
                     f"{'met' if r['meets_targets'] else 'not met'} |")
    return "\n".join(lines)
