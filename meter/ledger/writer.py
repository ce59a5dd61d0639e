"""``LedgerWriter``: a bounded queue and one thread that writes records in batches.

``put`` never blocks and never raises: a full queue drops the record and says so through
``on_drop`` (the hub counts it as a metering fault, ``ledger_dropped``, and logs it once).
The thread writes a batch when ``BATCH`` records are waiting or every ``FLUSH_INTERVAL_S``,
whichever comes first; a failed write is retried with a growing pause (records keep their
ids, so a retried batch adds nothing twice), and while it retries new records fill the
queue and then drop. ``flush`` waits for what is queued; ``close`` flushes and stops. A
process killed outright loses at most what was queued since the last write: one flush
interval of records.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from meter.core.record import CallRecord
from meter.ledger import rows

logger = logging.getLogger("meter.ledger")

FLUSH_INTERVAL_S = 0.5
BATCH = 500
MAX_QUEUE = 10_000
_RETRY_MAX_S = 5.0


class Store(Protocol):
    name: str

    def write(self, calls: Any, costs: Any) -> None: ...

    def close(self) -> None: ...


class LedgerWriter:
    """Writes records to ``store`` from a thread of its own."""

    def __init__(self, store: Store, on_drop: Callable[[], None] | None = None, max_queue: int = MAX_QUEUE,
                 flush_interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.store = store
        self.flush_interval_s = flush_interval_s
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue[tuple[str, CallRecord, datetime] | None] = queue.Queue(max_queue)
        self._on_drop = on_drop
        self._idle = threading.Condition()
        self._pending = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="meter-ledger", daemon=True)
        self._thread.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    def put(self, record: CallRecord) -> None:
        """Queue one record (an id is given here, once); drop it, counted, if the queue is full."""
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait((rows.new_id(), record, datetime.now(UTC)))
        except queue.Full:
            with self._idle:
                self._pending -= 1
                self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()

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
        """Flush, stop the thread and close the store; ``False`` if records were still queued at the timeout."""
        if self._closed:
            return True
        flushed = self.flush(timeout)
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        self.store.close()
        return flushed

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
        calls, costs, bad = [], [], 0
        for call_id, record, at in batch:
            try:  # a record that cannot become rows is dropped, counted: it never stops the writer
                call = rows.call_row(call_id, record)
                cost = rows.cost_row(call_id, record, at)
            except Exception as exc:
                bad += 1
                logger.warning("meter: ledger %s: a record could not be stored (%s: %s)", self.store.name,
                               type(exc).__name__, exc)
                continue
            calls.append(call)
            if cost is not None:
                costs.append(cost)
        if bad:
            with self._idle:
                self.dropped += bad
                self._pending -= bad
                self._idle.notify_all()
        pause, written = 0.05, False
        while calls:
            try:
                self.store.write(calls, costs)
                written = True
                break
            except Exception as exc:  # the database is down or locked: keep the batch, try again
                logger.warning("meter: ledger %s: write failed (%s: %s); retrying in %.2f s", self.store.name,
                               type(exc).__name__, exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, _RETRY_MAX_S)
                if self._closed and pause >= _RETRY_MAX_S:  # closing and still failing: give up, counted
                    break
        with self._idle:
            if written:
                self.written += len(calls)
            else:
                self.dropped += len(calls)
            self._pending -= len(calls)
            self._idle.notify_all()


def _close_at_exit(ref: weakref.ref[LedgerWriter]) -> None:
    """Interpreter exit: write what is queued (the thread is a daemon and would be cut off)."""
    writer = ref()
    if writer is not None:
        writer.close(timeout=5.0)
