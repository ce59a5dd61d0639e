"""Drain the metering workers before a scrape, so ``/metrics`` shows every call that has ended.

With ``Meter(metering="worker")`` a call's record reaches the Prometheus store on the metering worker,
a moment after the call ended. A scrape (or a test) reading the store right after a call must see it:
the store asks each Meter feeding it to flush its worker first (bounded by ``DRAIN_TIMEOUT_S``: a scrape
never hangs on a stuck worker; it then shows what is there). The flushes are held weakly: a Meter that is
gone leaves no drain behind.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable

DRAIN_TIMEOUT_S = 5.0
"""How long one scrape waits, in all, for the workers feeding its store (a loaded machine may have a
backlog; Prometheus's default scrape timeout is 10 s)."""

Flush = Callable[[float], bool]

_drains: weakref.WeakKeyDictionary[object, list[weakref.WeakMethod[Flush]]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def drain_before_scrape(store: object, flush: Flush) -> None:
    """Have ``flush(timeout)`` (a bound method: ``MeteringWorker.flush``) run before each scrape of ``store``."""
    with _lock:
        drains = _drains.setdefault(store, [])
        if not any(ref() == flush for ref in drains):
            drains.append(weakref.WeakMethod(flush))


def drain(store: object) -> None:
    """Flush every live worker feeding ``store``, within ``DRAIN_TIMEOUT_S`` in all. Never raises."""
    with _lock:
        flushes = [flush for flush in (ref() for ref in _drains.get(store, ())) if flush is not None]
    if not flushes:
        return
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    for flush in flushes:
        with contextlib.suppress(Exception):  # a scrape shows what is there rather than fail
            flush(max(0.0, deadline - time.monotonic()))
