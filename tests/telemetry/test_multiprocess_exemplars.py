"""Exemplars in multiprocess mode: four real uvicorn workers, a real Prometheus, ``query_exemplars``.

The end-to-end test runs ``tests/telemetry/multiprocess_app.py`` under ``uvicorn --workers 4`` with
``PROMETHEUS_MULTIPROC_DIR`` set, drives the workload through every worker (each worker its own
``worker`` series, so each one's exemplars stay in the merge), and has a real Prometheus (exemplar
storage on, OpenMetrics scrapes) scrape ``/metrics`` from whichever worker answers. The rest checks
the merge itself: the same exemplars as one process, the newest across workers, dead workers, torn
and hostile files.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

import meter
from meter import names
from meter.dashboards import boards
from meter.dashboards.queries import DEFAULT as q
from meter.sinks import prometheus_exemplars as px
from tests.support.prometheus import PrometheusServer, free_port, require_prometheus
from tests.support.replay import ReplayServer
from tests.telemetry.workload import serve_workload

REPO = Path(__file__).resolve().parents[2]
WORKERS = 4


def _exemplars(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    """(sample name, labels) -> exemplar, of an OpenMetrics exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.exemplar is not None:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.exemplar
    return out


def _bucket_of(value: float) -> str:
    """The ``le`` of the bucket a value belongs in: the first bound at or above it."""
    bound = next((b for b in names.PROMETHEUS_DURATION_BUCKETS if value <= b), None)
    return "+Inf" if bound is None else floatToGoString(bound)


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
    return proc.stderr.read() if proc.stderr else ""


# -- four uvicorn workers and a real Prometheus ----------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, dict[int, set[str]], float]]:
    require_prometheus()
    mp_dir = tmp_path_factory.mktemp("multiproc")
    port = free_port()
    started = time.time()
    with ReplayServer() as upstream, PrometheusServer([f"127.0.0.1:{port}"], scrape_interval="1s",
                                                      tmp=tmp_path_factory.mktemp("prometheus")) as prom:
        serve_workload(upstream)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir), "UPSTREAM_URL": upstream.url,
               "NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.telemetry.multiprocess_app:app", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(WORKERS), "--no-access-log"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            produced: dict[int, set[str]] = {}
            calls = 0
            with httpx2.Client(trust_env=False, timeout=60) as client:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    try:
                        if client.get(f"http://127.0.0.1:{port}/metrics").status_code == 200:
                            break
                    except httpx2.TransportError:
                        time.sleep(0.2)

                def work(_: int) -> dict[str, Any]:
                    with httpx2.Client(trust_env=False, timeout=60) as one:  # a connection each: any worker
                        response = one.post(f"http://127.0.0.1:{port}/work")
                        response.raise_for_status()
                        return dict(response.json())

                with ThreadPoolExecutor(8) as pool:
                    for _ in range(10):  # until every worker has served some (the kernel picks who accepts)
                        for done in pool.map(work, range(8)):
                            assert done["trace_ids"] == [done["span_trace_id"]]  # the app's span, on every record
                            produced.setdefault(done["pid"], set()).update(done["trace_ids"])
                            calls += done["calls"]
                        if len(produced) == WORKERS:
                            break
            assert len(produced) == WORKERS, f"only workers {sorted(produced)} answered"
            prom.wait_for_scrapes(2)
            prom.wait_until(f"sum({names.requests_total('llm')})",
                            lambda r: bool(r) and float(r[0]["value"][1]) == calls, timeout=60)
            time.sleep(1 + px.FLUSH_INTERVAL_S)  # one more scrape after the last exemplar file was written
            prom.wait_for_scrapes(4)
            yield prom, produced, started
        finally:
            err = _stop(proc)
    assert proc.returncode in (0, -signal.SIGTERM), err


