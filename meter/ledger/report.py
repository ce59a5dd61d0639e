"""Reports from the ledger, aggregated in SQL: calls, errors, tokens, exact cost, duration percentiles.

Groups are any of the record's columns a user thinks in (``deployment``, ``model``,
``deployment_type``, ``api``, ``outcome``, ``provider``, ``region``) or an attribution key
(``team``, ``feature`` ...: read from the ``attributes`` JSON), plus a ``period`` (hour,
day, week starting Monday, month; UTC). Money is summed as two integers (``total_nano``,
``total_atto``) and joined into an exact ``Decimal`` afterwards: never a float. Each call
counts with its latest cost row (``as_reported=True``: the one recorded with the call).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from meter.ledger.errors import LedgerError, day_range, sqlite_only
from meter.ledger.rows import join_money

COLUMNS = {"deployment": "deployment", "model": "response_model", "deployment_type": "deployment_type",
           "api": "api", "outcome": "outcome", "provider": "provider", "region": "region"}
PERIODS = {"hour": "substr(started_at, 1, 13) || ':00'", "day": "substr(started_at, 1, 10)",
           "week": "date(substr(started_at, 1, 10), '-' || ((CAST(strftime('%w', substr(started_at, 1, 10)) "
                   "AS INTEGER) + 6) % 7) || ' days')",
           "month": "substr(started_at, 1, 7)"}
TOKENS = ("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens",
          "reasoning_output_tokens")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Row:
    group: tuple[str, ...]
    calls: int
    errors: int
    tokens: dict[str, int]
    """The token families of the usage the service reported; estimated usage in ``estimated_*_tokens``."""
    cost_usd: Decimal
    """Exact, from the usage the service reported; calls that could not be priced add nothing (they are
    counted in ``unpriced``), and estimates are never in it."""
    estimated_cost_usd: Decimal
    """The cost of estimated usage (the service reported none), kept apart."""
    unpriced: int
    estimated: int
    p50_s: float | None
    p95_s: float | None

    def as_json(self, by: tuple[str, ...]) -> dict[str, Any]:
        return {**dict(zip(by, self.group, strict=True)), "calls": self.calls, "errors": self.errors, **self.tokens,
                "cost_usd": format(self.cost_usd, "f"), "estimated_cost_usd": format(self.estimated_cost_usd, "f"),
                "unpriced": self.unpriced, "estimated": self.estimated, "p50_s": self.p50_s, "p95_s": self.p95_s}


def group_expression(name: str) -> str:
    """SQL for one group name; a clear ``ValueError`` for a name that is none of them."""
    if name in COLUMNS:
        return f"coalesce({COLUMNS[name]}, '')"
    if name in PERIODS:
        return PERIODS[name]
    if _KEY.fullmatch(name):  # an attribution key: validated, so it is safe inside the JSON path
        return f"coalesce(json_extract(attributes, '$.{name}'), '')"
    raise ValueError(f"cannot group by {name!r}: use {', '.join([*COLUMNS, *PERIODS])} or an attribution key")


def report(path: str | Path, by: tuple[str, ...], since: date | None = None, until: date | None = None,
           as_reported: bool = False) -> list[Row]:
    """One row per group, in group order; calls from ``since`` (inclusive) to ``until`` (exclusive), UTC days."""
    sqlite_only(path, "meter report")
    if not Path(path).is_file():
        raise LedgerError(str(path), "does not exist")
    groups = [group_expression(name) for name in by]
    keys = ", ".join(f"{expr} AS g{i}" for i, expr in enumerate(groups)) or "'' AS g0"
    names = ", ".join(f"g{i}" for i in range(max(1, len(groups))))
    where, params = day_range("started_at", since, until)
    pick = "reported" if as_reported else "current"
    sql = f"""
        WITH base AS (
            SELECT {keys}, outcome, usage_source, duration_s, {", ".join(TOKENS)},
                   cost.total AS cost_total, cost.total_nano, cost.total_atto,
                   cost.estimated AS cost_estimated, cost.call_id AS costed
            FROM calls LEFT JOIN costs AS cost ON cost.call_id = calls.id AND cost.{pick} = 1
            {"WHERE " + " AND ".join(where) if where else ""}
        ), c AS (
            SELECT base.*, ROW_NUMBER() OVER (PARTITION BY {names} ORDER BY duration_s) AS rank,
                   COUNT(*) OVER (PARTITION BY {names}) AS n
            FROM base
        )
        SELECT {names}, COUNT(*), SUM(outcome != 'ok'),
               {", ".join(f"COALESCE(SUM(CASE WHEN usage_source IS NOT 'estimated' THEN {t} END), 0)"
                          for t in TOKENS)},
               COALESCE(SUM(CASE WHEN usage_source = 'estimated' THEN input_tokens END), 0),
               COALESCE(SUM(CASE WHEN usage_source = 'estimated' THEN output_tokens END), 0),
               COALESCE(SUM(CASE WHEN NOT cost_estimated THEN total_nano END), 0),
               COALESCE(SUM(CASE WHEN NOT cost_estimated THEN total_atto END), 0),
               COALESCE(SUM(CASE WHEN cost_estimated THEN total_nano END), 0),
               COALESCE(SUM(CASE WHEN cost_estimated THEN total_atto END), 0),
               SUM(costed IS NOT NULL AND cost_total IS NULL), SUM(usage_source = 'estimated'),
               MIN(CASE WHEN rank >= 0.50 * n THEN duration_s END), MIN(CASE WHEN rank >= 0.95 * n THEN duration_s END)
        FROM c GROUP BY {names} ORDER BY {names}
    """
    try:
        with sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True) as db:
            result = db.execute(sql, params).fetchall()
    except sqlite3.DatabaseError as exc:
        raise LedgerError(str(path), f"cannot be read ({exc})") from None
    width = max(1, len(groups))
    out = []
    for row in result:
        counted = (*TOKENS, "estimated_input_tokens", "estimated_output_tokens")
        tokens = dict(zip(counted, row[width + 2:width + 2 + len(counted)], strict=True))
        rest = row[width + 2 + len(counted):]
        out.append(Row(tuple(str(g) for g in row[:width]) if groups else (), row[width], row[width + 1], tokens,
                       join_money(rest[0], rest[1]) or Decimal(0), join_money(rest[2], rest[3]) or Decimal(0),
                       rest[4], rest[5], rest[6], rest[7]))
    return out
