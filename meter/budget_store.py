"""Budgets shared through the ledger's database: the ``SlotBackend`` of ``meter.budgets.shared.SharedBudgets``.

Two tables in the ledger's database (made here when missing, ``CREATE TABLE IF NOT EXISTS``, after the
ledger itself is made or checked by ``open_ledger``):

- ``budget_periods`` (budget, period_start): the period's end and limit, ``spent`` (a decimal string:
  exact on both backends), the counts of settled, estimated and unpriced calls, and the alert
  thresholds fired (one bit each);
- ``budget_leases`` (holder, budget, period_start): the headroom one process holds (``held``), until
  ``expires_at`` (seconds since the epoch, the database's clock on PostgreSQL), and ``seq``, the last
  batch of settled spend written through it (a batch sent again is not counted again).

A ``sync`` is one transaction. PostgreSQL locks the budget period's row (``SELECT ... FOR UPDATE``)
before it reads the leases, so two processes taking headroom of one budget go one after the other;
SQLite (one machine) takes the file's write lock first (``BEGIN IMMEDIATE``). Connections are
short-timeout (2 s) and made again after an error.
"""

from __future__ import annotations

import atexit
import contextlib
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from meter.budgets import Budget
from meter.budgets.shared import PeriodRow, SharedBudgets, SlotOp, SlotResult
from meter.ledger.errors import LedgerError, is_url, redacted, sqlite_path
from meter.ledger.open import open_ledger

DDL = (
    "CREATE TABLE IF NOT EXISTS budget_periods (budget text NOT NULL, period_start text NOT NULL, "
    "period_end text NOT NULL, limit_usd text NOT NULL, spent text NOT NULL, calls bigint NOT NULL, "
    "estimated bigint NOT NULL, unpriced bigint NOT NULL, fired bigint NOT NULL, "
    "PRIMARY KEY (budget, period_start))",
    "CREATE TABLE IF NOT EXISTS budget_leases (holder text NOT NULL, budget text NOT NULL, "
    "period_start text NOT NULL, held text NOT NULL, expires_at double precision NOT NULL, seq bigint NOT NULL, "
    "PRIMARY KEY (holder, budget, period_start))",
)
KEEP_EXPIRED_S = 86400.0
"""An expired lease row is deleted a day after it expired (its ``seq`` guards a batch retried until then)."""
_ZERO = Decimal(0)
_DDL_LOCK = 0x6D657465_72627564  # "meterbud": the advisory lock that makes the tables one process at a time