@pytest.mark.parametrize("metric", [q.DURATION_BUCKET, q.COST_USD, q.TTFT_BUCKET, q.REQUESTS])
def test_exemplars_of_four_workers_carry_the_trace_ids_they_produced(
        served: tuple[PrometheusServer, dict[int, set[str]], float], metric: str) -> None:
    prom, produced, started = served
    series = prom.query_exemplars(metric, started - 5, time.time() + 5)
    by_worker: dict[int, set[str]] = {}
    for s in series:
        pid = int(s["seriesLabels"]["worker"].removeprefix("w"))
        for e in s["exemplars"]:
            assert set(e["labels"]) == {names.EXEMPLAR_TRACE_ID}
            by_worker.setdefault(pid, set()).add(e["labels"][names.EXEMPLAR_TRACE_ID])
            if "le" in s["seriesLabels"]:  # a bucket's exemplar lies in that bucket
                assert s["seriesLabels"]["le"] == _bucket_of(float(e["value"]))
            else:
                assert float(e["value"]) > 0
    assert set(by_worker) == set(produced), f"exemplars of workers {sorted(by_worker)}, not {sorted(produced)}"
    for pid, trace_ids in by_worker.items():
        assert trace_ids <= produced[pid], f"worker {pid}: trace ids it never produced"


def test_the_latency_panels_show_exemplars(served: tuple[PrometheusServer, dict[int, set[str]], float]) -> None:
    prom, produced, started = served
    dash = boards.all_dashboards()["meter-latency.json"]
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"] if t.get("exemplar")]
    assert exprs
    every = set().union(*produced.values())
    for expr in exprs:
        series = prom.query_exemplars(q.substitute_macros(expr), started - 5, time.time() + 5)
        found = {e["labels"][names.EXEMPLAR_TRACE_ID] for s in series for e in s["exemplars"]}
        assert found and found <= every, expr


# -- the merge: as one process ---------------------------------------------------------------------------


WORKLOAD = textwrap.dedent('''
    import json, sys, time
    sys.path.insert(0, {root!r})
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry
    from prometheus_client.openmetrics.exposition import generate_latest
    import meter
    from tests.support.replay import ReplayServer
    from tests.telemetry.workload import run_workload, serve_workload
    registry = None if meter.serve.multiprocess_mode() else CollectorRegistry()
    records = []
    with ReplayServer() as srv:
        serve_workload(srv)
        m = meter.Meter(label_keys=("team",), tracer_provider=TracerProvider(), on_record=records.append,
                        **({{}} if registry is None else {{"registry": registry}}))
        run_workload(srv, m)
    from meter import lifecycle
    lifecycle.close_all()  # as at exit: the exemplars still pending are written
    text = generate_latest(registry or meter.multiprocess_registry()).decode()
    print(json.dumps({{"text": text, "trace_ids": sorted({{r.trace_id for r in records}})}}))
''')


def _series(exemplars: dict[tuple[str, tuple[tuple[str, str], ...]], Any]) -> set[Any]:
    return {(name, tuple(p for p in labels if p[0] != "le")) for name, labels in exemplars}


