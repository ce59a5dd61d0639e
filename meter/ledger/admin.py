"""``meter ledger info|migrate|prune``: what a ledger holds, its schema, and retention, on either backend.

``migrate`` brings a ledger to this meter's schema (version 1 is the first: it checks and
creates). ``prune --before DAY`` removes the calls (and their costs) started before that UTC
day in one transaction and says how many: on PostgreSQL by dropping the monthly partitions
that end by then (no DELETE, no bloat) and deleting only inside the month that straddles it.
Every error names the ledger.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from meter.ledger.connect import Connection, connect
from meter.ledger.errors import LedgerError
from meter.ledger.open import open_ledger
from meter.ledger.schema import SCHEMA_VERSION

_PARTITION = re.compile(r"(calls|costs)_y(\d{4})m(\d{2})")


def _text(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _partitions(db: Connection) -> list[tuple[str, date]]:
    """PostgreSQL: each partition of ``calls`` and ``costs`` with the first day of its month."""
    names = db.rows("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname IN ('calls', 'costs') ORDER BY 1")
    found = []
    for (name,) in names:
        match = _PARTITION.fullmatch(name)
        if match:
            found.append((name, date(int(match[2]), int(match[3]), 1)))
    return found


def info(ledger: str | Path) -> dict[str, Any]:
    db = connect(ledger)
    try:
        t = db.dialect.true
        calls, first, last = db.rows("SELECT count(*), min(started_at), max(started_at) FROM calls")[0]
        costs, versions = db.rows("SELECT count(*), count(DISTINCT table_version) FROM costs")[0]
        repriced = db.rows(f"SELECT count(*) FROM costs WHERE current = {t} AND reported <> {t}")[0][0]
        out: dict[str, Any] = {"ledger": db.name, "backend": db.dialect.name, "schema_version": SCHEMA_VERSION,
                               "calls": calls, "first_call": _text(first), "last_call": _text(last),
                               "cost_rows": costs, "price_table_versions": versions, "repriced_calls": repriced}
        if db.dialect.name == "sqlite":
            out["bytes"] = Path(db.name).stat().st_size
        else:
            out["bytes"] = int(db.rows("SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i "
                                       "JOIN pg_class p ON p.oid = i.inhparent "
                                       "WHERE p.relname IN ('calls', 'costs')")[0][0])
            out["partitions"] = sorted({first.isoformat()[:7] for _, first in _partitions(db)})
    except db.errors as exc:
        raise LedgerError(db.name, f"cannot be read ({str(exc).strip().splitlines()[0]})") from None
    finally:
        db.close()
    return out


def migrate(ledger: str | Path) -> int:
    """Bring the ledger to this meter's schema (creating it if missing); returns the version."""
    open_ledger(str(ledger)).close()
    return SCHEMA_VERSION


def prune(ledger: str | Path, before: date) -> int:
    """Remove the calls started before ``before`` (UTC) and their costs; returns how many calls."""
    db = connect(ledger, read_only=False)
    d = db.dialect
    cutoff = d.day(before)
    try:
        removed = 0
        with db.transaction():
            if d.name != "sqlite":
                for name, first in _partitions(db):
                    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
                    if after <= before:
                        if name.startswith("calls_"):
                            removed += int(db.rows(f"SELECT count(*) FROM {name}")[0][0])
                        db.run(f"DROP TABLE {name}")
            db.run(f"DELETE FROM costs WHERE call_id IN (SELECT id FROM calls WHERE started_at < {d.mark})"
                   if d.name == "sqlite" else f"DELETE FROM costs WHERE call_started_at < {d.mark}", (cutoff,))
            removed += db.run(f"DELETE FROM calls WHERE started_at < {d.mark}", (cutoff,))
    except db.errors as exc:
        raise LedgerError(db.name, f"cannot be pruned ({str(exc).strip().splitlines()[0]})") from None
    finally:
        db.close()
    return removed
