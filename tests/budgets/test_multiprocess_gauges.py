"""The budget families in Prometheus multiprocess mode, from real worker processes (``multiprocess_worker``).

Each worker has ``PROMETHEUS_MULTIPROC_DIR`` set and a Meter with a hard budget the workers exhaust
together, and a second one under which each holds a call in flight. One ``MultiProcessCollector``
exposition, as a ``/metrics`` of the process manager serves it, then shows every budget family: with a
shared SQLite ledger, the spend the workers wrote together, the reservations of every live worker, the
refusals of all of them; with each worker's own store, the workers' spend added up.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from meter import names

REPO = Path(__file__).resolve().parents[2]
SEARCH = {"name": "search-hard", "match": {"team": "search"}, "period": "day", "limit_usd": "0.05",
          "enforce": "hard", "alert_at": ["80%"]}
ADS = {"name": "ads-hard", "match": {"team": "ads"}, "period": "day", "limit_usd": "1", "enforce": "hard"}
COST, OUTPUT_CAP = Decimal("0.0075"), Decimal("0.01")
"""What each call of the worker costs; its worst case is at least its ``max_tokens=1000`` at 10 USD/M."""
Workers = tuple[Path, str | None, list[dict[str, Any]], list[subprocess.Popen[str]]]


@pytest.fixture
def workers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    """Two workers, each past its refusals and holding one call in flight: (the files' folder, the ledger, what
    each worker printed, the processes)."""
    prom = tmp_path / "prom"
    prom.mkdir()
    ledger = str(tmp_path / "ledger.sqlite") if request.param else None
    settings = {"budgets": [SEARCH, ADS], "ledger": ledger, "refusals": 3, "calls": 50}
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(prom), "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.budgets.multiprocess_worker", json.dumps(settings)],
                              cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        printed = []
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            printed.append(json.loads(line))
        yield prom, ledger, printed, procs
        for proc in procs:
            if proc.poll() is None:  # not killed by the test
                _out, err = proc.communicate("go\n", timeout=60)
                assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _exposition(prom: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(prom))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _labels(budget: str, enforce: str = "hard", **extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"budget": budget, "period": "day", "enforce": enforce, **extra}.items()))


def _ledger(ledger: str, sql: str, *params: object) -> Decimal:
    """The sum of one column in the ledger's budget tables, read by the test itself."""
    with sqlite3.connect(ledger) as db:
        return sum((Decimal(value) for (value,) in db.execute(sql, params).fetchall()), Decimal(0))


def _until(check: Any, timeout: float = 20.0) -> Any:
    """Poll ``check()`` (a list of (what, got, want)) until every pair agrees; fail naming those that do not."""
    deadline = time.monotonic() + timeout
    while True:
        results = check()
        wrong = [(what, got, want) for what, got, want in results if got != pytest.approx(want, abs=1e-9)]
        if not wrong:
            return results
        if time.monotonic() > deadline:
            pytest.fail(f"the exposition did not settle: {wrong}")
        time.sleep(0.2)


@pytest.mark.parametrize("workers", [True], indirect=True, ids=["shared-sqlite-ledger"])
def test_a_multiprocess_exposition_shows_the_shared_budgets(
        workers: Workers) -> None:
    prom, ledger, printed, procs = workers
    assert ledger is not None
    through = sum(p["through"] for p in printed)
    refused = sum(p["refused"] for p in printed)
    assert refused == 6 and through * COST <= Decimal(SEARCH["limit_usd"])
    ns = names.DEFAULT_NAMESPACE

    def check() -> list[tuple[str, float, float]]:
        got = _exposition(prom)
        spent_db = _ledger(ledger, "SELECT spent FROM budget_periods WHERE budget = 'search-hard'")
        leases = _ledger(ledger, "SELECT held FROM budget_leases WHERE budget = 'ads-hard' AND expires_at > ?",
                         time.time())
        return [
            ("spent in the database = the workers' calls", float(spent_db), float(through * COST)),
            ("spent", got.get((names.budget_spent_usd(ns), _labels("search-hard")), -1), float(through * COST)),
            ("reserved: every live worker's lease", got.get((names.budget_reserved_usd(ns), _labels("ads-hard")), -1),
             float(leases)),
            ("refused, summed over the workers", got.get((names.budget_refused_total(ns), (("budget", "search-hard"),)),
                                                         -1), refused),
            ("a hard budget never refused, at 0", got.get((names.budget_refused_total(ns), (("budget", "ads-hard"),)),
                                                          -1), 0),
            ("limit", got.get((names.budget_limit_usd(ns), _labels("search-hard")), -1), 0.05),
            ("threshold", got.get((names.budget_alert_threshold_ratio(ns), _labels("search-hard", threshold="80%")),
                                  -1), 0.8),
        ]

    _until(check)
    got = _exposition(prom)
    both = got[(names.budget_reserved_usd(ns), _labels("ads-hard"))]
    assert both > 2 * float(OUTPUT_CAP)  # both calls in flight
    assert got[(names.budget_forecast_usd(ns), _labels("search-hard"))] >= float(through * COST)
    assert not any("pid" in dict(labels) for _, labels in got)  # merged, not one series per worker
    # a worker dies holding its call: its lease expires (15 s), the survivor's alone is reserved
    procs[0].kill()
    procs[0].wait()
    multiprocess.mark_process_dead(procs[0].pid, str(prom))
    live = "SELECT 1 FROM budget_leases WHERE budget = 'ads-hard' AND expires_at > ?"
    deadline = time.monotonic() + 40
    while _ledger(ledger, live, time.time()) > 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ledger(ledger, live, time.time()) == 1
    one = _until(check)[2][1]  # = the live leases in the database: the survivor's
    assert float(OUTPUT_CAP) < one < both


@pytest.mark.parametrize("workers", [False], indirect=True, ids=["each-worker-its-own-store"])
def test_without_a_ledger_the_workers_budgets_add_up(workers: Workers) -> None:
    prom, _, printed, procs = workers
    ns = names.DEFAULT_NAMESPACE
    through = [p["through"] for p in printed]
    held = sum((Decimal(p["reserved"]) for p in printed), Decimal(0))
    assert held > 2 * OUTPUT_CAP
    assert all(n * COST <= Decimal(SEARCH["limit_usd"]) for n in through)  # each worker's own limit

    def check() -> list[tuple[str, float, float]]:
        got = _exposition(prom)
        return [
            ("spent, added over the workers", got.get((names.budget_spent_usd(ns), _labels("search-hard")), -1),
             float(sum(through) * COST)),
            ("reserved, added: the worst case each worker holds",
             got.get((names.budget_reserved_usd(ns), _labels("ads-hard")), -1), float(held)),
            ("refused", got.get((names.budget_refused_total(ns), (("budget", "search-hard"),)), -1), 6),
            ("limit", got.get((names.budget_limit_usd(ns), _labels("search-hard")), -1), 0.05),
        ]

    _until(check)
    # a worker dies: the process manager marks it dead, and its own figures leave the sums (its refusals stay)
    procs[0].kill()
    procs[0].wait()
    multiprocess.mark_process_dead(procs[0].pid, str(prom))
    got = _exposition(prom)
    assert got[(names.budget_spent_usd(ns), _labels("search-hard"))] == pytest.approx(float(through[1] * COST))
    assert got[(names.budget_reserved_usd(ns), _labels("ads-hard"))] == pytest.approx(float(printed[1]["reserved"]))
    assert got[(names.budget_refused_total(ns), (("budget", "search-hard"),))] == 6
