"""The budgets in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``): written into prometheus-client's shared files.

A ``/metrics`` served by ``MultiProcessCollector`` reads only those files, so a collector asked at scrape
time (``prometheus_budgets``, one process) never reaches it. Here each worker writes the same families
through prometheus-client's own metrics, with the ``multiprocess_mode`` that merges the workers' values
into what one process would show:

- with a shared store (``Meter(ledger=...)``) spent, reserved, limit and forecast are the database's
  figures (reserved: every live worker's lease, added up by the database; a dead worker's lease expires),
  the same in every worker: ``livemostrecent``, the value the latest refresh wrote;
- with each worker's in-process store (no ledger), each knows only its own calls: spent, reserved and
  forecast are ``livesum``, added over the live workers as two Meters on one registry are added;
- the limit and the ``alert_at`` thresholds are configuration: ``livemostrecent``;
- ``<ns>_budget_refused_total`` is a Counter each worker adds its refusals to when it refuses (a hard
  budget's series exists at 0 from the start, so ``increase()`` counts the first refusals).

"live": a worker the process manager marks dead (``multiprocess.mark_process_dead``) leaves the gauges.
A store's ``status()`` reads the database, so it is never asked on a call's path: a thread refreshes the
gauges soon after calls settle or are refused (at most every ``REFRESH_S``) and every ``IDLE_S`` without
calls (the other workers' spend, a new period). It starts with the first call, never at construction (a
Meter made before ``fork`` has no thread to lose; a forked worker starts its own).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from meter import lifecycle, names
from meter.sinks.prometheus_budget_rows import budget_rows, percent
from meter.sinks.prometheus_rules import MULTIPROC_ENV

if TYPE_CHECKING:
    from meter.budget_gate import BudgetGate

logger = logging.getLogger("meter")

REFRESH_S = 1.0
"""At most one refresh a second while calls settle (the shared store's heartbeat writes spend as often)."""
IDLE_S = 10.0
"""A refresh this often without calls: the spend other workers wrote, a period that began."""

Mode = Literal["livemostrecent", "livesum"]


class BudgetFiles:
    """The budget families of one (registry, namespace) in the multiprocess files, refreshed by a thread."""

    def __init__(self, registry: CollectorRegistry, namespace: str, shared: bool) -> None:
        ns = namespace
        spend: Mode = "livemostrecent" if shared else "livesum"
        config: Mode = "livemostrecent"

        def gauge(family: str, help_text: str, mode: Mode, labels: tuple[str, ...] = names.BUDGET_LABELS) -> Gauge:
            return Gauge(family, help_text, labels, registry=None, multiprocess_mode=mode)

        self.gauges = (gauge(names.budget_spent_usd(ns), names.HELP[names.budget_spent_usd], spend),
                       gauge(names.budget_reserved_usd(ns), names.HELP[names.budget_reserved_usd], spend),
                       gauge(names.budget_limit_usd(ns), names.HELP[names.budget_limit_usd], config),
                       gauge(names.budget_forecast_usd(ns), names.HELP[names.budget_forecast_usd], spend))
        """``[spent, reserved, limit, forecast]``, in the order of ``budget_rows``."""
        self.thresholds = gauge(names.budget_alert_threshold_ratio(ns), names.HELP[names.budget_alert_threshold_ratio],
                                config, (*names.BUDGET_LABELS, names.BUDGET_THRESHOLD_LABEL))
        self.refused = Counter(names.budget_refused_total(ns), names.HELP[names.budget_refused_total],
                               names.BUDGET_REFUSED_LABELS, registry=None)
        done: list[Gauge | Counter] = []
        try:  # every family, or none
            for metric in (*self.gauges, self.thresholds, self.refused):
                registry.register(metric)
                done.append(metric)
        except ValueError as exc:
            for metric in done:
                registry.unregister(metric)
            raise ValueError(f"meter's budget metrics '{namespace}_budget_*' clash with metrics already in "
                             f"this registry ({exc}); pass Meter(namespace=...) or another registry") from exc
        self._gates: weakref.WeakSet[BudgetGate] = weakref.WeakSet()
        self._warned = False
        self._fresh()
        lifecycle.register(self)

    def _fresh(self) -> None:
        """A thread's state as a new process has it (also in a forked child: the parent's thread is not there)."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, gate: BudgetGate) -> None:
        """Write ``gate``'s budgets now, and again as its calls settle; count its refusals."""
        with self._lock:
            self._gates.add(gate)
        for budget in gate.budgets:
            if budget.hard:
                self.refused.labels(budget.name)  # the series at 0 in the files from now on
        gate.on_refused.append(self._count_refusal)
        gate.on_settled.append(self._soon)
        self.refresh()

    def _count_refusal(self, budget: str) -> None:
        self.refused.labels(budget).inc()
        self._soon()  # a worker whose every call is refused still shows what the others spent

    def _soon(self) -> None:
        """A call settled or was refused: refresh soon (the thread, started here on first use)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._run, name="meter-budget-files", daemon=True)
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(IDLE_S)
            if self._stop.is_set():
                return
            self._wake.clear()
            self.refresh()
            self._stop.wait(REFRESH_S)

    def refresh(self) -> None:
        """Write every live gate's budgets from its store's ``status()``; a failure is logged once, never raised."""
        try:
            with self._lock:
                gates = list(self._gates)
            rows, alert_at = budget_rows(gates)  # a shared store reads its database: not under the lock
            for key, values in rows.items():
                for family, value in zip(self.gauges, values, strict=True):
                    family.labels(*key).set(float(value))
                for fraction in alert_at[key]:
                    self.thresholds.labels(*key, percent(fraction)).set(float(fraction))
        except Exception as exc:
            if not self._warned:
                self._warned = True
                logger.warning("meter: the budget gauges could not be written to %s (%s: %s)",
                               os.environ.get(MULTIPROC_ENV), type(exc).__name__, exc)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the thread (exit, tests); the files keep the last values written."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def after_fork_in_child(self) -> None:
        self._fresh()


_files: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, BudgetFiles]] = weakref.WeakKeyDictionary()
_files_lock = threading.Lock()


def publish_files(gate: BudgetGate, registry: CollectorRegistry, namespace: str) -> BudgetFiles:
    """Write ``gate``'s budgets into the multiprocess files under ``namespace`` (the families made once per
    registry and namespace; their modes follow the first gate's store: shared or in-process)."""
    with _files_lock:
        per_namespace = _files.setdefault(registry, {})
        files = per_namespace.get(namespace)
        if files is None:
            files = per_namespace[namespace] = BudgetFiles(registry, namespace, gate.shared)
    files.add(gate)
    return files
