"""Prometheus metrics (prometheus-client), with trace exemplars.

One counter family per token kind, so ``sum()`` over any of them is
meaningful and nothing is double counted (cached tokens are a subset of input
tokens: they get their own family, not a ``type`` label beside input). Cost is
``<ns>_cost_usd_total``: the unit is in the name, never in a label.

Several ``Meter``s may share one registry: the metrics of one (registry,
namespace) live in one store, created once and shared. Labels whose values come
from users (deployment, model, attribution tags, error types) are guarded: past
``max_label_values`` distinct values a label reads ``other``, and the overflow
is counted, so a stray tag cannot blow up the series count.

Two stores, one exposition. In a single process the store is a collector that
adds each call into plain per-label-set values under one lock and builds the
metric families when scraped (``prometheus_aggregate``): a call costs a few
additions, not a dozen validated ``inc()``s. Under a process manager's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) values must go through
prometheus-client's own metrics, which write them to shared files
(``prometheus_multiprocess``; no exemplars there, the files cannot hold them).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from prometheus_client import REGISTRY, CollectorRegistry

from meter import names
from meter.core.record import CallRecord
from meter.core.start import CallStart

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


class Increments(NamedTuple):
    """What one record adds to the metrics: the rule both stores (and the OTel sink) follow.

    The token and cost counters hold only usage the service reported; estimates go
    to their own counters, and a provisional estimate (its real usage may still come)
    to none, so no total ever holds an id twice.
    """

    tokens: tuple[int, int, int, int, int] | None
    """input, cached input, cache write, output, reasoning output."""
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
        tokens = (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_input_tokens,
                  usage.output_tokens, usage.reasoning_output_tokens)
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


_shared: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Store]] = weakref.WeakKeyDictionary()
"""Stores per live registry and namespace. Weak keys: a registry that is gone takes its store with it,
and a new registry never inherits a dead one's (``id()`` keys were reused by new objects)."""
_shared_lock = threading.Lock()


def _new_store(registry: CollectorRegistry | None, ns: str, extra_labels: tuple[str, ...],
               max_label_values: int) -> Store:
    if multiprocess_mode():
        from meter.sinks.prometheus_multiprocess import MultiprocessStore

        return MultiprocessStore(registry, ns, extra_labels, max_label_values)
    from meter.sinks.prometheus_aggregate import AggregateStore

    return AggregateStore(registry, ns, extra_labels, max_label_values)


def store_for(registry: CollectorRegistry | None, ns: str, extra_labels: tuple[str, ...],
              max_label_values: int) -> Store:
    """The store of ``(registry, ns)``, made on first use; a clash with the registry is a clear error."""
    if registry is None:  # registered nowhere: nothing to share, each sink has its own
        return _new_store(None, ns, extra_labels, max_label_values)
    with _shared_lock:
        per_namespace = _shared.setdefault(registry, {})
        store = per_namespace.get(ns)
        if store is None:
            try:
                store = per_namespace[ns] = _new_store(registry, ns, extra_labels, max_label_values)
            except ValueError as exc:  # prometheus-client: "Duplicated timeseries in CollectorRegistry"
                raise ValueError(f"meter's Prometheus metrics '{ns}_*' clash with metrics already in this "
                                 f"registry ({exc}); pass Meter(namespace=...) or another registry") from exc
        elif store.extra_labels != extra_labels:
            raise ValueError(
                f"the Prometheus metrics '{ns}_*' on this registry were created with attribution labels "
                f"{list(store.extra_labels)}; a Meter with labels {list(extra_labels)} cannot share them "
                f"(use the same label_keys, another namespace or another registry)")
        return store


class PrometheusSink:
    """Counters, histograms and rate-limit gauges for every record."""

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        namespace: str = names.DEFAULT_NAMESPACE,
        label_keys: tuple[str, ...] = (),
        max_label_values: int = 100,
    ) -> None:
        self.label_keys = label_keys
        self._store = store_for(registry, namespace, label_keys, max_label_values)
        self.exemplars = not multiprocess_mode()  # multiprocess mode cannot store exemplars

    def start(self, start: CallStart) -> None:
        """No per-call state: everything comes with the record."""

    def fault(self, kind: str) -> None:
        self._store.fault(kind)

    def finish(self, record: CallRecord, state: Any) -> None:
        guard = self._store.guard
        attributes = record.attributes
        labels = Labels(
            (record.api, guard("deployment", record.deployment or ""), guard("model", record.response_model or ""),
             record.deployment_type or "", record.provider, record.outcome),
            guard("error_type", record.error_type or "") if record.outcome != "ok" else "",
            "true" if record.stream else "false",
            tuple(guard(key, attributes.get(key, "")) for key in self.label_keys) if self.label_keys else (),
        )
        self._store.observe(record, labels, record.trace_id if self.exemplars else None)