def _run_workload(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", WORKLOAD.format(root=str(REPO))], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env}, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_a_worker_exposes_the_samples_one_process_does_with_exemplars(tmp_path: Path) -> None:
    single = _run_workload({})
    multi = _run_workload({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    one, many = _exemplars(single["text"]), _exemplars(multi["text"])
    assert one  # the single-process store's exemplars on the same samples in multiprocess mode: every counter,
    assert _series(many) == _series(one)  # a bucket of every histogram series (which one: the call's duration)
    assert {e.labels[names.EXEMPLAR_TRACE_ID] for e in many.values()} <= set(multi["trace_ids"])
    for (name, labels), ex in many.items():
        assert set(ex.labels) == {names.EXEMPLAR_TRACE_ID}
        if name.endswith("_bucket"):
            assert dict(labels)["le"] == _bucket_of(ex.value)


# -- the merge: files of several workers ----------------------------------------------------------------


def _file(directory: Path, pid: int, entries: list[list[Any]]) -> Path:
    path = directory / f"{px.FILE_PREFIX}{pid}{px.FILE_SUFFIX}"
    path.write_text(json.dumps({"pid": pid, "exemplars": entries}))
    return path


HOSTILE = 'a"b\\c\nd}{# ,=é\u2028'


def _counter_db(directory: Path, values: list[str]) -> None:
    """prometheus-client's own counter file for the labels (a worker's ``.db`` file)."""
    code = textwrap.dedent('''
        import sys
        from prometheus_client import Counter, Histogram
        c = Counter("llm_cost_usd", "d", ["deployment"])
        h = Histogram("llm_request_duration_seconds", "d", ["deployment"], buckets=(0.01, 1.28))
        for v in sys.argv[1:]:
            c.labels(v).inc(0.5)
            h.labels(v).observe(0.5)
    ''')
    subprocess.run([sys.executable, "-c", code, *values], check=True, timeout=60,
                   env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)})


def _scrape(directory: Path) -> str:
    return generate_latest(meter.multiprocess_registry(str(directory))).decode()


@pytest.mark.parametrize("reverse", [False, True])
def test_the_newest_exemplar_wins_whichever_file_is_read_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               reverse: bool) -> None:
    key = [names.cost_usd_total("llm"), {"deployment": "east"}]
    for pid, trace_id, when in ((101, "a", 1000.0), (102, "b", 3000.0), (103, "c", 2000.0)):
        _file(tmp_path, pid, [[*key, trace_id * 32, 0.5, when]])
    listed = sorted(str(p) for p in tmp_path.iterdir())
    monkeypatch.setattr(px.glob, "glob", lambda pattern: listed[::-1] if reverse else listed)
    assert list(px.read_exemplars(str(tmp_path)).values()) == [("b" * 32, 0.5, 3000.0)]


def test_the_merge_keeps_the_newest_skips_torn_files_and_survives_hostile_values(tmp_path: Path) -> None:
    _counter_db(tmp_path, ["east", HOSTILE])
    cost = [names.cost_usd_total("llm")]
    bucket = ["llm_request_duration_seconds_bucket"]
    _file(tmp_path, 101, [
        [*cost, {"deployment": "east"}, "a" * 32, 0.25, 1000.0],
        [*cost, {"deployment": HOSTILE}, "b" * 32, 0.5, 1000.0],
        [*bucket, {"deployment": "east", "le": "1.28"}, "c" * 32, 0.5, 1000.0],
    ])
    _file(tmp_path, 102, [
        [*cost, {"deployment": "east"}, "d" * 32, 0.75, 2000.0],  # newer: wins
        [*bucket, {"deployment": "east", "le": "0.01"}, "e" * 32, 0.5, 3000.0],  # not in its bucket
        [*bucket, {"deployment": "east", "le": "+Inf"}, 'x"} 1\nevil 1', 0.5, 3000.0],  # not a trace id
        ["llm_request_duration_seconds_sum", {"deployment": "east"}, "f" * 32, 0.5, 3000.0],  # not a bucket
        [*cost, {"deployment": "east"}, "g" * 32, "0.5", 3000.0],  # a value that is not a number
        ["short"],
        [*cost, [["deployment", "east"]], "i" * 32, 0.5, 3000.0],  # labels not an object
        [*cost, {"deployment": 1}, "j" * 32, 0.5, 3000.0],  # a label value not a string
        [*cost, {"deployment": "east"}, "k" * 32, 10**400, 3000.0],  # past float's range
        [*cost, {"deployment": "east"}, "l" * 32, True, 3000.0],  # not a number
        [*cost, {"deployment": "east"}, "m" * 32, 0.5, 10**400],
        "not a list",
    ])
    torn = _file(tmp_path, 103, [[*cost, {"deployment": "east"}, "h" * 32, 0.5, 9000.0]])
    torn.write_bytes(torn.read_bytes()[:-7])  # a file cut short: skipped whole
    (tmp_path / f"{px.FILE_PREFIX}104{px.FILE_SUFFIX}").write_text('{"pid": 104, "exemplars": {"a": 1}}')
    (tmp_path / f"{px.FILE_PREFIX}106{px.FILE_SUFFIX}").write_text("[" * 100_000 + "]" * 100_000)  # too deep
    os.mkfifo(tmp_path / f"{px.FILE_PREFIX}107{px.FILE_SUFFIX}")  # nobody writes it: reading it must not wait
    (tmp_path / f"{px.FILE_PREFIX}108{px.FILE_SUFFIX}").write_bytes(b" " * (px.MAX_FILE_BYTES + 1))
    (tmp_path / f"{px.FILE_PREFIX}105{px.FILE_SUFFIX}.tmp").write_text("[")  # a write in progress: not read

    text = _scrape(tmp_path)
    got = _exemplars(text)
    assert {(name, dict(labels).get("deployment"), dict(labels).get("le")): e.labels["trace_id"]
            for (name, labels), e in got.items()} == {
        (cost[0], "east", None): "d" * 32,
        (cost[0], HOSTILE, None): "b" * 32,
        (bucket[0], "east", "1.28"): "c" * 32,
    }
    assert "evil" not in text and got[(cost[0], (("deployment", HOSTILE),))].value == 0.5

    # A dead worker: its counters stay counted, its exemplar file goes with prometheus-client's bookkeeping.
    meter.mark_process_dead(102, str(tmp_path))
    assert not (tmp_path / f"{px.FILE_PREFIX}102{px.FILE_SUFFIX}").exists()
    after = {(name, dict(labels).get("deployment")): e.labels["trace_id"]
             for (name, labels), e in _exemplars(_scrape(tmp_path)).items() if name == cost[0]}
    assert after == {(cost[0], "east"): "a" * 32, (cost[0], HOSTILE): "b" * 32}
    meter.mark_process_dead(102, str(tmp_path))  # again: nothing left to do, no error


