"""meter's CPU per call and the memory it holds, under concurrency and at a paced rate (issue 25).

One scenario (S1, chat JSON, the full configuration: pricing, Prometheus, OTel SDK spans and
metrics), three arms, each a ``Meter`` of its own: ``raw`` (no meter), ``worker``
(``metering="worker"``) and ``inline`` (``metering="inline"``). A block is ``calls`` calls shared
by 1, 8 or 64 threads (sync client) or asyncio tasks (async client), either as fast as they go or
paced at a fixed rate (call ``i`` does not start before ``i / rate`` seconds into the block).

- **CPU per call**: ``time.process_time()`` (every thread of the process: the callers, the metering
  worker, the SDK's) over the block, the worker's ``flush()`` included, over its calls; meter's is
  that minus the raw arm's in the same cell. The arms of a cell rotate between rounds; the median
  over rounds is kept.
- **memory meter holds**: a second pass of the same block with ``tracemalloc`` on: the peak of traced
  memory above the block's start (the reset peak), minus the raw arm's; and, in the timed pass, the
  most jobs seen waiting on the metering worker's queue (sampled every 5 ms).

Whether the worker's queue overflowed (calls metered on their own thread instead) is the
``metering_inline`` fault count, reported per block; the records a subscriber counted show that
every call of a block was metered by the time its measurement ended.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import openai

import meter
from benchmarks import overhead
from benchmarks.azure import Answers

ARMS = ("raw", "worker", "inline")
WIDTHS = (1, 8, 64)
RATES: tuple[float | None, ...] = (None, 200.0, 1000.0)
"""Calls per second; ``None``: as fast as they go."""


class Records:
    """Counts the records a meter hands out (a subscriber), so a block can show every call was metered."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def __call__(self, record: object) -> None:
        with self._lock:  # inline mode: subscribers run on 64 threads
            self.n += 1


def _meter(arm: str) -> tuple[meter.Meter | None, Records]:
    m = overhead.arm_meter({"raw": "raw", "worker": "full", "inline": "inline"}[arm])
    records = Records()
    if m is not None:
        m.subscribe(records)
    return m, records


def _drain(meters: dict[str, tuple[meter.Meter | None, Records]]) -> None:
    """The warm-up's records are made before the first block is measured (else that block counts them)."""
    for m, _ in meters.values():
        if m is not None and not m.flush(120.0):
            raise RuntimeError("the metering worker did not drain in 120 s")


def _queued(m: meter.Meter | None) -> int:
    worker = getattr(m, "_worker", None)  # private: the benchmark looks at the backlog, nothing else does
    return worker.queued if worker is not None else 0


