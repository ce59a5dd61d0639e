"""Budgets shared through the ledger's database: the per-call cost of a check served by the local slice,
and the database round-trips per 1,000 calls (``meter.budgets.shared``, ``docs/budgets.md``).

Each scenario reserves and settles ``calls`` calls of one worst case against one hard monthly budget,
with the heartbeat run by hand at the end (so every round-trip counted is a take); the in-memory
``BudgetLedger`` doing the same is the baseline.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from meter.budget_store import SqlSlots
from meter.budgets import BudgetLedger, Refusal, load_budgets
from meter.budgets.shared import SharedBudgets

SCENARIOS = {"limit $500, worst case $0.01": ("500", "0.01"), "limit $5, worst case $0.01": ("5", "0.01")}


def _one(store: Any, budgets: Any, worst: Decimal, calls: int) -> float:
    t0 = time.perf_counter()
    for i in range(calls):
        held = store.reserve(f"c{i}", budgets, worst)
        if isinstance(held, Refusal):
            raise RuntimeError(f"refused after {i} calls: the scenario's limit is too small")
        store.settle(held, worst)
    return (time.perf_counter() - t0) / calls * 1e6


def run(calls: int, postgres_url: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (limit, worst_text) in SCENARIOS.items():
        worst = Decimal(worst_text)
        n = min(calls, int(Decimal(limit) / worst) - 10)
        # a new name each run: a database given with --postgres-url keeps the spend of the runs before
        budgets = load_budgets([{"name": f"bench-{uuid.uuid4().hex[:12]}", "period": "month", "limit_usd": limit,
                                 "enforce": "hard"}])
        row: dict[str, Any] = {"calls": n, "memory_us": _one(BudgetLedger(budgets), budgets, worst, n)}
        backends = {"sqlite": str(Path(tempfile.mkdtemp()) / "budgets.sqlite")}
        if postgres_url:
            backends["postgresql"] = postgres_url
        for backend, where in backends.items():
            store = SharedBudgets(budgets, SqlSlots(where))
            per_call = _one(store, budgets, worst, n)
            takes = store.round_trips
            store.close()
            row[backend] = {"per_call_us": per_call, "round_trips_per_1000": takes * 1000 / n}
        out[name] = row
    return out
