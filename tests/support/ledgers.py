"""A ledger on either backend, for tests that must hold on SQLite and on PostgreSQL alike.

``ledger_url`` (a fixture in tests/conftest.py) is a SQLite file path or the URL of a new database on
the suite's PostgreSQL server; ``query`` reads it back with the backend's own driver.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def run(ledger: str, sql: str) -> None:
    """Run one statement on ``ledger`` (a SQLite path or a ``postgresql://`` URL), committed."""
    if ledger.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(ledger, autocommit=True) as db:
            db.execute(sql)
        return
    with sqlite3.connect(ledger) as db:
        db.execute(sql)


def query(ledger: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows ``sql`` selects from ``ledger`` (a SQLite path or a ``postgresql://`` URL)."""
    if ledger.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(ledger) as db:
            return [tuple(row) for row in db.execute(sql).fetchall()]
    with sqlite3.connect(ledger) as db:
        return list(db.execute(sql))
