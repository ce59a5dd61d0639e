"""``LedgerWriter``: a bounded queue and one thread that writes records in batches.

``put`` never blocks and never raises: a record that cannot be queued (the queue is full, or
the writer is closed) is dropped and said so through ``on_fault`` (the hub counts it as a
metering fault and logs it once). The thread starts with the first record and writes a batch
when ``BATCH`` records are waiting or every ``FLUSH_INTERVAL_S``, whichever comes first.

A failed write is one of two things, and they are handled apart:

- **the database is down** (or locked, or restarting): the batch is kept and tried again with a
  growing pause (records keep their ids, so a retried batch adds nothing twice); meanwhile new
  records fill the queue and then drop, counted;
- **a row the database can never hold** (a data error: a value out of range, text it refuses):
  retrying would stop the ledger for good, so the batch is split until the rows that fail are
  found; the others are written, each failing row is repaired once (text made valid, integers out
  of range made NULL: counted as ``ledger_repaired``) and, if it still fails, set aside (counted as
  ``ledger_rejected``, logged once, never retried). A failure of unknown kind is retried a few
  times, then split the same way: if other rows of the batch go in, the database is up and the rest
  is the data.

``flush`` waits for what is queued; ``close`` flushes and stops. The writer follows
``meter.lifecycle``: drained at interpreter exit after open calls are finished, reset in a
forked child (its own connection, an empty queue). A process killed outright loses at most what
was queued since the last write: one flush interval of records.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from meter import lifecycle
from meter.core.faults import FaultKind
from meter.core.record import CallRecord
from meter.ledger import rows

logger = logging.getLogger("meter.ledger")

FLUSH_INTERVAL_S = 0.5
BATCH = 500
MAX_QUEUE = 10_000
_RETRY_MAX_S = 5.0
_SPLIT_AFTER = 3
"""After this many failures of unknown kind in a row, the batch is split once to tell bad data from a database
that is down (a down database then costs about log2(BATCH) quick failures, once per batch)."""

Row = tuple[Any, ...]
Pair = tuple[Row, Row | None]
"""A call's row and its cost row (``None`` when the call has no cost)."""
FaultCallback = Callable[[FaultKind, str, int], None]
"""``(kind, reason, count)``: records the writer could not write as they were (see the kinds below)."""

DROPPED: FaultKind = "ledger_dropped"
"""Records not written: the queue was full (the database slow or down), or close timed out."""
AFTER_CLOSE: FaultKind = "ledger_after_close"
"""Records finished after ``Meter.close()``: the ledger was closed and they are not written."""
REPAIRED: FaultKind = "ledger_repaired"
"""Rows the database refused as they were and accepted once their values were made storable."""
REJECTED: FaultKind = "ledger_rejected"
"""Rows the database refused even repaired: set aside, never retried."""


class Store(Protocol):
    name: str

    @property
    def data_errors(self) -> tuple[type[BaseException], ...]:
        """Exceptions that mean "this row can never be written" rather than "the database is unavailable"."""

    def write(self, calls: Sequence[Row], costs: Sequence[Row]) -> None: ...

    def ping(self) -> None: ...

    def after_fork_in_child(self) -> None: ...

    def close(self) -> None: ...


class _DatabaseDown(Exception):
    """Nothing of the batch could be written and the database did not answer: try the batch again later."""


