"""A/B in one process: a stream's kept chunks counted a run at once (``delta_runs``) or one by one.

    python -m benchmarks.stream_runs [--rounds 15] [--block 10] [--deltas 500]

Three arms share each round, in blocks that rotate: ``raw`` (the canned transport), ``runs`` (pricing +
Prometheus, the default) and ``one_by_one`` (the same, with the observers' ``take_run`` made to count
nothing, so every kept chunk goes through ``take`` as before ``delta_runs``). A block's jobs are flushed
inside it. Per arm and scenario (S2 chat stream, S4 Responses stream): the median over rounds of the
per-stream median and of the throughput (a block's wall time with its flush), as ratios to raw, and the
median thread CPU of the metering worker's job per stream. One process, so a busy host's drift hits
every arm alike (docs/benchmarks.md, issue 25 fourth pass).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import openai
from prometheus_client import CollectorRegistry

import meter
from benchmarks.azure import Answers
from benchmarks.overhead import sync_call, sync_client
from meter.core import observe

ARMS = ("raw", "runs", "one_by_one")
Observer = TypeVar("Observer")
_COUNT_RUNS = [True]
"""Off while the ``one_by_one`` arm runs (one process: the observers' classes are shared)."""


def _switchable(original: Callable[[Observer, list[bytes]], int]) -> Callable[[Observer, list[bytes]], int]:
    def take_run(self: Observer, chunks: list[bytes]) -> int:
        return original(self, chunks) if _COUNT_RUNS[0] else 0
    return take_run


def _timed_jobs(m: meter.Meter, spent: list[float]) -> None:
    """Each metering job's thread CPU goes to ``spent``."""
    worker = m._worker
    if worker is None:
        raise RuntimeError("the arm must meter on the worker")
    submit = worker.submit

    def timed_submit(job: Callable[[], None]) -> bool:
        def timed() -> None:
            began = time.thread_time()
            job()
            spent.append(time.thread_time() - began)
        return submit(timed)

    worker.submit = timed_submit  # type: ignore[method-assign]


def run(scenario: str, rounds: int, block: int, deltas: int) -> dict[str, tuple[float, float, float]]:
    """Per arm: (median ratio, throughput ratio, worker CPU µs per stream)."""
    answers = Answers(deltas)
    meters: dict[str, meter.Meter | None] = {"raw": None}
    jobs: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for arm in ARMS[1:]:
        metered = meters[arm] = meter.Meter(otel=False, registry=CollectorRegistry(), metering="worker")
        _timed_jobs(metered, jobs[arm])
    clients: dict[str, openai.AzureOpenAI] = {arm: sync_client(arm, answers, meters[arm]) for arm in ARMS}
    call = sync_call(scenario)
    for arm in ARMS:  # warm
        _COUNT_RUNS[0] = arm != "one_by_one"
        for _ in range(3):
            call(clients[arm])
        if (m := meters[arm]) is not None:
            m.flush(60.0)
    for spent in jobs.values():
        spent.clear()
    medians: dict[str, list[float]] = {arm: [] for arm in ARMS}
    walls: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for r in range(rounds):
        k = r % len(ARMS)
        for arm in ARMS[k:] + ARMS[:k]:
            _COUNT_RUNS[0] = arm != "one_by_one"
            client, m = clients[arm], meters[arm]
            times = []
            began = time.perf_counter()
            for _ in range(block):
                t0 = time.perf_counter()
                call(client)
                times.append(time.perf_counter() - t0)
            if m is not None:
                m.flush(60.0)
            walls[arm].append((time.perf_counter() - began) / block)
            medians[arm].append(statistics.median(times))
    _COUNT_RUNS[0] = True
    out = {}
    for arm in ARMS[1:]:
        median = statistics.median(a / b for a, b in zip(medians[arm], medians["raw"], strict=True))
        through = statistics.median(a / b for a, b in zip(walls[arm], walls["raw"], strict=True))
        out[arm] = (median, through, statistics.median(jobs[arm]) * 1e6)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_runs", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=10, help="streams per block (default 10)")
    parser.add_argument("--deltas", type=int, default=500, help="delta events per stream (default 500)")
    args = parser.parse_args(argv)
    # Methods replaced on purpose, for this process only.
    setattr(observe.ChatStreamObserver, "take_run", _switchable(observe.ChatStreamObserver.take_run))  # noqa: B010
    setattr(observe.ResponsesStreamObserver, "take_run",  # noqa: B010
            _switchable(observe.ResponsesStreamObserver.take_run))
    print(f"{args.rounds} rounds x {args.block} streams per arm, {args.deltas} deltas; ratio to raw: "
          "per-stream median / throughput (block wall time with its flush); the worker's job CPU per stream")
    for scenario in ("S2", "S4"):
        for arm, (median, through, cpu) in run(scenario, args.rounds, args.block, args.deltas).items():
            print(f"{scenario} {arm:10s} median {median:.3f}x  throughput {through:.3f}x  worker job {cpu:,.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
