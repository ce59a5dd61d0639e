"""``QueuedSubscriber``: run a slow subscriber off the caller's path, with a bounded queue.

Subscribers (``Meter(on_record=...)``) run inline, on the thread that finished
the call: the caller's thread, or the event loop for async clients. That keeps
the record's order and costs nothing extra, but a subscriber that blocks (a
network write, a database insert) stalls the caller for as long as it blocks.
Wrapping it in ``QueuedSubscriber`` moves it to one worker thread: the caller
only puts the record on a queue. The queue is bounded so a stuck subscriber
cannot grow memory without end; when it is full the record is dropped for that
subscriber and counted in ``dropped`` (and logged once), never waited for.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from meter.core.record import CallRecord

logger = logging.getLogger("meter")

_STOP = object()


class QueuedSubscriber:
    """A subscriber that hands records to ``callback`` on a worker thread (see the module docstring).

    ``maxsize`` bounds the records waiting; ``dropped`` counts those refused
    because the queue was full, ``errors`` those the callback raised on.
    ``close()`` (also at interpreter exit, as the worker is a daemon) waits up to
    ``timeout`` seconds for the queue to drain.
    """

    def __init__(self, callback: Callable[[CallRecord], None], maxsize: int = 10_000,
                 name: str = "meter-subscriber") -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.callback = callback
        self.dropped = 0
        self.errors = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize)
        self._warned = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __call__(self, record: CallRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            if not self._warned:
                self._warned = True
                logger.warning("meter: a queued subscriber is %d records behind; records are dropped for it "
                               "(counted in .dropped) until it catches up", self._queue.maxsize)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop after the records already queued; ``False`` if they were not all handled in ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
                break
            except queue.Full:
                return False
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

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
