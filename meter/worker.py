"""``MeteringWorker``: the thread where a call's metering runs, so the caller pays only for what cannot wait.

The caller's thread recognises the call, keeps references to the bytes it passes and takes the
timestamps and context it needs (``Meter.begin``, ``Call.on_chunk``). Everything else (opening and
ending the span with the call's own timestamps, reading the final body or the stream's events,
pricing, the record, the sinks, the subscribers, settling the budgets) is a job on this worker's queue,
run in order, in batches: the caches stay warm and the caller's thread is not where it runs.

Rules (``meter.lifecycle`` for the rest):

- **order**: one FIFO queue and one thread; a call is one job, its start and end together, queued when it
  ends (``hub._Pending``): one hand-off per call on the caller's thread;
- **wake-ups**: after its queue empties the thread polls for ``POLL_FOR_S`` before it sleeps until woken,
  so a job handed over in a busy spell costs the caller an append, not a wake-up (``POLL_S``);
- **hand-over**: a caller that finds the thread behind (wanting the GIL for ``BEHIND_S`` and not getting
  it, as behind a caller that never waits on a socket) sleeps ``HAND_OVER_S`` once to let it in;
- **bounded, and nothing lost**: a call begun while ``max_queued`` jobs wait is metered on its own
  thread from start to end instead (``Meter.faults["metering_inline"]`` counts them); a call begun on the
  worker keeps its later jobs there, so its order holds (the bound is exceeded by at most the calls in
  flight);
- ``flush(timeout)`` waits for the jobs submitted before it (``Meter.flush``; a Prometheus scrape drains
  this way so ``/metrics`` is current);
- **exit, fork, close**: at interpreter exit the queue is drained before the ledger writers close (the
  records it makes must reach them); a forked child starts with an empty queue (the parent's jobs are the
  parent's); ``close`` drains and stops, and a job submitted after it runs on the caller's thread.

Jobs never raise: each one's work is inside a ``Meter.guard``; a job that still raises is logged and the
next one runs.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import weakref
from collections.abc import Callable

from meter import lifecycle

logger = logging.getLogger("meter")

Job = Callable[[], None]

DEFAULT_MAX_QUEUED = 10_000
"""Jobs waiting before new calls are metered on their own thread. A queued job holds its call's bytes and
state: 1.3 to 3 KB measured (``python -m benchmarks --only concurrency``), so at most about 13-30 MB."""


class _Stop:
    """The job that stops the thread (``close``)."""


_STOP = _Stop()


class MeteringWorker:
    """One thread running metering jobs in order (see the module docstring)."""

    def __init__(self, max_queued: int = DEFAULT_MAX_QUEUED, name: str = "meter-metering") -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self.max_queued = max_queued
        self._name = name
        self._closed = False
        self._reset()
        lifecycle.register(self)
        _live.add(self)

    def _reset(self) -> None:
        self._state = _Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        """Makes "still open? then queue it" one step, against ``close``: no job lands behind the stop."""

    @property
    def closed(self) -> bool:
        """``close`` was called: new calls are metered on their own thread."""
        return self._closed

    @property
    def queued(self) -> int:
        """Jobs waiting (the backlog)."""
        return len(self._state.jobs)

    @property
    def accepting(self) -> bool:
        """A new call may be metered here: open, and fewer than ``max_queued`` jobs waiting."""
        return not self._closed and len(self._state.jobs) < self.max_queued

    def submit(self, job: Job) -> bool:
        """Queue ``job``; ``False`` when the worker is closed, or its thread cannot be started (the caller then
        runs it itself)."""
        state = self._state
        with self._lock:
            if self._closed:
                return False
            if self._thread is None:  # started by the first job, never at construction (fork-safe)
                # The thread holds the queue, not the worker: a Meter dropped without close() is freed,
                # and its worker's finaliser then stops the thread (its queue is empty by then: every
                # queued job holds the Meter).
                thread = threading.Thread(target=_serve, args=(state,), name=self._name, daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # "can't start new thread" (a process at its limit): metered inline
                    return False
                # Not at exit: there ``close`` stops it, after the calls ending then are queued.
                weakref.finalize(self, state.put_now, _STOP).atexit = False
                self._thread = thread
                state.due = time.monotonic() + BEHIND_S
            state.jobs.append(job)
        if state.parked:  # asleep without a deadline: only now does a job cost the caller a wake-up
            state.due = time.monotonic() + BEHIND_S
            state.wake.set()
        else:
            now = time.monotonic()
            if now > state.due:  # it wants the interpreter and cannot get it: let it in (``BEHIND_S``)
                state.due = now + POLL_S  # and again a step later, if it did not get in this time
                time.sleep(HAND_OVER_S)
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the jobs submitted before this call have run; ``False`` on timeout.

        Called on the worker's own thread (a sink that flushes), it returns at once: waiting there would
        wait for itself."""
        thread = self._thread
        if thread is None or not thread.is_alive() or threading.current_thread() is thread:
            return True
        done = threading.Event()
        self._state.put_now(done.set)
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Run what is queued, then stop; ``False`` if that took longer than ``timeout``. Again: no-op."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            thread = self._thread
            if thread is None:
                return True
            self._state.put_now(_STOP)
        if threading.current_thread() is thread:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def after_fork_in_child(self) -> None:
        """The parent's queued jobs are the parent's: the child starts with an empty queue and no thread."""
        self._reset()



