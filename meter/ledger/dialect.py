"""The SQL that differs between the two ledger backends, in one place: pure strings, no I/O.

The ledger tools (report, reprice, admin) write one query each; what SQLite and PostgreSQL
spell differently — parameter marks, booleans, periods of a timestamp, a key of the
attributes JSON — comes from here. SQLite keeps ``started_at`` as ISO 8601 UTC text (so a
period is a prefix of it); PostgreSQL keeps ``timestamptz`` and the session runs in UTC (so
a period is ``date_trunc`` formatted the same way). Both give the same strings for a group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

ATTRIBUTE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""An attribution key that may appear inside SQL (as a JSON path or an index name): checked first."""
PERIOD_NAMES = ("hour", "day", "week", "month")


@dataclass(frozen=True)
class Dialect:
    name: str
    mark: str
    """The parameter placeholder."""
    true: str
    false: str

    def period(self, name: str, column: str = "started_at") -> str | None:
        """``hour`` ``2026-11-01T14:00``, ``day`` ``2026-11-01``, ``week`` (its Monday), ``month`` ``2026-11``."""
        if self.name == "sqlite":
            return {"hour": f"substr({column}, 1, 13) || ':00'", "day": f"substr({column}, 1, 10)",
                    "week": f"date(substr({column}, 1, 10), '-' || ((CAST(strftime('%w', substr({column}, 1, 10)) "
                            "AS INTEGER) + 6) % 7) || ' days')",
                    "month": f"substr({column}, 1, 7)"}.get(name)
        formats = {"hour": "YYYY-MM-DD\"T\"HH24:00", "day": "YYYY-MM-DD", "week": "YYYY-MM-DD", "month": "YYYY-MM"}
        if name not in formats:
            return None
        return f"to_char(date_trunc('{name}', {column}), '{formats[name]}')"

    def attribute(self, key: str) -> str:
        """The attribution key ``key`` of a call, as text (NULL when the call has none)."""
        if not ATTRIBUTE_KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not an attribution key (letters, digits and _)")
        if self.name == "sqlite":
            return f"json_extract(attributes, '$.{key}')"
        return f"(attributes->>'{key}')"

    def day(self, value: date) -> str | datetime:
        """A UTC day as a parameter compared with ``started_at``."""
        return value.isoformat() if self.name == "sqlite" else datetime(value.year, value.month, value.day, tzinfo=UTC)


SQLITE = Dialect("sqlite", "?", "1", "0")
POSTGRES = Dialect("postgresql", "%s", "true", "false")


def attribute_indexes(dialect: Dialect, keys: tuple[str, ...]) -> list[str]:
    """DDL for one index per allow-listed attribution key, (key, started_at): "what did team X spend in
    November" reads only that team's rows. Idempotent (``IF NOT EXISTS``), so every start may run it.
    A key that is not a plain name (which Prometheus would refuse as a label too) gets no index."""
    return [f"CREATE INDEX IF NOT EXISTS calls_attr_{key} ON calls ({dialect.attribute(key)}, started_at)"
            for key in keys if ATTRIBUTE_KEY.fullmatch(key)]


def day_range(dialect: Dialect, column: str, since: date | None, until: date | None
              ) -> tuple[list[str], list[object]]:
    """SQL conditions (and their parameters) for ``since <= column < until``, UTC days, either end open."""
    where: list[str] = []
    params: list[object] = []
    if since is not None:
        where.append(f"{column} >= {dialect.mark}")
        params.append(dialect.day(since))
    if until is not None:
        where.append(f"{column} < {dialect.mark}")
        params.append(dialect.day(until))
    return where, params