def test_a_worker_writes_its_file_atomically_and_only_after_calls(tmp_path: Path) -> None:
    file = px.ExemplarFile(str(tmp_path), interval=0.05)
    slot = file.counter("llm_cost_usd_total", {"deployment": "east"})
    holder = file.histogram("llm_request_duration_seconds", {"deployment": "east"}, ("0.01", "+Inf"))
    time.sleep(0.2)
    assert list(tmp_path.iterdir()) == []  # nothing happened, nothing written, no thread
    slot.ex = ("a" * 32, 0.5, 1000.0)
    holder[1] = ("b" * 32, 3.0, 1001.0)
    file.touched()
    deadline = time.monotonic() + 5
    path = Path(file.path)
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert re.fullmatch(rf"{px.FILE_PREFIX}{os.getpid()}\.json", path.name)
    assert px.read_exemplars(str(tmp_path)) == {
        ("llm_cost_usd_total", (("deployment", "east"),)): ("a" * 32, 0.5, 1000.0),
        ("llm_request_duration_seconds_bucket", (("deployment", "east"), ("le", "+Inf"))): ("b" * 32, 3.0, 1001.0),
    }
    slot.ex = ("c" * 32, 0.25, 1002.0)
    file.touched()
    assert file.close(5)  # what is pending is written at close
    assert px.read_exemplars(str(tmp_path))[("llm_cost_usd_total", (("deployment", "east"),))][0] == "c" * 32
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_a_forked_worker_writes_only_its_own_exemplars_to_a_file_of_its_own(tmp_path: Path) -> None:
    """A ``Meter`` made before the fork (gunicorn ``--preload``): the child starts empty, under its own pid."""
    file = px.ExemplarFile(str(tmp_path), interval=0.05)
    parent, child = (file.counter(names.cost_usd_total("llm"), {"deployment": d}) for d in ("parent", "child"))
    parent.ex = ("a" * 32, 0.5, 1000.0)
    pid = os.fork()
    if pid == 0:  # the child: its own exemplar only, written at exit by meter's lifecycle
        code = 1
        try:
            child.ex = ("b" * 32, 0.25, 2000.0)
            file.touched()
            code = 0 if file.close(5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [p.name for p in tmp_path.iterdir()] == [f"{px.FILE_PREFIX}{pid}{px.FILE_SUFFIX}"]
    assert px.read_exemplars(str(tmp_path)) == {
        (names.cost_usd_total("llm"), (("deployment", "child"),)): ("b" * 32, 0.25, 2000.0)}
    file.close(5)
