"""The budgets in Prometheus: gauges read from each budget store's ``status()`` when scraped.

``<ns>_budget_spent_usd``, ``_reserved_usd``, ``_limit_usd`` and ``_forecast_usd`` (labels ``budget``,
``period``, ``enforce``), ``<ns>_budget_alert_threshold_ratio`` (the same labels and ``threshold``: one
series per ``alert_at`` threshold, so an alert rule can compare spend against each) and the counter
``<ns>_budget_refused_total{budget}``. Nothing is written per call: a scrape asks the store once.

One collector per (registry, namespace), registered when the first Meter with budgets appears there;
it holds the Meters' budget gates weakly, so a dropped Meter leaves the exposition. Two live Meters that
share a registry and have a budget of the same name are shown as one series: their spent, reserved and
forecast added up (each Meter's in-process store counts its own calls), the limit of the first.

Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``): a ``/metrics`` served by ``MultiProcessCollector`` reads
only prometheus-client's shared files, so there ``publish`` writes the same families into them instead
(``prometheus_budget_files``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from meter import names
from meter.sinks.prometheus_budget_rows import budget_rows, percent
from meter.sinks.prometheus_rules import multiprocess_mode

if TYPE_CHECKING:
    from meter.budget_gate import BudgetGate
    from meter.sinks.prometheus_budget_files import BudgetFiles

_GAUGES = (names.budget_spent_usd, names.budget_reserved_usd, names.budget_limit_usd, names.budget_forecast_usd)


class BudgetCollector:
    """The budget families of one (registry, namespace), built from the live gates' status at scrape time."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._gates: weakref.WeakSet[BudgetGate] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, gate: BudgetGate) -> None:
        with self._lock:
            self._gates.add(gate)

    def _families(self) -> tuple[list[GaugeMetricFamily], GaugeMetricFamily, CounterMetricFamily]:
        ns = self.namespace
        gauges = [GaugeMetricFamily(family(ns), names.HELP[family], labels=names.BUDGET_LABELS) for family in _GAUGES]
        thresholds = GaugeMetricFamily(names.budget_alert_threshold_ratio(ns),
                                       names.HELP[names.budget_alert_threshold_ratio],
                                       labels=(*names.BUDGET_LABELS, names.BUDGET_THRESHOLD_LABEL))
        refused = CounterMetricFamily(names.budget_refused_total(ns), names.HELP[names.budget_refused_total],
                                      labels=names.BUDGET_REFUSED_LABELS)
        return gauges, thresholds, refused

    def describe(self) -> Iterator[Metric]:
        """The families without samples: the registry checks their names against the others' at once."""
        gauges, thresholds, refused = self._families()
        yield from (*gauges, thresholds, refused)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            gates = list(self._gates)
        rows, alert_at = budget_rows(gates)
        refusals: dict[str, int] = {}
        for gate in gates:
            for budget in gate.budgets:  # a hard budget's counter exists at 0 from the first scrape, so
                if budget.hard:           # increase() counts its first refusals (a series born at 2 reads 0)
                    refusals.setdefault(budget.name, 0)
            for name, count in gate.refused().items():
                refusals[name] = refusals.get(name, 0) + count
        gauges, thresholds, refused = self._families()
        for labels, values in rows.items():
            for gauge, value in zip(gauges, values, strict=True):
                gauge.add_metric(labels, float(value))
            for fraction in alert_at[labels]:
                thresholds.add_metric((*labels, percent(fraction)), float(fraction))
        for name, count in refusals.items():
            refused.add_metric((name,), count)
        yield from (*gauges, thresholds, refused)


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, BudgetCollector]] = weakref.WeakKeyDictionary()
_collectors_lock = threading.Lock()


def publish(gate: BudgetGate, registry: CollectorRegistry, namespace: str) -> BudgetCollector | BudgetFiles:
    """Show ``gate``'s budgets in ``registry`` under ``namespace`` (the collector made and registered once); in
    multiprocess mode, in prometheus-client's shared files instead (``prometheus_budget_files``)."""
    if multiprocess_mode():
        from meter.sinks.prometheus_budget_files import publish_files

        return publish_files(gate, registry, namespace)
    with _collectors_lock:
        per_namespace = _collectors.setdefault(registry, {})
        collector = per_namespace.get(namespace)
        if collector is None:
            collector = BudgetCollector(namespace)
            try:
                registry.register(collector)
            except ValueError as exc:
                raise ValueError(f"meter's budget metrics '{namespace}_budget_*' clash with metrics already in "
                                 f"this registry ({exc}); pass Meter(namespace=...) or another registry") from exc
            per_namespace[namespace] = collector
    collector.add(gate)
    return collector
