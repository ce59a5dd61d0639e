"""What the Prometheus stores share: the label guard, the labels of a record and what it adds.

Both stores (``prometheus_aggregate`` for one process, ``prometheus_multiprocess``
for a process manager's multiprocess mode) and the sink that feeds them follow
the same rule, so it lives here, below all three: the sink picks a store, the
stores never import the sink.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import NamedTuple, Protocol

from meter import names
from meter.core.record import CallRecord
from meter.sinks.increments import PROMETHEUS_KINDS, Increments, increments

__all__ = ["MULTIPROC_ENV", "PROMETHEUS_KINDS", "Increments", "LabelGuard", "Labels", "Store", "increments",
           "multiprocess_mode"]

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
