"""What exemplars cost in multiprocess mode: per call in a worker, per scrape of the merged ``/metrics``.

    python -m benchmarks.multiprocess_exemplars

Per call: the Prometheus sink's ``finish`` in a worker with ``PROMETHEUS_MULTIPROC_DIR`` set, for the
same records with their trace id (the exemplars kept, and this worker's file rewritten by its thread
while the calls run) and without one (prometheus-client's files only, as before), interleaved in
rounds; the difference of the medians is what exemplars add to a call (noisy: a few µs on ~30). The
exemplar part of a call is also timed alone (``exemplar_work_us``), and one rewrite of the worker's
file (``file_write_ms``, on the writer thread, at most every ``FLUSH_INTERVAL_S``).

Per scrape: four worker processes each meter calls over many label sets and exit (their exemplar files
written); then the OpenMetrics exposition of every worker's files, with the exemplars merged
(``meter.multiprocess_registry``) and without (prometheus-client's ``MultiProcessCollector`` alone).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics.exposition import generate_latest

import meter
from benchmarks.subproc import run_python
from meter.sinks.prometheus_exemplars import FILE_PREFIX

ROUNDS = 7
CALLS = 4000
"""Calls per arm and round."""
WORKERS = 4
DEPLOYMENTS = 10
TEAMS = 5
URL = "https://bench.openai.azure.com/openai/deployments/{}/chat/completions?api-version=2024-10-21"
BODY = {"id": "c", "object": "chat.completion", "model": "gpt-4o-2024-11-20", "choices": [],
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}}


def records(deployments: int, teams: int) -> list[meter.CallRecord]:
    """One real record per (deployment, team), each with the trace id of meter's own span."""
    got: list[meter.CallRecord] = []
    m = meter.Meter(prometheus=False, tracer_provider=TracerProvider(), label_keys=("team",), on_record=got.append)
    client = httpx2.Client(transport=meter.MeteredTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, json=BODY)), meter=m))
    for d in range(deployments):
        for t in range(teams):
            with meter.attribute(team=f"team-{t}"):
                client.post(URL.format(f"deployment-{d}"), json={"messages": []})
    m.close()
    assert len(got) == deployments * teams and all(r.trace_id for r in got)
    return got


def per_call(directory: str) -> dict[str, float]:
    """Median µs of the sink's ``finish`` per call, with and without exemplars, in multiprocess mode."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from meter.sinks.prometheus import PrometheusSink

    sink = PrometheusSink(registry=None, namespace="bench", label_keys=("team",))
    with_ids = records(DEPLOYMENTS, TEAMS)
    without = [dataclasses.replace(r, trace_id=None, span_id=None) for r in with_ids]
    arms: dict[str, list[float]] = {"with": [], "without": []}
    for batch in (with_ids, without):  # warm: every label set bound once
        for r in batch:
            sink.finish(r, None)
    for i in range(ROUNDS):
        for arm in (("with", "without") if i % 2 == 0 else ("without", "with")):
            batch = with_ids if arm == "with" else without
            started = time.perf_counter()
            for n in range(CALLS):
                sink.finish(batch[n % len(batch)], None)
            arms[arm].append((time.perf_counter() - started) / CALLS * 1e6)
    alone = _exemplar_work(sink, with_ids)
    from meter.sinks.prometheus_exemplars import exemplar_file

    file = exemplar_file(directory)
    file.close()
    writes = file.writes
    flushes = []
    for _ in range(ROUNDS):  # what the writer thread does every FLUSH_INTERVAL_S while calls come in
        started = time.perf_counter()
        file.flush()
        flushes.append((time.perf_counter() - started) * 1e3)
    with_us, without_us = statistics.median(arms["with"]), statistics.median(arms["without"])
    return {"with_us": with_us, "without_us": without_us, "added_us": with_us - without_us,
            "exemplar_work_us": alone, "file_writes": float(writes), "file_write_ms": statistics.median(flushes)}


def _exemplar_work(sink: Any, batch: list[meter.CallRecord]) -> float:
    """Median µs of the exemplar part of a call alone (``_Exemplars.add``), less the loop's own cost."""
    from meter.sinks.prometheus_rules import increments

    store = sink._store
    captured: list[tuple[meter.CallRecord, Any]] = []
    setattr(store, "observe", lambda record, labels, trace_id: captured.append((record, labels)))  # noqa: B010
    try:
        for r in batch:
            sink.finish(r, None)
    finally:
        delattr(store, "observe")
    jobs = [(store._series[labels].exemplars, r, increments(r), r.trace_id) for r, labels in captured]
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for n in range(CALLS):
            ex, r, inc, trace_id = jobs[n % len(jobs)]
            ex.add(store, r, inc, trace_id)
        spent = time.perf_counter() - started
        started = time.perf_counter()
        for n in range(CALLS):
            ex, r, inc, trace_id = jobs[n % len(jobs)]
        rounds.append((spent - (time.perf_counter() - started)) / CALLS * 1e6)
    return statistics.median(rounds)


WORKER = """
import json, os
from benchmarks.multiprocess_exemplars import DEPLOYMENTS, TEAMS, records
from meter.sinks.prometheus import PrometheusSink
sink = PrometheusSink(registry=None, label_keys=("team",))
for r in records(DEPLOYMENTS, TEAMS) * 3:
    sink.finish(r, None)
print(json.dumps({"pid": os.getpid()}))
"""


def per_scrape(directory: str) -> dict[str, float]:
    """Median ms of one OpenMetrics exposition of ``WORKERS`` workers' files, with and without exemplars."""
    for _ in range(WORKERS):
        run_python(WORKER, timeout=120, env={"PROMETHEUS_MULTIPROC_DIR": directory})
    merged = meter.multiprocess_registry(directory)
    plain = CollectorRegistry(support_collectors_without_names=True)
    MultiProcessCollector(plain, directory)  # type: ignore[no-untyped-call]
    times: dict[str, list[float]] = {"with": [], "without": []}
    for i in range(ROUNDS * 5):
        for arm in (("with", "without") if i % 2 == 0 else ("without", "with")):
            started = time.perf_counter()
            text = _openmetrics(merged if arm == "with" else plain)
            times[arm].append((time.perf_counter() - started) * 1e3)
    exemplars = _openmetrics(merged).decode().count(" # {")
    files = list(Path(directory).glob(f"{FILE_PREFIX}*"))
    with_ms, without_ms = statistics.median(times["with"]), statistics.median(times["without"])
    return {"with_ms": with_ms, "without_ms": without_ms, "added_ms": with_ms - without_ms,
            "exemplars": float(exemplars), "exposition_kb": len(text) / 1024,
            "exemplar_file_kb": statistics.mean(f.stat().st_size for f in files) / 1024}


def _openmetrics(registry: CollectorRegistry) -> bytes:
    text: bytes = generate_latest(registry)  # type: ignore[no-untyped-call]
    return text


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as calls_dir, tempfile.TemporaryDirectory() as scrape_dir:
        return {"per_call": per_call(calls_dir), "per_scrape": per_scrape(scrape_dir),
                "label_sets": DEPLOYMENTS * TEAMS, "workers": WORKERS}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
