"""The budget figures one exposition shows, from a process's live budget gates (both ways of exposing them).

The collector (``prometheus_budgets``, one process) builds its families from these at scrape time; the
multiprocess files (``prometheus_budget_files``) write them into prometheus-client's shared files. Two
live Meters with a budget of the same name are one series: their spent, reserved and forecast added up
(each Meter's in-process store counts its own calls), the limit and thresholds of the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meter.budget_gate import BudgetGate

Key = tuple[str, str, str]
"""The labels of a budget gauge: ``names.BUDGET_LABELS`` (budget, period, enforce)."""


def percent(fraction: Decimal) -> str:
    """``Decimal("0.8")`` -> ``"80%"``, as ``alert_at`` is written (``meter.budgets.store.percent``: sinks do not
    import the budgets package)."""
    text = f"{fraction * 100:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


def budget_rows(gates: Iterable[BudgetGate]) -> tuple[dict[Key, list[Decimal]], dict[Key, tuple[Decimal, ...]]]:
    """Per budget: ``[spent, reserved, limit, forecast]`` from each store's ``status()``, and its ``alert_at``."""
    rows: dict[Key, list[Decimal]] = {}
    alert_at: dict[Key, tuple[Decimal, ...]] = {}
    for gate in gates:
        by_name = {budget.name: budget for budget in gate.budgets}
        for status in gate.store.status():
            key = (status.name, status.period, status.enforce)
            row = rows.get(key)
            if row is None:
                rows[key] = [status.spent, status.reserved, status.limit, status.forecast]
                budget = by_name.get(status.name)
                alert_at[key] = budget.alert_at if budget is not None else ()
            else:
                row[0] += status.spent
                row[1] += status.reserved
                row[3] += status.forecast
    return rows, alert_at