@contextmanager
def _backlog(m: meter.Meter | None) -> Iterator[list[int]]:
    """The most jobs seen waiting on ``m``'s metering worker while the block runs (sampled every 5 ms)."""
    seen = [0]
    stop = threading.Event()
    failed: list[BaseException] = []

    def sample() -> None:
        try:
            while not stop.wait(0.005):
                seen[0] = max(seen[0], _queued(m))
        except BaseException as exc:  # raised again below: a broken sampler fails the run, not a 0 in the table
            failed.append(exc)

    sampler = threading.Thread(target=sample, name="bench-backlog", daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        stop.set()
        sampler.join()
    if failed:
        raise RuntimeError("the backlog sampler failed") from failed[0]


@contextmanager
def _measuring(metered: tuple[meter.Meter | None, Records], calls: int, memory: bool) -> Iterator[dict[str, Any]]:
    """Measure the block run inside (the worker's flush included); the dict is filled on the way out:
    CPU, wall, backlog and records, or with ``memory`` the traced peak above the block's start."""
    m, records = metered
    out: dict[str, Any] = {}
    before = dict(m.faults) if m is not None else {}
    had = records.n
    if memory:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        try:
            yield out
            if m is not None:
                m.flush(120.0)
            out["peak_kb"] = (tracemalloc.get_traced_memory()[1] - base) / 1024
        finally:
            tracemalloc.stop()
        return
    with _backlog(m) as seen:
        c0, t0 = time.process_time(), time.perf_counter()
        yield out
        if m is not None and not m.flush(120.0):
            raise RuntimeError("the metering worker did not drain in 120 s")
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    after = dict(m.faults) if m is not None else {}
    out.update(cpu_us=cpu / calls * 1e6, wall_s=wall, calls_per_s=calls / wall, max_queued=seen[0],
               metered_inline=after.get("metering_inline", 0) - before.get("metering_inline", 0),
               records=records.n - had)


def _threads(client: openai.AzureOpenAI, width: int, calls: int, rate: float | None) -> Callable[[], None]:
    call = overhead.sync_call("S1")

    def go() -> None:
        counter = itertools.count()
        began = [0.0]
        ready = threading.Barrier(width, action=lambda: began.__setitem__(0, time.perf_counter()))

        def work() -> None:
            ready.wait()
            t0 = began[0]
            for i in counter:
                if i >= calls:
                    return
                if rate is not None:
                    delay = t0 + i / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                call(client)

        threads = [threading.Thread(target=work, name=f"bench-caller-{k}") for k in range(width)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return go


def _tasks(client: openai.AsyncAzureOpenAI, width: int, calls: int, rate: float | None,
           ) -> Callable[[], Awaitable[None]]:
    call = overhead.async_call("S1")

    async def go() -> None:
        counter = itertools.count()
        t0 = time.perf_counter()

        async def work() -> None:
            for i in counter:
                if i >= calls:
                    return
                if rate is not None:
                    delay = t0 + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await call(client)

        await asyncio.gather(*(work() for _ in range(width)))

    return go


def _calls(rate: float | None, calls: int, seconds: float) -> int:
    return calls if rate is None else max(10, int(rate * seconds))


def _cell(results: dict[str, list[dict[str, Any]]], memory: dict[str, float]) -> dict[str, Any]:
    """One cell's arms: medians over rounds, meter's CPU and memory net of raw's."""
    row: dict[str, Any] = {}
    for arm in ARMS:
        runs = results[arm]
        row[arm] = {"cpu_us": statistics.median(r["cpu_us"] for r in runs),
                    "calls_per_s": statistics.median(r["calls_per_s"] for r in runs),
                    "max_queued": max(r["max_queued"] for r in runs),
                    "metered_inline": sum(r["metered_inline"] for r in runs),
                    "records_per_block": min(r["records"] for r in runs),
                    "peak_kb": memory[arm]}
    for arm in ARMS[1:]:
        row[arm]["meter_cpu_us"] = row[arm]["cpu_us"] - row["raw"]["cpu_us"]
        row[arm]["meter_peak_kb"] = row[arm]["peak_kb"] - row["raw"]["peak_kb"]
    return row


def _rotated(r: int) -> tuple[str, ...]:
    k = r % len(ARMS)
    return ARMS[k:] + ARMS[:k]


def _key(kind: str, width: int, rate: float | None) -> str:
    return f"{kind} x{width}, " + ("full speed" if rate is None else f"{rate:,.0f}/s")


def run_sync(rounds: int, calls: int, seconds: float) -> dict[str, Any]:
    meters = {arm: _meter(arm) for arm in ARMS}
    clients = {arm: overhead.sync_client("raw" if arm == "raw" else "full", Answers(5), meters[arm][0])
               for arm in ARMS}
    for arm in ARMS:  # warm: imports, caches, the price quote
        _threads(clients[arm], 8, 200, None)()
    _drain(meters)
    out: dict[str, Any] = {}
    for width in WIDTHS:
        for rate in RATES:
            n = _calls(rate, calls, seconds)
            results: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
            memory: dict[str, float] = {}
            for r in range(rounds + 1):  # the last pass is the memory pass
                for arm in _rotated(r):
                    go = _threads(clients[arm], width, n, rate)
                    with _measuring(meters[arm], n, r == rounds) as done:
                        go()
                    if r == rounds:
                        memory[arm] = done["peak_kb"]
                    else:
                        results[arm].append(done)
            out[_key("threads", width, rate)] = {"calls": n, **_cell(results, memory)}
    return out


def run_async(rounds: int, calls: int, seconds: float) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        meters = {arm: _meter(arm) for arm in ARMS}
        clients = {arm: overhead.async_client("raw" if arm == "raw" else "full", Answers(5), meters[arm][0])
                   for arm in ARMS}
        for arm in ARMS:
            await _tasks(clients[arm], 8, 200, None)()
        _drain(meters)
        out: dict[str, Any] = {}
        for width in WIDTHS:
            for rate in RATES:
                n = _calls(rate, calls, seconds)
                results: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
                memory: dict[str, float] = {}
                for r in range(rounds + 1):  # the last pass is the memory pass
                    for arm in _rotated(r):
                        go = _tasks(clients[arm], width, n, rate)
                        with _measuring(meters[arm], n, r == rounds) as done:  # the flush blocks the loop: idle
                            await go()
                        if r == rounds:
                            memory[arm] = done["peak_kb"]
                        else:
                            results[arm].append(done)
                out[_key("tasks", width, rate)] = {"calls": n, **_cell(results, memory)}
        return out

    return asyncio.run(main())


def run(rounds: int, calls: int, seconds: float) -> dict[str, Any]:
    """Every cell, sync threads then async tasks: per arm CPU µs per call (and meter's, net of raw), calls/s,
    the worker's largest backlog, calls its full queue sent inline, and the traced memory peak (net of raw)."""
    return {**run_sync(rounds, calls, seconds), **run_async(rounds, calls, seconds)}


def table(result: dict[str, Any]) -> str:
    """Markdown: one row per load; CPU µs per call (meter's net of raw), calls/s, backlog, memory."""
    lines = ["| load | calls | raw CPU µs/call | meter CPU µs/call: worker / inline | calls/s raw / worker / inline "
             "| worker: most jobs queued (calls sent inline) | meter peak KB: worker / inline |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for key, r in result.items():
        raw, worker, inline = r["raw"], r["worker"], r["inline"]
        lines.append(f"| {key} | {r['calls']:,} | {raw['cpu_us']:,.0f} | **{worker['meter_cpu_us']:,.0f}** / "
                     f"{inline['meter_cpu_us']:,.0f} | {raw['calls_per_s']:,.0f} / {worker['calls_per_s']:,.0f} / "
                     f"{inline['calls_per_s']:,.0f} | {worker['max_queued']:,} ({worker['metered_inline']:,}) | "
                     f"{worker['meter_peak_kb']:,.0f} / {inline['meter_peak_kb']:,.0f} |")
    return "\n".join(lines)
