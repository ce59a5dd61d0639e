"""Responses dropped without ``close()``: their calls are finished here, never in a finaliser.

A response that is garbage-collected unread still owes its one record. The
garbage collector runs finalisers on whatever thread triggers it, possibly one
that holds a lock meter (or prometheus-client, or a user's subscriber) needs,
so a finaliser that priced, ended a span and called subscribers could deadlock.
The stream's ``__del__`` therefore only puts the call on a ``SimpleQueue``
(whose ``put`` is safe in finalisers), and one daemon thread, started from a
normal context when the first metered stream is made, finishes those calls.
At interpreter exit (``meter.lifecycle``, before the ledgers and queued
subscribers drain) every call still queued, and every call whose stream is still
open, is finished here: a stream the program never closed would otherwise be
finalised during interpreter teardown, after the ledger had already closed, and
its record would never be written. A forked child starts with a queue, a thread
and a set of open calls of its own.
"""

from __future__ import annotations

import queue
import threading
import weakref
from typing import Protocol

from meter import lifecycle


class Orphan(Protocol):
    @property
    def finished(self) -> bool: ...

    def on_close(self) -> None: ...


_queue: queue.SimpleQueue[Orphan] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_start_lock = threading.Lock()
_busy = 0
"""Calls taken off the queue and not finished yet (for ``wait_idle``)."""
_open: weakref.WeakSet[Orphan] = weakref.WeakSet()
"""Calls whose response stream is alive: finished at exit if their caller never finished them."""


def adopt(call: Orphan) -> None:
    """From a finaliser: queue the call to be finished elsewhere (nothing else happens here)."""
    _queue.put(call)


def track(call: Orphan) -> None:
    """A metered stream was made (normal context): remember its call until it is gone, and make sure
    the finishing thread runs."""
    _open.add(call)
    if _thread is None:
        ensure_started()


def ensure_started() -> None:
    """Start the finishing thread if it is not running (called from normal contexts only)."""
    global _thread
    if _thread is not None:
        return
    with _start_lock:
        if _thread is None:
            thread = threading.Thread(target=_run, name="meter-orphans", daemon=True)
            thread.start()
            _thread = thread


def _finish(call: Orphan) -> None:
    try:  # noqa: SIM105 - plain try: at interpreter exit contextlib may already be torn down
        call.on_close()
    except Exception:  # on_close counts its own faults; nothing may kill this thread
        pass


def _run() -> None:
    global _busy
    while True:
        call = _queue.get()
        _busy += 1
        try:
            _finish(call)
        finally:
            _busy -= 1


def drain() -> None:
    """Finish every queued call on this thread (for tests)."""
    while True:
        try:
            call = _queue.get_nowait()
        except queue.Empty:
            return
        _finish(call)


def finish_all() -> None:
    """At exit: finish the queued calls, then every call whose stream is still open (``aborted``: the
    program ended before reading it to the end). A call finishes once, so the stream's own finaliser,
    when teardown reaches it, adds nothing."""
    drain()
    for call in list(_open):
        if not call.finished:
            _finish(call)


def wait_idle(timeout: float = 5.0) -> bool:
    """Wait until nothing is queued or being finished; ``False`` at the timeout (for tests)."""
    import time

    deadline = time.monotonic() + timeout
    while not _queue.empty() or _busy:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def _after_fork_in_child() -> None:
    """The parent's queued and open calls are the parent's: the child finishes only its own."""
    global _queue, _thread, _start_lock, _busy, _open
    _queue = queue.SimpleQueue()
    _thread = None
    _start_lock = threading.Lock()
    _busy = 0
    _open = weakref.WeakSet()


lifecycle.finish_calls_at_exit(finish_all)
lifecycle.reset_in_child(_after_fork_in_child)
