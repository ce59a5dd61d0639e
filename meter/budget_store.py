"""Budgets shared through the ledger's database: the ``SlotBackend`` of ``meter.budgets.shared.SharedBudgets``.

Three tables in the ledger's database (made here when missing, ``CREATE TABLE IF NOT EXISTS``, after the
ledger itself is made or checked by ``open_ledger``; a column added since is added to an older table,
``ADDED_COLUMNS``):

- ``budget_periods`` (budget, period_start): the period's end and limit, ``spent`` (a decimal string:
  exact on both backends), the counts of settled, estimated and unpriced calls, the alert
  thresholds fired (one bit each) and the calls refused. A rolling window has one row, its
  ``period_start`` ``rolling:24h`` (``period_end`` empty; ``spent`` and the counts: since the row was made);
- ``budget_buckets`` (budget, period_start, bucket): a rolling window's settled spend and calls by time
  bucket (``bucket``: epoch seconds // the bucket's width, the window / ``ROLLING_BUCKETS``); the window's
  spend is the sum of its buckets from the one it begins in; a bucket a window older than that is deleted;
- ``budget_leases`` (holder, budget, period_start): the headroom one process holds (``held``), until
  ``expires_at`` (seconds since the epoch, the database's clock on PostgreSQL), ``seq``, the last
  batch of settled spend written through it (a batch sent again is not counted again), and
  ``in_flight``, the process's calls in flight as its last heartbeat said (a decimal string).

A ``sync`` is one transaction. PostgreSQL locks the budget period's row (``SELECT ... FOR UPDATE``)
before it reads the leases, so two processes taking headroom of one budget go one after the other;
SQLite (one machine) takes the file's write lock first (``BEGIN IMMEDIATE``). Under that lock the
transaction also sets the alert bits the period's spend has reached and no one had set (``fire``) and
answers which it set (``SlotResult.won``): that process alone emits those alerts. Connections are
short-timeout (2 s) and made again after an error. ``SqlSlots(where, create=False)`` only reads (``meter
budgets status``): it makes nothing, and reads tables made by an older meter without their newer columns.
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
from meter.budgets.memory import ROLLING_BUCKETS
from meter.budgets.shared import ROLLING_KEY, BucketSpend, PeriodRow, SharedBudgets, SlotOp, SlotResult, fire
from meter.ledger.errors import LedgerError, is_url, redacted, sqlite_path
from meter.ledger.open import open_ledger

DDL = (
    "CREATE TABLE IF NOT EXISTS budget_periods (budget text NOT NULL, period_start text NOT NULL, "
    "period_end text NOT NULL, limit_usd text NOT NULL, spent text NOT NULL, calls bigint NOT NULL, "
    "estimated bigint NOT NULL, unpriced bigint NOT NULL, fired bigint NOT NULL, "
    "refused bigint NOT NULL DEFAULT 0, PRIMARY KEY (budget, period_start))",
    "CREATE TABLE IF NOT EXISTS budget_leases (holder text NOT NULL, budget text NOT NULL, "
    "period_start text NOT NULL, held text NOT NULL, expires_at double precision NOT NULL, seq bigint NOT NULL, "
    "in_flight text NOT NULL DEFAULT '0', PRIMARY KEY (holder, budget, period_start))",
    "CREATE TABLE IF NOT EXISTS budget_buckets (budget text NOT NULL, period_start text NOT NULL, "
    "bucket bigint NOT NULL, spent text NOT NULL, calls bigint NOT NULL, estimated bigint NOT NULL, "
    "unpriced bigint NOT NULL, PRIMARY KEY (budget, period_start, bucket))",
)
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("budget_periods", "refused", "bigint NOT NULL DEFAULT 0"),
    ("budget_leases", "in_flight", "text NOT NULL DEFAULT '0'"),
)
"""Columns added since the tables were first made: added to an older table when missing (table, column, type)."""
KEEP_EXPIRED_S = 86400.0
"""An expired lease row is deleted a day after it expired (its ``seq`` guards a batch retried until then)."""
_ZERO = Decimal(0)
_DDL_LOCK = 0x6D657465_72627564  # "meterbud": the advisory lock that makes the tables one process at a time


class SqlSlots:
    """The ``SlotBackend`` on a ledger database: a PostgreSQL URL or a SQLite file."""

    def __init__(self, where: str | Path, *, create: bool = True) -> None:
        text = str(where)
        self.postgres = is_url(text)
        self.where = text
        self.name = redacted(text) if self.postgres else str(Path(sqlite_path(text)).expanduser())
        self._mark = "%s" if self.postgres else "?"
        self._lock = threading.Lock()
        self._db: Any = None
        self._last_cleanup = 0.0
        self._begin = "BEGIN IMMEDIATE" if create else "BEGIN"  # a reader takes no write lock (a read-only file)
        self.tables: set[str] = {"budget_periods", "budget_leases", "budget_buckets"}
        """The budget tables the database has (all of them once made here)."""
        self._columns: set[tuple[str, str]] = {(table, column) for table, column, _ in ADDED_COLUMNS}
        if create:
            open_ledger(text).close()  # the ledger first (made, or checked to be one), then the budget tables
        with self._lock:
            try:
                db = self._connect()
                if not create:
                    self.tables, self._columns = self._layout()
                elif self.postgres:  # processes starting together: one makes the tables, the others wait
                    with db.transaction():
                        db.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                        self._make()
                else:
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        self._make()
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                    db.execute("COMMIT")
            except Exception as exc:
                self._drop()
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                doing = "cannot keep budgets" if create else "cannot read its budgets"
                raise LedgerError(self.name, f"{doing} ({type(exc).__name__}: {first})") from None

    def _make(self) -> None:
        for statement in DDL:
            self._run(statement)
        _, columns = self._layout()
        for table, column, kind in ADDED_COLUMNS:
            if (table, column) not in columns:
                self._run(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _layout(self) -> tuple[set[str], set[tuple[str, str]]]:
        """The budget tables there are, and their columns."""
        if self.postgres:
            rows = self._rows("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
                              "current_schema() AND table_name IN ('budget_periods', 'budget_leases', "
                              "'budget_buckets')")
        else:
            rows = [(table, row[1]) for table in ("budget_periods", "budget_leases", "budget_buckets")
                    for row in self._rows(f"PRAGMA table_info({table})")]
        return {str(t) for t, _ in rows}, {(str(t), str(c)) for t, c in rows}

    def _column(self, table: str, column: str, otherwise: str) -> str:
        """``column``, or ``otherwise`` on a table an older meter made without it (read only)."""
        return column if (table, column) in self._columns else otherwise

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
                self._db.execute(self._begin)
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
        self._run("INSERT INTO budget_periods (budget, period_start, period_end, limit_usd, spent, calls, estimated, "
                  "unpriced, fired, refused) VALUES (?, ?, ?, ?, '0', 0, 0, 0, 0, 0) ON CONFLICT DO NOTHING",
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
        added = _ZERO  # what this batch adds to a rolling window's spend now
        if batch is not None and batch.seq > seq:
            spent += batch.amount
            fired |= batch.fired
            self._run("UPDATE budget_periods SET spent = ?, calls = calls + ?, estimated = estimated + ?, "
                      "unpriced = unpriced + ?, refused = refused + ?, fired = ? WHERE budget = ? AND period_start = ?",
                      (str(spent), batch.calls, batch.estimated, batch.unpriced, batch.refused, fired, *key))
            for bucket in batch.buckets:
                self._add_bucket(key, bucket)
                if op.first_bucket is not None and bucket.index >= op.first_bucket:
                    added += bucket.amount
            seq = batch.seq
        buckets: tuple[BucketSpend, ...] = ()
        if op.first_bucket is not None:  # a rolling window: its spend is its buckets' from the first in it
            self._run("DELETE FROM budget_buckets WHERE budget = ? AND period_start = ? AND bucket < ?",
                      (*key, op.first_bucket - ROLLING_BUCKETS))
            buckets = self._buckets(key, op.first_bucket)
            spent = sum((b.amount for b in buckets), _ZERO)
        # compare-and-set under the row lock: the bits flipped here are this process's to fire, no one else's
        now_fired, won = fire(op.alerts, op.limit, fired, spent - added, spent, op.first_bucket is not None)
        if now_fired != fired:
            fired = now_fired
            self._run("UPDATE budget_periods SET fired = ? WHERE budget = ? AND period_start = ?", (fired, *key))
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
        elif op.mode == "set":
            held, expires = op.held, now + lease_s
        elif alive:  # keep: renew, never grow (an answer lost after its commit: the lease is smaller than sent)
            held, expires = min(op.held, held), now + lease_s
        self._run("INSERT INTO budget_leases (holder, budget, period_start, held, expires_at, seq, in_flight) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (holder, budget, period_start) DO UPDATE SET "
                  "held = excluded.held, expires_at = excluded.expires_at, seq = excluded.seq, "
                  "in_flight = excluded.in_flight", (holder, *key, str(held), expires, seq, str(op.in_flight)))
        return SlotResult(spent, others, held if expires > now else _ZERO, granted, fired, buckets, won)

    def _add_bucket(self, key: tuple[str, str], bucket: BucketSpend) -> None:
        """Add to one bucket (the period's row is locked: no other writer of this budget's buckets meanwhile)."""
        where = (*key, bucket.index)
        found = self._rows("SELECT spent FROM budget_buckets WHERE budget = ? AND period_start = ? AND bucket = ?",
                           where)
        if found:
            self._run("UPDATE budget_buckets SET spent = ?, calls = calls + ?, estimated = estimated + ?, "
                      "unpriced = unpriced + ? WHERE budget = ? AND period_start = ? AND bucket = ?",
                      (str(Decimal(found[0][0]) + bucket.amount), bucket.calls, bucket.estimated, bucket.unpriced,
                       *where))
        else:
            self._run("INSERT INTO budget_buckets VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (*where, str(bucket.amount), bucket.calls, bucket.estimated, bucket.unpriced))

    def _buckets(self, key: tuple[str, str], first: int | None = None) -> tuple[BucketSpend, ...]:
        if "budget_buckets" not in self.tables:
            return ()
        rows = self._rows("SELECT bucket, spent, calls, estimated, unpriced FROM budget_buckets WHERE budget = ? "
                          "AND period_start = ? AND bucket >= ? ORDER BY bucket",
                          (*key, first if first is not None else -(2**62)))
        return tuple(BucketSpend(int(i), Decimal(a), int(c), int(e), int(u)) for i, a, c, e, u in rows)

    def read(self, keys: Sequence[tuple[str, str]], holder: str = "") -> list[PeriodRow | None]:
        refused = self._column("budget_periods", "refused", "0")
        in_flight = self._column("budget_leases", "in_flight", "'0'")

        def work() -> list[PeriodRow | None]:
            now = self._now()
            out: list[PeriodRow | None] = []
            for key in keys:
                rows = self._rows(f"SELECT spent, calls, estimated, unpriced, fired, {refused} FROM budget_periods "
                                  "WHERE budget = ? AND period_start = ?", key)
                if not rows:
                    out.append(PeriodRow(_ZERO, _ZERO, 0, 0, 0, 0))
                    continue
                held, flying, seq = _ZERO, _ZERO, 0
                for lease, calls_in_flight, whose, expires, applied in self._rows(
                        f"SELECT held, {in_flight}, holder, expires_at, seq FROM budget_leases WHERE budget = ? "
                        "AND period_start = ?", key):
                    if whose == holder:
                        seq = int(applied)  # the reader's batches up to it are in these figures
                    if float(expires) <= now:
                        continue
                    held += Decimal(lease)
                    if whose != holder:
                        flying += Decimal(calls_in_flight)
                spent, calls, estimated, unpriced, fired, refusals = rows[0]
                buckets = self._buckets(key) if key[1].startswith(ROLLING_KEY) else ()
                out.append(PeriodRow(Decimal(spent), held, int(calls), int(estimated), int(unpriced), int(fired),
                                     int(refusals), buckets, flying, seq))
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
