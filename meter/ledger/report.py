"""Reports from the ledger, aggregated in SQL: calls, errors, tokens, exact cost, duration percentiles.

Groups are any of the record's columns a user thinks in (``deployment``, ``model``,
``deployment_type``, ``api``, ``outcome``, ``provider``, ``region``, ``service_tier``) or an attribution key
(``team``, ``feature`` ...: read from the ``attributes`` JSON), plus a ``period`` (hour,
day, week starting Monday, month; UTC). Money is summed as two integers (``total_nano``,
``total_atto``) and joined into an exact ``Decimal`` afterwards: never a float. Each call
counts with its current cost row (``as_reported=True``: the one recorded with the call).
The same query runs on SQLite and PostgreSQL (``dialect``); ``where`` keeps the calls whose
key has a value (an indexed lookup for the allow-listed attribution keys).

Attribution keys are whatever callers tagged, so a key is known when a call of the ledger carries
it or the ledger indexes it (``Meter(label_keys=...)``). A key that is neither (``teams`` for
``team``) would put every call in one group with an empty value, or match nothing: it is an
``UnknownKey`` error naming the keys there are. The check costs nothing on the usual path: the
ledger is only asked for its keys when a key came back empty everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from meter.core.record import USAGE_KINDS
from meter.core.units import UNIT_KINDS
from meter.ledger.connect import Connection, connect
from meter.ledger.dialect import ATTRIBUTE_KEY, PERIOD_NAMES, Dialect, day_range
from meter.ledger.errors import LedgerError
from meter.ledger.rows import join_money
from meter.names import UNKNOWN

COLUMNS = {name: f"calls.{column}" for name, column in (
    ("deployment", "deployment"), ("model", "response_model"), ("deployment_type", "deployment_type"), ("api", "api"),
    ("outcome", "outcome"), ("provider", "provider"), ("region", "region"), ("service_tier", "service_tier"))}
"""Qualified: ``costs`` has a ``deployment_type`` and a ``region`` of its own (what the call was priced as)."""
PERIODS = PERIOD_NAMES
TOKENS = tuple(kind.name for kind in USAGE_KINDS if kind.report)
"""The token columns of a report: the catalogue's kinds marked ``report``."""
UNITS = tuple(kind.name for kind in UNIT_KINDS)
"""The unit columns of a report (``meter.core.units``)."""


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
    units: dict[str, float] = field(default_factory=dict)
    """The units of the calls billed by them (``meter.core.units``: seconds of audio, characters, images)."""

    def as_json(self, by: tuple[str, ...]) -> dict[str, Any]:
        return {**dict(zip(by, self.group, strict=True)), "calls": self.calls, "errors": self.errors, **self.tokens,
                **self.units,
                "cost_usd": format(self.cost_usd, "f"), "estimated_cost_usd": format(self.estimated_cost_usd, "f"),
                "unpriced": self.unpriced, "estimated": self.estimated, "p50_s": self.p50_s, "p95_s": self.p95_s}


class UnknownKey(ValueError):
    """A ``--by`` / ``--where`` key that is no column, period or attribution key of the ledger (one line)."""

    def __init__(self, name: str, why: str, keys: tuple[str, ...] | None = None) -> None:
        self.name = name
        self.why = why
        self.keys = keys
        """The attribution keys the ledger has (``None``: not looked up)."""
        known = (f"an attribution key of this ledger ({', '.join(keys)})" if keys
                 else "an attribution key (this ledger has none)" if keys is not None else "an attribution key")
        super().__init__(f"cannot group or filter by {name!r}: {why}; use {', '.join(COLUMNS)}, "
                         f"{', '.join(PERIODS)} (--period) or {known}")


def value_expression(dialect: Dialect, name: str) -> str:
    """SQL for a column or an attribution key (NULL when the call has none); ``UnknownKey`` for neither."""
    if name in COLUMNS:
        return COLUMNS[name]
    if ATTRIBUTE_KEY.fullmatch(name) and name not in PERIODS:
        return dialect.attribute(name)
    why = "a period groups, it does not filter" if name in PERIODS else "not a column, and not a key name"
    raise UnknownKey(name, why)


def attribute_keys(db: Connection) -> tuple[str, ...]:
    """The attribution keys a ledger knows: those any call carries, and those it indexes (``label_keys``)."""
    if db.dialect.name == "sqlite":
        carried = "SELECT DISTINCT j.key FROM calls, json_each(calls.attributes) AS j"
        indexes = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls'"
    else:
        carried = "SELECT DISTINCT jsonb_object_keys(attributes) FROM calls WHERE jsonb_typeof(attributes) = 'object'"
        indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'calls'"
    keys = {str(row[0]) for row in db.rows(carried)}
    keys |= {str(row[0])[len(INDEX_PREFIX):] for row in db.rows(indexes) if str(row[0]).startswith(INDEX_PREFIX)}
    return tuple(sorted(key for key in keys if ATTRIBUTE_KEY.fullmatch(key) and key not in PERIODS))


INDEX_PREFIX = "calls_attr_"
"""The name of an allow-listed key's index, before the key (``dialect.attribute_indexes``)."""


def _attribution(name: str) -> bool:
    return name not in COLUMNS and name not in PERIODS


