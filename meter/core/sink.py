"""``Sink[S]``: what meter hands every call to, at its start and at its end. Write your own.

A sink is told when a call starts (``start``, with the immutable ``CallStart``) and returns its own
state for that call, of whatever type ``S`` it likes (``None`` if it keeps none); when the call is
finished it gets the one final ``CallRecord`` and that state back. It never sees the call itself, and
nothing it does reaches the caller: a sink that raises is counted as a metering fault (``sink_start``
or ``sink``), logged once, and the call and the other sinks go on. ``fault`` tells it of every fault
meter counts, by kind, for sinks that export them. meter's own outputs (OpenTelemetry spans and
metrics, Prometheus, the ledger, OTel events) are sinks like any other.

Sinks run inline on the thread that finished the call (the caller's, or the event loop for async
clients): keep them quick, and hand slow work to a thread of your own.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from meter.core.faults import FaultKind
from meter.core.record import CallRecord
from meter.core.start import CallStart

S = TypeVar("S")


class Sink(Protocol[S]):
    """A sink whose per-call state is of type ``S`` (see the module docstring)."""

    def start(self, start: CallStart) -> S: ...

    def finish(self, record: CallRecord, state: S) -> None: ...

    def fault(self, kind: FaultKind) -> None: ...
