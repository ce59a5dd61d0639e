"""Responses dropped without ``close()``: their calls are finished here, never in a finaliser.

A response that is garbage-collected unread still owes its one record. The
garbage collector runs finalisers on whatever thread triggers it, possibly one
that holds a lock meter (or prometheus-client, or a user's subscriber) needs,
so a finaliser that priced, ended a span and called subscribers could deadlock.
The stream's ``__del__`` therefore only puts the call on a ``SimpleQueue``
(whose ``put`` is safe in finalisers), and one daemon thread, started from a
normal context when the first metered stream is made, finishes those calls.
What is still queued when the interpreter exits is finished at exit; a forked
child starts with a queue and a thread of its own.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from typing import Protocol


class Orphan(Protocol):
    def on_close(self) -> None: ...


_queue: queue.SimpleQueue[Orphan] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_start_lock = threading.Lock()
_busy = 0
"""Calls taken off the queue and not finished yet (for ``wait_idle``)."""


def adopt(call: Orphan) -> None:
    """From a finaliser: queue the call to be finished elsewhere (nothing else happens here)."""
    _queue.put(call)


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
    """Finish every queued call on this thread (at exit, and for tests)."""
    while True:
        try:
            call = _queue.get_nowait()
        except queue.Empty:
            return
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
    global _queue, _thread, _start_lock, _busy
    _queue = queue.SimpleQueue()
    _thread = None
    _start_lock = threading.Lock()
    _busy = 0


atexit.register(drain)
os.register_at_fork(after_in_child=_after_fork_in_child)
