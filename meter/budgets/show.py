"""Budgets as people and scripts read them: a line per budget, or JSON (``meter budgets status``, the demo).

Pure: strings from ``BudgetStatus`` values, nothing read or written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from meter.budgets.store import BudgetStatus, percent
from meter.textout import money, visible


def status_json(status: BudgetStatus, refused: int | None = None) -> dict[str, Any]:
    """One budget's status as JSON: money as exact decimal strings, instants as ISO 8601 UTC."""
    return {
        "name": status.name, "enforce": status.enforce, "period": status.period,
        "period_start": _iso(status.period_start), "period_end": _iso(status.period_end),
        "reset_at": _iso(status.reset_at), "spent_usd": str(status.spent), "reserved_usd": str(status.reserved),
        "limit_usd": str(status.limit), "forecast_usd": f"{_micro(status.forecast):f}",
        "used": float(status.spent / status.limit), "calls": status.calls, "unpriced_calls": status.unpriced_calls,
        "estimated_calls": status.estimated_calls,
        "refused_calls": status.refused_calls if refused is None else refused,
        "alerts_fired": [percent(a) for a in status.alerts_fired],
    }


def status_lines(statuses: Iterable[BudgetStatus], refused: Mapping[str, int] | None = None) -> list[str]:
    """One line per budget: ``search-monthly  hard month  spent 412.50 of 500 USD (83%) ...``."""
    rows = list(statuses)
    if not rows:
        return ["  (no budgets)"]
    width = max(len(visible(s.name)) for s in rows)
    lines = []
    for s in rows:
        count = refused.get(s.name, 0) if refused is not None else s.refused_calls
        parts = [f"spent {money(s.spent)} of {money(s.limit)} USD ({float(s.spent / s.limit):.0%})",
                 f"reserved {money(s.reserved)}", f"forecast {money(_micro(s.forecast))}",
                 f"resets {s.reset_at:%Y-%m-%dT%H:%M:%SZ}"]
        if s.enforce == "hard":
            parts.append(f"refused {count} {'call' if count == 1 else 'calls'}")
        if s.alerts_fired:
            parts.append("alerts " + " ".join(percent(a) for a in s.alerts_fired))
        if s.unpriced_calls:
            parts.append(f"{s.unpriced_calls} unpriced (spent is at least the above)")
        lines.append(f"  {visible(s.name):<{width}}  {s.enforce:<4} {s.period:<5}  " + ", ".join(parts))
    return lines


def _micro(value: Decimal) -> Decimal:
    """A forecast is an extrapolation: shown to a millionth of a dollar, not to 28 digits."""
    return value.quantize(Decimal("0.000001"))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
