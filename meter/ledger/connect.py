"""A connection for the ledger tools (report, reprice, admin) to either backend, with its ``Dialect``.

The writer (``sqlite.SQLiteLedger``, ``postgres.PostgresLedger``) creates a ledger; the tools
never do: a ledger that does not exist, is not a meter ledger, or was written by a newer
meter is a ``LedgerError`` naming it, before any query. PostgreSQL sessions run in UTC, so
periods and days mean the same UTC days as in SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from meter.ledger.dialect import POSTGRES, SQLITE, Dialect
from meter.ledger.errors import LedgerError, is_url, redacted, sqlite_path
from meter.ledger.schema import COST_COLUMNS, SCHEMA_VERSION


class Connection:
    """One open ledger for one tool run: rows out, rows in (in a transaction), closed at the end."""

    def __init__(self, raw: Any, dialect: Dialect, name: str, errors: type[Exception]) -> None:
        self.raw = raw
        self.dialect = dialect
        self.name = name
        self.errors = errors
        """The backend's database error class: the tools turn it into a ``LedgerError`` naming the ledger."""

    @property
    def cost_columns(self) -> tuple[str, ...]:
        """PostgreSQL's costs also carry the call's start, their partition key."""
        return COST_COLUMNS if self.dialect is SQLITE else ("call_started_at", *COST_COLUMNS)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.raw.execute(sql, params).fetchall()]

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows one by one, never all in memory (PostgreSQL: a server-side cursor, 5,000 rows a fetch)."""
        if self.dialect is SQLITE:
            yield from self.raw.execute(sql, params)
            return
        with self.raw.transaction(), self.raw.cursor(name="meter_stream") as cursor:
            cursor.itersize = 5000
            cursor.execute(sql, params)
            yield from cursor

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement that returns no rows (DDL, UPDATE, DELETE); returns the rows it touched."""
        return int(self.raw.execute(sql, params).rowcount)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` once per row; returns the rows it touched."""
        if not rows:
            return 0
        if self.dialect is SQLITE:
            return int(self.raw.executemany(sql, rows).rowcount)
        with self.raw.cursor() as cursor:
            cursor.executemany(sql, rows)
            return int(cursor.rowcount)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All of it or none of it."""
        if self.dialect is SQLITE:
            self.raw.execute("BEGIN")
            try:
                yield
            except BaseException:
                self.raw.execute("ROLLBACK")
                raise
            self.raw.execute("COMMIT")
        else:
            with self.raw.transaction():
                yield

    def close(self) -> None:
        self.raw.close()


def connect(where: str | Path, read_only: bool = True) -> Connection:
    """Open an existing ledger (a SQLite file, ``sqlite:///path`` or a ``postgresql://`` URL) and check its schema."""
    text = str(where)
    connection = _postgres(text) if is_url(text) else _sqlite(sqlite_path(text), read_only)
    try:
        _check(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _sqlite(path: str, read_only: bool) -> Connection:
    if not Path(path).is_file():
        raise LedgerError(path, "does not exist")
    try:
        raw = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True) if read_only else sqlite3.connect(
            path, timeout=5, isolation_level=None)
    except sqlite3.Error as exc:
        raise LedgerError(path, f"cannot be opened ({exc})") from None
    return Connection(raw, SQLITE, path, sqlite3.DatabaseError)


def _postgres(url: str) -> Connection:
    from meter.ledger import postgres

    name = redacted(url)
    raw = postgres.connect(url, name, options="-c TimeZone=UTC")
    import psycopg

    return Connection(raw, POSTGRES, name, psycopg.Error)


def _check(connection: Connection) -> None:
    try:
        row = connection.rows("SELECT value FROM meta WHERE key = 'schema_version'")
    except connection.errors as exc:
        raise LedgerError(connection.name, f"is not a meter ledger ({str(exc).strip().splitlines()[0]})") from None
    if not row or not str(row[0][0]).isdigit():
        raise LedgerError(connection.name, "has no schema version: not a meter ledger")
    if int(row[0][0]) > SCHEMA_VERSION:
        raise LedgerError(connection.name, f"has schema version {row[0][0]}, newer than this meter's "
                                           f"{SCHEMA_VERSION}: upgrade meter to use it")

