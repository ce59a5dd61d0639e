"""``QueuedSubscriber``: run a slow subscriber off the caller's path, with a bounded queue.

Subscribers (``Meter(on_record=...)``) run on the Meter's metering thread (or, with
``metering="inline"``, on the thread that finished the call: the caller's, or the
event loop for async clients). That keeps the records' order, but a subscriber that
blocks (a network write, a database insert) holds up every record after it, and
with ``metering="inline"`` the caller too. Wrapping it in ``QueuedSubscriber`` moves
it to a thread of its own: the metering thread only puts the record on a queue.
The queue is bounded so a stuck subscriber cannot grow memory without end; when it
is full the record is dropped for that subscriber and counted in ``dropped`` (and logged once), never waited for.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

from meter import lifecycle
from meter.core.record import CallRecord

logger = logging.getLogger("meter")

_STOP = object()


class QueuedSubscriber:
    """A subscriber that hands records to ``callback`` on a worker thread (see the module docstring).

    ``maxsize`` bounds the records waiting; ``dropped`` counts those refused
    because the queue was full, or still queued when ``close`` gave up, or handed
    in after ``close``; ``errors`` those the callback raised on. The thread starts
    with the first record. ``close()`` waits up to ``timeout`` seconds for the
    queue to drain; interpreter exit does the same (after open calls are finished,
    see ``meter.lifecycle``), and a forked child starts with an empty queue.
    """

    def __init__(self, callback: Callable[[CallRecord], None], maxsize: int = 10_000,
                 name: str = "meter-subscriber") -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.callback = callback
        self.dropped = 0
        self.errors = 0
        self._name = name
        self._maxsize = maxsize
        self._warned = False
        self._closed = False
        self._reset()
        lifecycle.register(self)

    def _reset(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue(self._maxsize)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def __call__(self, record: CallRecord) -> None:
        if self._closed:
            self._drop("closed")
            return
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._drop("full")

    def _drop(self, why: str, count: int = 1) -> None:
        self.dropped += count
        if not self._warned:
            self._warned = True
            reason = {"full": f"is {self._maxsize} records behind; records are dropped for it until it catches up",
                      "closed": "is closed; records handed to it are dropped",
                      "timeout": "did not drain before its close timeout; the records it still held are dropped"}
            logger.warning("meter: a queued subscriber %s (counted in .dropped)", reason[why])

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                thread.start()
                self._thread = thread

    def close(self, timeout: float = 5.0) -> bool:
        """Stop after the records already queued; ``False`` if they were not all handled in ``timeout``
        (those left are counted in ``dropped``). Closing again does nothing."""
        if self._closed:
            return True
        self._closed = True
        thread = self._thread
        if thread is None:
            return True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
        thread.join(max(0.0, deadline - time.monotonic()))
        if not thread.is_alive():
            return True
        left = self._queue.qsize()
        if left:
            self._drop("timeout", left)
        return False

    def after_fork_in_child(self) -> None:
        """The parent's queued records are the parent's to deliver: the child starts empty."""
        self._reset()

    def _run(self) -> None:
        while True:
            record = self._queue.get()
            if record is _STOP:
                return
            try:
                self.callback(record)  # type: ignore[arg-type]
            except Exception as exc:
                self.errors += 1
                if self.errors == 1:
                    logger.warning("meter: a queued subscriber raised %s: %s (counted in .errors)",
                                   type(exc).__name__, exc, exc_info=exc)
