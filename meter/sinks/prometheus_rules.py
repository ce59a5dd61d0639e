"""What the Prometheus stores share: the label guard, the labels of a record and what it adds.

Both stores (``prometheus_aggregate`` for one process, ``prometheus_multiprocess``
for a process manager's multiprocess mode) and the sink that feeds them follow
the same rule, so it lives here, below all three: the sink picks a store, the
stores never import the sink.
"""

from __future__ import annotations

import operator
import os
import threading
from collections.abc import Callable
from typing import NamedTuple, Protocol

from meter import names
from meter.core.record import CallRecord

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    """prometheus-client's multiprocess mode is on (set by the process manager's shell)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class LabelGuard:
    """Bounds the distinct values of each guarded label; the rest read ``other`` (and are counted)."""

    def __init__(self, max_values: int, on_overflow: Callable[[str], None] | None = None) -> None:
        self.max_values = max_values
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.overflow: dict[str, int] = {}
        """Values folded into ``other``, per label."""
        self._on_overflow = on_overflow

    def __call__(self, label: str, value: str) -> str:
        seen = self._seen.get(label)
        if seen is not None and value in seen:
            return value
        with self._lock:
            seen = self._seen.setdefault(label, set())
            if value in seen:
                return value
            if len(seen) < self.max_values:
                seen.add(value)
                return value
            self.overflow[label] = self.overflow.get(label, 0) + 1
        if self._on_overflow is not None:
            self._on_overflow(label)
        return names.OTHER


PROMETHEUS_KINDS = names.PROMETHEUS_USAGE_KINDS
_prometheus_counts = operator.attrgetter(*(kind.name for kind in PROMETHEUS_KINDS))


class Increments(NamedTuple):
    """What one record adds to the metrics: the rule both stores (and the OTel sink) follow.

    The token and cost counters hold only usage the service reported; estimates go
    to their own counters, and a provisional estimate (its real usage may still come)
    to none, so no total ever holds an id twice.
    """

    tokens: tuple[int, ...] | None
    """One count per kind of ``PROMETHEUS_KINDS``, in its order."""
    cost: float | None
    estimated: bool
    estimated_tokens: tuple[int, int] | None
    estimated_cost: float | None
    unpriced: bool


def increments(record: CallRecord) -> Increments:
    usage = record.usage
    cost = record.cost
    total = None if cost is None or cost.total is None else float(cost.total)  # float64 in Prometheus
    if usage is not None and record.usage_source == "estimated":
        counted = not record.provisional
        return Increments(None, None, True, (usage.input_tokens, usage.output_tokens) if counted else None,
                          total if counted else None, cost is not None and cost.total is None)
    tokens = None
    if usage is not None:
        tokens = _prometheus_counts(usage)
    return Increments(tokens, total, False, None, None, cost is not None and cost.total is None)


class Labels(NamedTuple):
    """The guarded label values of one record."""

    base: tuple[str, ...]
    """api, deployment, model, deployment type, provider, outcome."""
    error_type: str
    stream: str
    extra: tuple[str, ...]
    """Attribution labels (``Meter(label_keys=...)``), in order."""


class Store(Protocol):
    """Where a (registry, namespace)'s values are kept; shared by every sink on it."""

    extra_labels: tuple[str, ...]
    guard: LabelGuard

    def observe(self, record: CallRecord, labels: Labels, trace_id: str | None) -> None: ...

    def fault(self, kind: str) -> None: ...