POLL_S = 0.05
"""How long the worker waits for a job after its queue empties, again and again until ``POLL_FOR_S`` have
passed. Meanwhile a job needs no wake-up: the caller's thread only appends it (a wake-up of a sleeping
thread costs the caller 5-14 µs p50, 17-34 µs p99 on this project's machine), and the worker finds it
within the step (a record is that much later; ``flush`` and a scrape do not wait). One long step, not
short ones first: each step's end makes the worker want the interpreter again (``BEHIND_S``)."""
POLL_FOR_S = 2.0
"""After this long without a job the worker sleeps until woken: an idle process does not wake up."""
BEHIND_S = 0.005
"""How long past its step's end (or since its last job) the worker may go without the interpreter before a
caller hands it over. A caller that never waits on a socket (everything in memory: the peers harness, a
cache) gives the GIL up only for an instant inside the SDK (``os.urandom``, once a call) and takes it
straight back; CPython forces a switch only after 5 ms *without* such a hand-back, so a thread that wants
the GIL never gets it, and costs the caller each hand-back meanwhile: +28 µs a call measured with a thread
that runs nothing at all (``python -m benchmarks --only gil``). So the worker waits off the interpreter
(``POLL_S``), and when it has wanted it for ``BEHIND_S``, the next call it is handed sleeps
``HAND_OVER_S`` (the GIL is free, the worker takes it and runs its queue, up to the 5 ms switch interval):
one call every ``POLL_S`` or so waits for the worker's batch, instead of every call paying the waiting.
A caller that waits on a socket gives the worker the GIL then: it is never behind, and no call sleeps."""
HAND_OVER_S = 0.0001
INF = float("inf")


class _Queue:
    """The jobs, and how the worker is woken: shared by the worker and its thread (not the worker itself)."""

    __slots__ = ("due", "jobs", "parked", "wake")

    def __init__(self) -> None:
        self.jobs: collections.deque[Job | _Stop] = collections.deque()
        self.wake = threading.Event()
        self.parked = False
        """The thread waits for ``wake`` with no deadline (set before it waits, cleared after)."""
        self.due = INF
        """When the thread, if it has not run since, is behind (``BEHIND_S``): a caller then hands it the GIL."""

    def put_now(self, job: Job | _Stop) -> None:
        """Queue ``job`` and wake the thread whatever it is doing (a flush, a stop: someone waits for them)."""
        self.jobs.append(job)
        self.wake.set()


def _serve(state: _Queue) -> None:
    """The worker thread: run the jobs in order until the stop; poll a while when the queue empties, then
    sleep until woken."""
    jobs, wake = state.jobs, state.wake
    pop, clock = jobs.popleft, time.monotonic
    while True:
        try:
            job = pop()
        except IndexError:
            _wait(state, jobs, wake, clock)
            continue
        if isinstance(job, _Stop):
            return
        try:
            job()
        except Exception as exc:  # every job guards its own work; this only keeps the thread alive
            logger.warning("meter: a metering job raised %s: %s", type(exc).__name__, exc, exc_info=exc)
        state.due = clock() + BEHIND_S  # put off the interpreter by a busy caller from now on: behind then


def _wait(state: _Queue, jobs: collections.deque[Job | _Stop], wake: threading.Event,
          clock: Callable[[], float]) -> None:
    """The queue is empty: wait for a job by polling (``POLL_S``), then parked until woken (``POLL_FOR_S``)."""
    idle_since = clock()
    while not jobs:
        now = clock()
        if now - idle_since < POLL_FOR_S:
            state.due = now + POLL_S + BEHIND_S
            wake.wait(POLL_S)
            wake.clear()
            continue
        state.due = INF
        state.parked = True
        if not jobs:  # looked at after ``parked`` is set: a job appended before it was seen is not missed
            wake.wait()
        state.parked = False
        wake.clear()
    state.due = clock() + BEHIND_S


_live: weakref.WeakSet[MeteringWorker] = weakref.WeakSet()


def _drain_at_exit() -> None:
    """At exit, after open calls are finished and before any ledger writer closes: their records reach it."""
    deadline = time.monotonic() + lifecycle.EXIT_TIMEOUT_S / 2
    for worker in list(_live):
        worker.close(max(0.0, deadline - time.monotonic()))


lifecycle.finish_calls_at_exit(_drain_at_exit)