def _check_keys(db: Connection, by: tuple[str, ...], where: dict[str, str], result: list[tuple[Any, ...]]) -> None:
    """``UnknownKey`` for an attribution key no call carries and the ledger does not index.

    Only asked when a key came back without a value: a ``--by`` key empty in every group, a
    ``--where`` key when nothing matched. A ledger without calls has no keys to check against."""
    suspects = [name for i, name in enumerate(by) if _attribution(name) and result
                and all(row[i] in ("", None) for row in result)]
    if not result:
        suspects += [name for name in where if _attribution(name)]
    for name in suspects:  # the first call that carries the key ends the look (the full list is for the error)
        if not db.rows(f"SELECT 1 FROM calls WHERE {db.dialect.attribute(name)} IS NOT NULL LIMIT 1"):
            keys = attribute_keys(db)
            if name not in keys and (keys or db.rows("SELECT 1 FROM calls LIMIT 1")):
                raise UnknownKey(name, "no call in this ledger has that attribution key", keys)


def group_expression(dialect: Dialect, name: str) -> str:
    """SQL for one group name: a period, or a column / attribution key with ``''`` for none."""
    period = dialect.period(name)
    if period is not None:
        return period
    none = UNKNOWN if name in ("model", "deployment") else ""  # as the labels of Prometheus and OTel say it
    return f"coalesce({value_expression(dialect, name)}, '{none}')"


def _sql(dialect: Dialect, groups: list[str], where: list[str], pick: str) -> str:
    keys = ", ".join(f"{expr} AS g{i}" for i, expr in enumerate(groups)) or "'' AS g0"
    names = ", ".join(f"g{i}" for i in range(max(1, len(groups))))
    join = "cost.call_id = calls.id" + (" AND cost.call_started_at = calls.started_at" if dialect.name != "sqlite"
                                        else "")

    def count(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    def total(column: str, condition: str) -> str:
        return f"COALESCE(SUM(CASE WHEN {condition} THEN {column} END), 0)"

    exact = "coalesce(usage_source, '') <> 'estimated'"
    return f"""
        WITH base AS (
            SELECT {keys}, outcome, usage_source, duration_s, {", ".join(TOKENS)}, {", ".join(UNITS)},
                   cost.total AS cost_total, cost.total_nano, cost.total_atto,
                   cost.estimated AS cost_estimated, cost.call_id AS costed
            FROM calls LEFT JOIN costs AS cost ON {join} AND cost.{pick} = {dialect.true}
            {"WHERE " + " AND ".join(where) if where else ""}
        ), c AS (
            SELECT base.*, ROW_NUMBER() OVER (PARTITION BY {names} ORDER BY duration_s) AS rank,
                   COUNT(*) OVER (PARTITION BY {names}) AS n
            FROM base
        )
        SELECT {names}, COUNT(*), {count("outcome <> 'ok'")},
               {", ".join(total(t, exact) for t in TOKENS)},
               {total("input_tokens", "usage_source = 'estimated'")},
               {total("output_tokens", "usage_source = 'estimated'")},
               {total("total_nano", "NOT cost_estimated")}, {total("total_atto", "NOT cost_estimated")},
               {total("total_nano", "cost_estimated")}, {total("total_atto", "cost_estimated")},
               {count("costed IS NOT NULL AND cost_total IS NULL")}, {count("usage_source = 'estimated'")},
               MIN(CASE WHEN rank >= 0.50 * n THEN duration_s END), MIN(CASE WHEN rank >= 0.95 * n THEN duration_s END),
               {", ".join(f"COALESCE(SUM({u}), 0)" for u in UNITS)}
        FROM c GROUP BY {names} ORDER BY {names}
    """


def report(ledger: str | Path, by: tuple[str, ...], since: date | None = None, until: date | None = None,
           as_reported: bool = False, where: dict[str, str] | None = None) -> list[Row]:
    """One row per group, in group order; calls from ``since`` (inclusive) to ``until`` (exclusive), UTC days.

    ``where``: only the calls whose column or attribution key has that value (``{"team": "search"}``).
    A key that is no column, period or attribution key of the ledger is an ``UnknownKey`` (a ``ValueError``).
    """
    db = connect(ledger)
    try:
        dialect = db.dialect
        try:
            try:
                groups = [group_expression(dialect, name) for name in by]
                conditions, params = day_range(dialect, "started_at", since, until)
                for name, value in (where or {}).items():
                    conditions.append(f"{value_expression(dialect, name)} = {dialect.mark}")
                    params.append(value)
            except UnknownKey as exc:  # say which keys there are
                raise UnknownKey(exc.name, exc.why, attribute_keys(db)) from None
            sql = _sql(dialect, groups, conditions, "reported" if as_reported else "current")
            result = db.rows(sql, params)
            _check_keys(db, by, where or {}, result)
        except db.errors as exc:
            raise LedgerError(db.name, f"cannot be read ({str(exc).strip().splitlines()[0]})") from None
    finally:
        db.close()
    width = max(1, len(groups))
    counted = (*TOKENS, "estimated_input_tokens", "estimated_output_tokens")
    out = []
    for row in result:
        tokens = {name: int(value) for name, value in zip(counted, row[width + 2:width + 2 + len(counted)],
                                                          strict=True)}
        rest = row[width + 2 + len(counted):]
        units = {name: round(float(value), 3) for name, value in zip(UNITS, rest[8:], strict=True)}
        out.append(Row(tuple(str(g) for g in row[:width]) if groups else (), int(row[width]), int(row[width + 1]),
                       tokens, join_money(int(rest[0]), int(rest[1])) or Decimal(0),
                       join_money(int(rest[2]), int(rest[3])) or Decimal(0), int(rest[4]), int(rest[5]),
                       rest[6], rest[7], units))
    out.sort(key=lambda row: row.group)  # in Python: the databases' collations differ, the order must not
    return out
