"""The SQLite ledger: a file, WAL mode, a busy timeout; opened and checked at construction.

Used by one writer thread (``writer.LedgerWriter``), so the connection is made for that use
(``check_same_thread=False``: it is created on the constructing thread and then only the
writer touches it). Inserts are ``INSERT OR IGNORE`` on the record's id: a batch sent again
after an error adds nothing twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meter.ledger.dialect import SQLITE, attribute_indexes
from meter.ledger.errors import LedgerError
from meter.ledger.schema import CALL_COLUMNS, COST_COLUMNS, SCHEMA_VERSION, V1

BUSY_TIMEOUT_MS = 5000


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
            self._db.execute("PRAGMA journal_mode = WAL")
            self._check_or_create()
            for ddl in attribute_indexes(SQLITE, index_keys):
                self._db.execute(ddl)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise LedgerError(self.name, f"is not a usable SQLite ledger ({exc})") from None
        self._insert_call = (f"INSERT OR IGNORE INTO calls ({', '.join(CALL_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(CALL_COLUMNS))})")
        self._insert_cost = (f"INSERT OR IGNORE INTO costs ({', '.join(COST_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(COST_COLUMNS))})")

    def _check_or_create(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            if tables:
                raise LedgerError(self.name, f"holds tables that are not a meter ledger: {sorted(tables)}")
            self._db.executescript("BEGIN;" + V1 + f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
                                   + "COMMIT;")
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

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read rows (reports, tests); on the caller's thread, with a connection of its own."""
        with sqlite3.connect(self.name, timeout=BUSY_TIMEOUT_MS / 1000) as db:
            return list(db.execute(sql, params))

    def close(self) -> None:
        self._db.close()