class SqlSlots:
    """The ``SlotBackend`` on a ledger database: a PostgreSQL URL or a SQLite file."""

    def __init__(self, where: str | Path) -> None:
        text = str(where)
        self.postgres = is_url(text)
        self.where = text
        self.name = redacted(text) if self.postgres else str(Path(sqlite_path(text)).expanduser())
        self._mark = "%s" if self.postgres else "?"
        self._lock = threading.Lock()
        self._db: Any = None
        self._last_cleanup = 0.0
        open_ledger(text).close()  # the ledger first (made, or checked to be one), then the budget tables
        with self._lock:
            try:
                db = self._connect()
                if self.postgres:  # processes starting together: one makes the tables, the others wait
                    with db.transaction():
                        db.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                        for statement in DDL:
                            db.execute(statement)
                else:
                    for statement in DDL:
                        db.execute(statement)
            except Exception as exc:
                self._drop()
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise LedgerError(self.name, f"cannot keep budgets ({type(exc).__name__}: {first})") from None

    def _connect(self) -> Any:
        if self._db is not None:
            return self._db
        if self.postgres:
            import psycopg

            self._db = psycopg.connect(self.where, connect_timeout=2, autocommit=True,
                                       options="-c statement_timeout=5000 -c lock_timeout=5000")
        else:
            self._db = sqlite3.connect(self.name, timeout=5, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 5000")
        return self._db

    def _drop(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(Exception):  # a broken connection may not close cleanly
                db.close()

    def _q(self, sql: str) -> str:
        return sql.replace("?", self._mark)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._db.execute(self._q(sql), params).fetchall()]

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(self._q(sql), params)

    def _now(self) -> float:
        if self.postgres:
            return float(self._rows("SELECT extract(epoch FROM clock_timestamp())")[0][0])
        return time.time()

    def _transaction(self, work: Any) -> Any:
        with self._lock:
            try:
                self._connect()
                if self.postgres:
                    with self._db.transaction():
                        return work()
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = work()
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result
            except Exception:
                self._drop()
                raise

    def sync(self, holder: str, lease_s: float, ops: Sequence[SlotOp]) -> list[SlotResult]:
        return list(self._transaction(lambda: [self._one(holder, lease_s, op) for op in ops] + self._cleanup()))

    def _cleanup(self) -> list[SlotResult]:
        now = time.monotonic()
        if now - self._last_cleanup > 600:
            self._last_cleanup = now
            self._run("DELETE FROM budget_leases WHERE expires_at < ?", (self._now() - KEEP_EXPIRED_S,))
        return []

    def _one(self, holder: str, lease_s: float, op: SlotOp) -> SlotResult:
        key = (op.budget, op.start)
        self._run("INSERT INTO budget_periods VALUES (?, ?, ?, ?, '0', 0, 0, 0, 0) ON CONFLICT DO NOTHING",
                  (op.budget, op.start, op.end, str(op.limit)))
        lock = " FOR UPDATE" if self.postgres else ""
        spent_text, fired = self._rows(
            f"SELECT spent, fired FROM budget_periods WHERE budget = ? AND period_start = ?{lock}", key)[0]
        spent, fired = Decimal(spent_text), int(fired)
        now = self._now()
        mine = self._rows("SELECT held, expires_at, seq FROM budget_leases WHERE holder = ? AND budget = ? "
                          "AND period_start = ?", (holder, *key))
        alive = bool(mine) and float(mine[0][1]) > now
        seq = int(mine[0][2]) if mine else 0
        expires = float(mine[0][1]) if mine else now
        batch = op.batch
        if batch is not None and batch.seq > seq:
            spent += batch.amount
            fired |= batch.fired
            self._run("UPDATE budget_periods SET spent = ?, calls = calls + ?, estimated = estimated + ?, "
                      "unpriced = unpriced + ?, fired = ? WHERE budget = ? AND period_start = ?",
                      (str(spent), batch.calls, batch.estimated, batch.unpriced, fired, *key))
            seq = batch.seq
        others = sum((Decimal(h) for (h,) in self._rows(
            "SELECT held FROM budget_leases WHERE budget = ? AND period_start = ? AND holder <> ? AND expires_at > ?",
            (*key, holder, now))), _ZERO)
        granted = True
        held = Decimal(mine[0][0]) if alive else _ZERO
        if op.mode == "take":
            headroom = op.limit - spent - others
            if op.need > headroom:
                granted = False
                held = max(min(held, headroom), _ZERO)
            else:
                held, expires = min(op.held, headroom), now + lease_s
        elif op.mode == "set" or alive:
            held, expires = op.held, now + lease_s
        self._run("INSERT INTO budget_leases VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (holder, budget, period_start) "
                  "DO UPDATE SET held = excluded.held, expires_at = excluded.expires_at, seq = excluded.seq",
                  (holder, *key, str(held), expires, seq))
        return SlotResult(spent, others, held if expires > now else _ZERO, granted, fired)

    def read(self, keys: Sequence[tuple[str, str]]) -> list[PeriodRow | None]:
        def work() -> list[PeriodRow | None]:
            now = self._now()
            out: list[PeriodRow | None] = []
            for key in keys:
                rows = self._rows("SELECT spent, calls, estimated, unpriced, fired FROM budget_periods "
                                  "WHERE budget = ? AND period_start = ?", key)
                if not rows:
                    out.append(PeriodRow(_ZERO, _ZERO, 0, 0, 0, 0))
                    continue
                held = sum((Decimal(h) for (h,) in self._rows(
                    "SELECT held FROM budget_leases WHERE budget = ? AND period_start = ? AND expires_at > ?",
                    (*key, now))), _ZERO)
                spent, calls, estimated, unpriced, fired = rows[0]
                out.append(PeriodRow(Decimal(spent), held, int(calls), int(estimated), int(unpriced), int(fired)))
            return out

        result: list[PeriodRow | None] = self._transaction(work)
        return result

    def close(self) -> None:
        with self._lock:
            self._drop()


def shared_budgets(where: str | Path, budgets: Iterable[Budget], **options: Any) -> SharedBudgets:
    """A started ``SharedBudgets`` on the ledger at ``where`` (its tables made when missing)."""
    store = SharedBudgets(budgets, SqlSlots(where), **options).start()
    ref = weakref.ref(store)

    def at_exit() -> None:  # what the last heartbeat has not written, and the leases back
        alive = ref()
        if alive is not None:
            alive.close(timeout=1.0)

    atexit.register(at_exit)
    return store
