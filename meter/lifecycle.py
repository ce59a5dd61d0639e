"""One lifecycle for every thread meter starts: ledger writers, queued subscribers, the orphans finisher.

Each follows the same rules, kept here so that none of them gets them half right:

- **started lazily**, by its first use, never at import or construction (a ``Meter`` built before
  ``os.fork()`` has no thread to lose);
- ``close(timeout)`` **drains** what is queued, then stops; a second ``close`` does nothing;
- at **interpreter exit**, in order: calls still open are finished first (a stream the program never
  closed still owes its record), then every worker is closed, so the records those calls just made
  reach the ledger and the queued subscribers before the process ends. One ``atexit`` hook does all
  of it, so the order never depends on which module happened to register first;
- in a **forked child**, every worker starts afresh: new locks, an empty queue, a thread of its own
  when first used. The parent's queued records are the parent's to write; the child never replays
  them (that would write them twice) and never waits for them at exit. A child started by
  ``multiprocessing`` (a fork ``Pool``, ``Process``) ends with ``os._exit``, which skips ``atexit``:
  there the drain runs from multiprocessing's own exit instead.

A worker registers itself with ``register``; nothing here keeps it alive (a ``WeakSet``).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
import weakref
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger("meter")

EXIT_TIMEOUT_S = 10.0
"""How long interpreter exit waits, in all, for workers to drain (a ledger whose database is down gives
up then; what it still held is counted and logged)."""


class Worker(Protocol):
    """A thread of meter's with a queue in front of it."""

    def close(self, timeout: float = ...) -> bool: ...

    def after_fork_in_child(self) -> None: ...


_workers: weakref.WeakSet[Worker] = weakref.WeakSet()
_registered: list[weakref.ref[Worker]] = []
"""The same workers in the order they registered (a ``WeakSet`` has none): closed in that order."""
_first_at_exit: list[Callable[[], None]] = []
_fork_hooks: list[Callable[[], None]] = []


def register(worker: Worker) -> None:
    """Drain ``worker`` at exit and reset it in a forked child."""
    if worker not in _workers:
        _workers.add(worker)
        _registered.append(weakref.ref(worker))


def finish_calls_at_exit(hook: Callable[[], None]) -> None:
    """Run ``hook`` at exit before any worker is closed (it finishes calls, which make records)."""
    _first_at_exit.append(hook)


def reset_in_child(hook: Callable[[], None]) -> None:
    """Run ``hook`` in a forked child, before the workers are reset (module-level state of the finisher)."""
    _fork_hooks.append(hook)


def _live_workers() -> list[Worker]:
    live = [worker for worker in (ref() for ref in _registered) if worker is not None]
    _registered[:] = [weakref.ref(worker) for worker in live]
    return live


def close_all(timeout: float = EXIT_TIMEOUT_S) -> None:
    """Finish open calls, then drain every worker within ``timeout`` seconds in all (exit; tests)."""
    for hook in _first_at_exit:
        try:
            hook()
        except Exception as exc:  # nothing may stop the rest of the exit drain
            logger.warning("meter: finishing open calls at exit failed (%s: %s)", type(exc).__name__, exc)
    deadline = time.monotonic() + timeout
    for worker in _live_workers():
        try:
            worker.close(max(0.0, deadline - time.monotonic()))
        except Exception as exc:
            logger.warning("meter: closing %r at exit failed (%s: %s)", worker, type(exc).__name__, exc)


def _after_fork_in_child() -> None:
    for hook in _fork_hooks:
        hook()
    for worker in _live_workers():
        worker.after_fork_in_child()
    multiprocessing = sys.modules.get("multiprocessing.util")
    if multiprocessing is not None:  # maybe a multiprocessing child: it clears its finalizers, then runs these
        multiprocessing.register_after_fork(_anchor, _drain_at_multiprocessing_exit)


class _Anchor:
    """What multiprocessing's after-fork registry holds on to (it keeps weak references only)."""


_anchor = _Anchor()


def _drain_at_multiprocessing_exit(_: object) -> None:
    from multiprocessing import util

    util.Finalize(None, close_all, exitpriority=1)


atexit.register(close_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
