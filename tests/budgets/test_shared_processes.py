"""Budgets shared by real processes through a real PostgreSQL (``tests/budgets/shared_worker.py``).

- 4 processes x 8 threads against one hard budget of $3 (a month, and a rolling 24h window): the settled
  spend, summed in the database and by the processes, never passes the limit (the bound: every cost here
  is at most its worst case, so 0);
- 4 processes x 8 threads settling into one soft budget of 12 thresholds: each threshold fires once in all
  (in whichever process's heartbeat flipped its bit), none twice, none in two processes;
- a process holding reservations and a slice is SIGKILLed: its lease expires and the headroom returns;
- PostgreSQL restarted mid-run: every settled cent is in the database once; a hard budget with
  ``on_db_down = "closed"`` refused calls while it was down, with ``"open"`` let them through.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meter.budget_store import SqlSlots
from meter.budgets import Refusal, Reservation, load_budgets
from meter.budgets.shared import SharedBudgets
from tests.support.postgres import PostgresServer, _bin
from tests.support.replay import CannedResponse, ReplayServer

REPO = Path(__file__).resolve().parents[2]


def _start(settings: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.budgets.shared_worker", json.dumps(settings)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def _result(process: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _db(url: str, sql: str) -> list[tuple[Any, ...]]:
    slots = SqlSlots(url)
    try:
        rows: list[tuple[Any, ...]] = slots._transaction(lambda: slots._rows(sql))
        return rows
    finally:
        slots.close()


def _spent(url: str) -> Decimal:
    return sum((Decimal(r[0]) for r in _db(url, "SELECT spent FROM budget_periods")), Decimal(0))


@pytest.mark.parametrize("period", ["month", "24h"])
def test_four_processes_of_eight_threads_never_pass_a_hard_limit(pg_database: str, period: str) -> None:
    budget = {"name": "team-hard", "period": period, "limit_usd": "3", "enforce": "hard"}
    settings = {"url": pg_database, "budgets": [budget], "worst": "0.02", "low": "0.005", "threads": 8,
                "calls": 200, "refusals": 20, "hold_s": 0.01}
    workers = [_start(settings) for _ in range(4)]
    results = [_result(w) for w in workers]
    settled = sum((Decimal(r["settled"]) for r in results), Decimal(0))
    spent = _spent(pg_database)
    assert spent == settled  # every settled cost written once
    assert spent <= Decimal(3)  # the bound: no call cost more than its worst case, so no excess
    assert spent > Decimal("2.8")  # and the headroom was used, not stranded in slices
    assert all(r["refused"] >= 20 for r in results)
    through = sum(r["through"] for r in results)
    trips = sum(r["round_trips"] for r in results)
    assert trips < through / 2, (trips, through)  # slices: most calls needed no round-trip
    if period == "24h":  # a rolling window's spend is its buckets'
        assert sum((Decimal(r[0]) for r in _db(pg_database, "SELECT spent FROM budget_buckets")), Decimal(0)) == spent
    print(f"\n4 processes x 8 threads, {period}: {through} calls through, {trips} transactions, spent {spent} of 3")


def test_each_threshold_fires_once_over_four_processes(pg_database: str) -> None:
    thresholds = [f"{p}%" for p in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 150, 200)]
    budget = {"name": "team-soft", "period": "month", "limit_usd": "2", "alert_at": thresholds}
    # 4 x 8 x 20 calls of 0.01: 6.4 USD, past every threshold (200% is 4 USD); a heartbeat every 50 ms
    settings = {"url": pg_database, "budgets": [budget], "worst": "0.01", "threads": 8, "calls": 20,
                "hold_s": 0.01, "flush_s": 0.05}
    workers = [_start(settings) for _ in range(4)]
    results = [_result(w) for w in workers]
    fired = [percent for r in results for percent in r["alerts"]]
    assert sorted(fired, key=lambda p: float(p[:-1])) == thresholds, [r["alerts"] for r in results]
    assert _spent(pg_database) == Decimal("6.40")
    (bits,) = _db(pg_database, "SELECT fired FROM budget_periods")[0]
    assert int(bits) == 2 ** len(thresholds) - 1
    print(f"\n4 processes, 12 thresholds: fired by process {[len(r['alerts']) for r in results]}")


def _chunk(**fields: Any) -> bytes:
    event = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": "gpt-4o-2024-11-20", **fields}
    return f"data: {json.dumps(event)}\n\n".encode()


STREAM = [_chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": "ok"}}]),
          _chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
          _chunk(choices=[], usage={"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}),
          b"data: [DONE]\n\n"]
COST = Decimal(1000) * Decimal("2.5") / 1_000_000 + Decimal(500) * Decimal(10) / 1_000_000  # 0.0075 a call


def test_four_processes_of_eight_streams_through_the_sdk(pg_database: str) -> None:
    """The issue's proof: 4 processes x 8 concurrent streams through the openai SDK, one hard budget: the
    settled spend stays within the limit, refused calls reach no upstream, and the SDK raises once each."""
    budget = {"name": "search-hard", "match": {"team": "search"}, "period": "month", "limit_usd": "2",
              "enforce": "hard"}
    with ReplayServer() as server:
        server.add("POST", "/openai/deployments/gpt-4o/chat/completions",
                   CannedResponse(200, [("Content-Type", "text/event-stream")], list(STREAM), chunk_delay_s=0.005))
        workers = [_start({"mode": "sdk", "url": pg_database, "server": server.url, "budgets": [budget],
                           "threads": 8, "refusals": 3}) for _ in range(4)]
        results = [_result(w, timeout=300) for w in workers]
        upstream = len(server.requests)
    through = sum(r["through"] for r in results)
    assert upstream == through  # a refused call reached no upstream, and the SDK retried nothing
    assert all(r["refused"] == 8 * 3 for r in results)  # one RateLimitError per refusal
    settled = sum((Decimal(r["settled"]) for r in results), Decimal(0))
    assert settled == through * COST
    spent = _spent(pg_database)
    assert spent == settled and spent <= Decimal(2)  # the bound: real cost <= worst case, so no excess
    assert spent > Decimal("1.8"), spent
    print(f"\n4 processes x 8 SDK streams: {through} calls through, spent {spent} of 2")


def test_a_sigkilled_process_returns_its_headroom_after_its_lease(pg_database: str) -> None:
    budget = {"name": "team-hard", "period": "month", "limit_usd": "1", "enforce": "hard"}
    holder = _start({"url": pg_database, "budgets": [budget], "worst": "0.1", "mode": "hold", "calls": 3,
                     "lease_s": 2.0, "slice_fraction": "0.5"})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert holder.stdout.readline().strip() == "held"
        budgets = load_budgets([budget])
        other = SharedBudgets(budgets, SqlSlots(pg_database), lease_s=2.0, retry_s=0.0)
        refused = other.reserve("x", budgets, Decimal("0.5"))  # 0.1 + a 0.5 slice leased: 0.3 in flight
        assert isinstance(refused, Refusal) and refused.reserved == Decimal("0.6")
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed = time.monotonic()
        while isinstance(got := other.reserve("x", budgets, Decimal("0.5")), Refusal):
            assert time.monotonic() - killed < 5, "the dead process's lease never expired"
            time.sleep(0.1)
        assert isinstance(got, Reservation)
        assert time.monotonic() - killed > 0.5  # not before the lease (2 s from its last renewal)
        other.close()
    finally:
        holder.kill()
        holder.wait(10)


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.mark.parametrize("on_db_down", ["closed", "open"])
def test_postgres_restarted_mid_run(own_pg: PostgresServer, on_db_down: str) -> None:
    url = own_pg.url
    budget = {"name": "big", "period": "month", "limit_usd": "1000", "enforce": "hard", "on_db_down": on_db_down}
    settings = {"url": url, "budgets": [budget], "worst": "0.02", "low": "0.01", "threads": 4, "calls": 800,
                "hold_s": 0.01, "lease_s": 1.0, "flush_s": 0.05, "retry_s": 0.1}
    workers = [_start(settings) for _ in range(2)]
    for worker in workers:  # each has opened the ledger and runs its calls
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    own_pg._run(_bin("pg_ctl"), "-D", str(own_pg.dir / "data"), "-m", "fast", "-w", "stop")
    time.sleep(2.0)  # down for twice a lease
    own_pg._start()
    results = [_result(w) for w in workers]
    assert all(r["closed"] for r in results)
    settled = sum((Decimal(r["settled"]) for r in results), Decimal(0))
    assert _spent(url) == settled  # none lost, none doubled
    if on_db_down == "closed":
        assert sum(r["db_down_refused"] for r in results) > 0
    else:
        assert sum(r["refused"] for r in results) == 0 and sum(r["db_down_calls"] for r in results) > 0
    leases = _db(url, "SELECT held FROM budget_leases")
    assert all(Decimal(h) == 0 for (h,) in leases)  # closed stores gave their leases back
