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
(``prometheus_multiprocess``); those cannot hold exemplars, so each worker keeps
its latest ones in a file of its own beside them (``prometheus_exemplars``), and
``meter.serve`` merges both at scrape.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from meter import names
from meter.core.record import CallRecord
from meter.core.start import CallStart
from meter.sinks.prometheus_rules import MULTIPROC_ENV, LabelGuard, Labels, Store, multiprocess_mode
from meter.sinks.scrape_drain import Flush, drain_before_scrape

__all__ = ["MULTIPROC_ENV", "LabelGuard", "Labels", "PrometheusSink", "Store", "multiprocess_mode", "store_for"]

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
        drain: Flush | None = None,
    ) -> None:
        self.label_keys = label_keys
        self._store = store_for(registry, namespace, label_keys, max_label_values)
        if drain is not None:  # a Meter's metering worker: flushed before each scrape of this store
            drain_before_scrape(self._store, drain)

    def start(self, start: CallStart) -> None:
        """No per-call state: everything comes with the record."""

    def fault(self, kind: str) -> None:
        self._store.fault(kind)

    def finish(self, record: CallRecord, state: Any) -> None:
        guard = self._store.guard
        attributes = record.attributes
        labels = Labels(
            (record.api, guard("deployment", record.deployment_label), guard("model", record.model_label),
             record.deployment_type or "", record.provider, record.outcome),
            guard("error_type", record.error_type or "") if record.outcome != "ok" else "",
            "true" if record.stream else "false",
            tuple(guard(key, attributes.get(key, "")) for key in self.label_keys) if self.label_keys else (),
        )
        self._store.observe(record, labels, record.trace_id)