class LedgerWriter:
    """Writes records to ``store`` from a thread of its own."""

    def __init__(self, store: Store, on_fault: FaultCallback | None = None, max_queue: int = MAX_QUEUE,
                 flush_interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.store = store
        self.flush_interval_s = flush_interval_s
        self._max_queue = max_queue
        self._on_fault = on_fault
        self._closed = False
        self._reset()
        lifecycle.register(self)

    def _reset(self) -> None:
        """A writer with nothing queued and no thread (at construction, and in a forked child)."""
        self.dropped = 0
        """Records not written (dropped, after close, rejected), in this process."""
        self.written = 0
        self.rejected = 0
        self.repaired = 0
        self._queue: queue.Queue[tuple[str, CallRecord, datetime] | None] = queue.Queue(self._max_queue)
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # -- the caller's side ------------------------------------------------------------------------

    def put(self, record: CallRecord) -> None:
        """Queue one record (an id is given here, once); drop it, counted, if it cannot be queued."""
        if self._closed:
            self._lost(AFTER_CLOSE, "the ledger is closed (Meter.close() was called); later records are not "
                                    "written", 1)
            return
        if self._thread is None:
            self._start()
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait((rows.new_id(), record, datetime.now(UTC)))
        except queue.Full:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()
            self._lost(DROPPED, "the ledger queue is full (the database is slow or down); records are dropped", 1)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record queued so far is written; ``False`` if that took longer than ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Flush, stop the thread and close the store; ``False`` if records were still queued at the timeout
        (they are counted as dropped). Closing again does nothing; records put after it are counted."""
        if self._closed:
            return True
        deadline = time.monotonic() + timeout
        flushed = self.flush(timeout)
        self._closed = True
        thread = self._thread
        if thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
            thread.join(max(0.0, deadline - time.monotonic()))
        if thread is None or not thread.is_alive():
            self.store.close()  # else the thread still uses it: a daemon, cut off at exit
        if not flushed:
            with self._idle:
                left = self._pending
            if left:
                self._lost(DROPPED, f"the ledger could not write {left} records before its close timeout", left)
        return flushed

    def after_fork_in_child(self) -> None:
        """A forked child writes only its own records, over a connection of its own; the parent's queue is
        the parent's to write (replaying it here would write it twice)."""
        self.store.after_fork_in_child()
        self._reset()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="meter-ledger", daemon=True)
                thread.start()
                self._thread = thread

    def _lost(self, kind: FaultKind, reason: str, count: int) -> None:
        with self._idle:
            self.dropped += count
            if kind == REJECTED:
                self.rejected += count
        if self._on_fault is not None:
            self._on_fault(kind, reason, count)

    # -- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.flush_interval_s
            stop = False
            while len(batch) < BATCH:
                left = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=max(left, 0)) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[tuple[str, CallRecord, datetime]]) -> None:
        pairs: list[Pair] = []
        for call_id, record, at in batch:
            try:  # a record that cannot become rows is set aside, counted: it never stops the writer
                pairs.append((rows.call_row(call_id, record), rows.cost_row(call_id, record, at)))
            except Exception as exc:
                self._reject(f"a record could not become a row ({type(exc).__name__}: {exc})")
        written = self._store(pairs) if pairs else 0
        with self._idle:
            self.written += written
            self._pending -= len(batch)
            self._idle.notify_all()

    def _store(self, pairs: list[Pair]) -> int:
        """Write ``pairs``; how many rows went in. Retries while the database is down (until closing)."""
        pause, failures = 0.05, 0
        while True:
            try:
                _write_pairs(self.store, pairs)
                return len(pairs)
            except Exception as exc:
                failures += 1
                if isinstance(exc, self.store.data_errors) or failures == _SPLIT_AFTER:
                    try:
                        return self._isolate(pairs, known_up=False)
                    except _DatabaseDown:
                        pass
                logger.warning("meter: ledger %s: write failed (%s: %s); retrying in %.2f s", self.store.name,
                               type(exc).__name__, _first_line(exc), pause)
                if self._closed and pause >= _RETRY_MAX_S:  # closing and still failing: give up, counted
                    self._lost(DROPPED, f"the ledger {self.store.name} could not be written while closing", len(pairs))
                    return 0
                time.sleep(pause)
                pause = min(pause * 2, _RETRY_MAX_S)

    def _isolate(self, pairs: list[Pair], known_up: bool) -> int:
        """Write what can be written of ``pairs``, halving on failure down to single rows; raises
        ``_DatabaseDown`` when nothing went in and the database does not answer."""
        if len(pairs) == 1:
            return self._single(pairs[0], known_up)
        middle = len(pairs) // 2
        written = 0
        for half in (pairs[:middle], pairs[middle:]):
            try:
                _write_pairs(self.store, half)
                written += len(half)
                known_up = True
            except Exception:
                written += self._isolate(half, known_up)
                known_up = True  # the half was sorted out row by row: the database answered
        return written

    def _single(self, pair: Pair, known_up: bool) -> int:
        """One row that failed in its batch: written as it is, else repaired, else set aside."""
        try:
            _write_pairs(self.store, [pair])
            return 1
        except Exception as exc:
            first = exc
        if not (known_up or isinstance(first, self.store.data_errors) or self._answers()):
            raise _DatabaseDown from first
        fixed = rows.repaired(pair)
        if fixed is not None and fixed != pair:
            try:
                _write_pairs(self.store, [fixed])
            except Exception:
                pass
            else:
                with self._idle:
                    self.repaired += 1
                if self._on_fault is not None:
                    self._on_fault(REPAIRED, f"a row was refused as it was ({type(first).__name__}: "
                                             f"{_first_line(first)}) and written with its values made storable", 1)
                return 1
        self._reject(f"a row was refused ({type(first).__name__}: {_first_line(first)}); it is set aside")
        return 0

    def _answers(self) -> bool:
        try:
            self.store.ping()
            return True
        except Exception:
            return False

    def _reject(self, reason: str) -> None:
        self._lost(REJECTED, f"ledger {self.store.name}: {reason}", 1)


def _write_pairs(store: Store, pairs: Sequence[Pair]) -> None:
    store.write([call for call, _ in pairs], [cost for _, cost in pairs if cost is not None])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
