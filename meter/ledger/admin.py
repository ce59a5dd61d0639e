"""``meter ledger info|migrate|prune``: what a ledger holds, its schema, and retention.

``migrate`` brings a ledger to this meter's schema (version 1 is the first: it checks and
creates); ``prune --before DAY`` deletes the calls (and their costs) started before that UTC
day, in one transaction, and says how many; both name the ledger in any error.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

from meter.ledger.errors import LedgerError, sqlite_only
from meter.ledger.schema import SCHEMA_VERSION
from meter.ledger.sqlite import SQLiteLedger


def _existing(path: str | Path) -> Path:
    sqlite_only(path, "meter ledger")
    if not Path(path).is_file():
        raise LedgerError(str(path), "does not exist")
    return Path(path)


def info(path: str | Path) -> dict[str, Any]:
    ledger = SQLiteLedger(_existing(path))  # checks the schema, refuses a newer one
    ledger.close()
    try:
        with sqlite3.connect(path) as db:
            calls, first, last = db.execute("SELECT count(*), min(started_at), max(started_at) FROM calls").fetchone()
            costs, versions = db.execute("SELECT count(*), count(DISTINCT table_version) FROM costs").fetchone()
            repriced = db.execute("SELECT count(*) FROM costs WHERE current = 1 AND reported = 0").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise LedgerError(str(path), f"cannot be read ({exc})") from None
    return {"ledger": str(path), "schema_version": SCHEMA_VERSION, "calls": calls, "first_call": first,
            "last_call": last, "cost_rows": costs, "price_table_versions": versions, "repriced_calls": repriced,
            "bytes": Path(path).stat().st_size}


def migrate(path: str | Path) -> int:
    """Bring the ledger to this meter's schema (creating it if missing); returns the version."""
    SQLiteLedger(path).close()
    return SCHEMA_VERSION


def prune(path: str | Path, before: date) -> int:
    """Delete the calls started before ``before`` (UTC) and their costs; returns how many calls."""
    SQLiteLedger(_existing(path)).close()
    cutoff = before.isoformat()
    try:
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM costs WHERE call_id IN (SELECT id FROM calls WHERE started_at < ?)", (cutoff,))
            removed: int = db.execute("DELETE FROM calls WHERE started_at < ?", (cutoff,)).rowcount
    except sqlite3.DatabaseError as exc:
        raise LedgerError(str(path), f"cannot be pruned ({exc})") from None
    return removed
