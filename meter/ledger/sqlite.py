"""The SQLite ledger: a file, WAL mode, a busy timeout; opened and checked at construction.

Used by one writer thread (``writer.LedgerWriter``), so the connection is made for that use
(``check_same_thread=False``: it is created on the constructing thread and then only the
writer touches it). Inserts do nothing on a conflict of the record's id: a batch sent again
after an error adds nothing twice.

Many processes may open a new ledger file at the same moment (workers of one service starting
together): the schema is checked and created inside one ``BEGIN IMMEDIATE`` transaction, which
takes the file's write lock, so exactly one of them creates it and the others find it made.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from meter.ledger.dialect import SQLITE, attribute_indexes
from meter.ledger.errors import LedgerError
from meter.ledger.schema import CALL_COLUMNS, COST_COLUMNS, SCHEMA_VERSION, V1, added_columns

BUSY_TIMEOUT_MS = 5000
OPEN_TIMEOUT_S = 30.0
"""How long opening waits for other processes that hold the file's lock (creating or migrating it)."""
_abandoned: list[sqlite3.Connection] = []
"""Connections a forked child inherited: never used, and never closed (closing one in the child could
release the parent's locks or checkpoint the parent's log), so kept referenced for the child's life."""


class SQLiteLedger:
    """One SQLite ledger file (created with the current schema when missing).

    ``index_keys``: the allow-listed attribution keys (``Meter(label_keys=...)``), each given an
    index on (key, started_at) so a report for one team reads only that team's rows.
    """

    def __init__(self, path: str | Path, index_keys: tuple[str, ...] = ()) -> None:
        self.name = str(path)
        try:
            self._db = sqlite3.connect(self.name, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise LedgerError(self.name, f"cannot be opened ({exc})") from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _locked_retry(lambda: self._db.execute("PRAGMA journal_mode = WAL"))
            _locked_retry(lambda: self._in_write_lock(index_keys))
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise LedgerError(self.name, f"is not a usable SQLite ledger ({exc})") from None
        # ON CONFLICT on the key only: ``INSERT OR IGNORE`` would also skip, silently, a row that breaks a
        # NOT NULL constraint, and the writer would count it as written.
        self._insert_call = (f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(CALL_COLUMNS))}) ON CONFLICT (id) DO NOTHING")
        self._insert_cost = (f"INSERT INTO costs ({', '.join(COST_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(COST_COLUMNS))}) "
                             "ON CONFLICT (call_id, table_version) DO NOTHING")

    def _in_write_lock(self, index_keys: tuple[str, ...]) -> None:
        """Check or create the schema and the attribution indexes while holding the write lock."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._check_or_create()
            for ddl in attribute_indexes(SQLITE, index_keys):
                db.execute(ddl)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _check_or_create(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            if tables:
                raise LedgerError(self.name, f"holds tables that are not a meter ledger: {sorted(tables)}")
            for statement in V1.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row and str(row[0]).isdigit() else None
        if version is None:
            raise LedgerError(self.name, "has no schema version: not a meter ledger")
        if version > SCHEMA_VERSION:
            raise LedgerError(self.name, f"has schema version {version}, newer than this meter's {SCHEMA_VERSION}: "
                                         "upgrade meter to use it")
        for table, expected in (("calls", CALL_COLUMNS), ("costs", COST_COLUMNS)):
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            missing = [column for column in expected if column not in have]
            for column, sqlite_type, _ in added_columns(table, missing):
                self._db.execute(f"ALTER TABLE calls ADD COLUMN {column} {sqlite_type}")
                missing.remove(column)
            if missing:
                raise LedgerError(self.name, f"says schema version {version} but its {table} table lacks "
                                             f"{', '.join(missing)}: it was not written by this meter")

    def write(self, calls: Sequence[tuple[Any, ...]], costs: Sequence[tuple[Any, ...]]) -> None:
        """One transaction per batch: every row of it or none."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany(self._insert_call, calls)
            db.executemany(self._insert_cost, costs)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    data_errors: tuple[type[BaseException], ...] = (
        sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, OverflowError, ValueError, TypeError)
    """Errors of a row, not of the database (``UnicodeEncodeError`` is a ``ValueError``)."""

    def ping(self) -> None:
        """Raises unless the database answers (the writer's test: is it the data, or the database?)."""
        self._db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()

    def after_fork_in_child(self) -> None:
        """A forked child opens a connection of its own; the inherited one is left untouched."""
        _abandoned.append(self._db)
        self._db = sqlite3.connect(self.name, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read rows (reports, tests); on the caller's thread, with a connection of its own."""
        with sqlite3.connect(self.name, timeout=BUSY_TIMEOUT_MS / 1000) as db:
            return list(db.execute(sql, params))

    def close(self) -> None:
        self._db.close()


def _locked_retry(step: Callable[[], object]) -> None:
    """Run ``step`` again while another process holds the lock, up to ``OPEN_TIMEOUT_S``.

    SQLite's busy handler does not cover every case of two connections opening a new file at once (the
    switch to WAL, a lock upgrade from a read): those raise "database is locked" at once.
    """
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    pause = 0.01
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
