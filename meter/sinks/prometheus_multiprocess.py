"""The multiprocess Prometheus store: prometheus-client's own metrics, which write to shared files.

Under a process manager with ``PROMETHEUS_MULTIPROC_DIR`` set, every worker's
values must reach the files that ``/metrics`` aggregates, and only
prometheus-client's metric objects write them. Labelled children are bound once
per label set and reused (``labels(...)`` validates and locks on each call).
The files cannot hold exemplars: each worker keeps its latest ones in a file of
its own beside them (``prometheus_exemplars``), which ``/metrics`` merges. The
rate-limit gauges keep the most recent value any worker wrote.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.utils import floatToGoString

from meter import names
from meter.core.record import CallRecord
from meter.sinks.prometheus_exemplars import Ex, ExemplarFile, Slot, exemplar_file
from meter.sinks.prometheus_rules import MULTIPROC_ENV, PROMETHEUS_KINDS, Increments, LabelGuard, Labels, increments


class MultiprocessStore:
    """The metric families of one (registry, namespace) as prometheus-client metrics."""

    def __init__(self, registry: CollectorRegistry | None, ns: str, extra_labels: tuple[str, ...],
                 max_label_values: int) -> None:
        self.ns = ns
        self.extra_labels = extra_labels
        directory = os.environ.get(MULTIPROC_ENV)
        self.exemplars: ExemplarFile | None = exemplar_file(directory) if directory else None
        self.bounds = tuple(float(b) for b in names.PROMETHEUS_DURATION_BUCKETS)
        base = (*names.BASE_LABELS, *extra_labels)
        buckets = names.PROMETHEUS_DURATION_BUCKETS
        live: Literal["mostrecent"] = "mostrecent"

        def counter(name: str, doc: str, labels: tuple[str, ...] = base) -> Counter:
            return Counter(name, doc, labels, registry=None)

        self.requests = counter(names.requests_total(ns), names.HELP[names.requests_total],
                                (*names.REQUEST_LABELS, *extra_labels))
        self.tokens = tuple(counter(names.usage_total(ns, kind.name), kind.help) for kind in PROMETHEUS_KINDS)
        self.cost = counter(names.cost_usd_total(ns), names.HELP[names.cost_usd_total])
        self.unpriced = counter(names.unpriced_requests_total(ns),
                                names.HELP[names.unpriced_requests_total])
        self.estimated = counter(names.estimated_requests_total(ns),
                                 names.HELP[names.estimated_requests_total])
        self.estimated_input_tokens = counter(names.estimated_input_tokens_total(ns),
                                              names.HELP[names.estimated_input_tokens_total])
        self.estimated_output_tokens = counter(names.estimated_output_tokens_total(ns),
                                               names.HELP[names.estimated_output_tokens_total])
        self.estimated_cost = counter(names.estimated_cost_usd_total(ns),
                                      names.HELP[names.estimated_cost_usd_total])
        self.duration = Histogram(names.request_duration_seconds(ns), names.HELP[names.request_duration_seconds],
                                  (*names.BASE_LABELS, "stream", *extra_labels), buckets=buckets, registry=None)
        self.ttft = Histogram(names.time_to_first_token_seconds(ns), names.HELP[names.time_to_first_token_seconds],
                              base, buckets=buckets, registry=None)
        rl = names.RATELIMIT_LABELS
        self.ratelimits = tuple(
            Gauge(family(ns), names.HELP[family], rl, registry=None, multiprocess_mode=live)
            for family in (names.ratelimit_remaining_tokens, names.ratelimit_remaining_requests,
                           names.ratelimit_limit_tokens, names.ratelimit_limit_requests))
        self.faults = Counter(names.metering_faults_total(ns), names.HELP[names.metering_faults_total],
                              ("kind",), registry=None)
        overflow = Counter(names.label_overflow_total(ns),
                           names.HELP[names.label_overflow_total], ("label",), registry=None)
        self.guard = LabelGuard(max_label_values, lambda label: overflow.labels(label).inc())
        if registry is not None:
            _register_all(registry, [self.requests, *self.tokens, self.cost, self.unpriced, self.estimated,
                                     self.estimated_input_tokens, self.estimated_output_tokens, self.estimated_cost,
                                     self.duration, self.ttft, *self.ratelimits, self.faults, overflow])
        self._series: dict[Labels, _Series] = {}
        """Bound children per label set (bounded by the label guard)."""

    def observe(self, record: CallRecord, labels: Labels, trace_id: str | None) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = _Series(self, labels)
        inc = increments(record)
        series.requests.inc()
        if inc.tokens is not None:
            for child, amount in zip(series.tokens, inc.tokens, strict=True):
                child.inc(amount)
        if inc.cost is not None:
            series.cost.inc(inc.cost)
        if inc.estimated:
            series.estimated.inc()
        if inc.estimated_tokens is not None:
            series.estimated_input_tokens.inc(inc.estimated_tokens[0])
            series.estimated_output_tokens.inc(inc.estimated_tokens[1])
        if inc.estimated_cost is not None:
            series.estimated_cost.inc(inc.estimated_cost)
        if inc.unpriced:
            series.unpriced.inc()
        series.duration.observe(record.duration_s)
        if record.time_to_first_token_s is not None:
            if series.ttft is None:  # bound on first use: non-streaming label sets never get one
                series.ttft = self.ttft.labels(*labels.base, *labels.extra)
            series.ttft.observe(record.time_to_first_token_s)
        if trace_id is not None and series.exemplars is not None:
            series.exemplars.add(self, record, inc, trace_id)
        azure = record.azure
        for gauge, value in zip(self.ratelimits, (azure.ratelimit_remaining_tokens, azure.ratelimit_remaining_requests,
                                                  azure.ratelimit_limit_tokens, azure.ratelimit_limit_requests),
                                strict=True):
            if value is not None:  # absent or -1 (unknown) leave the gauge alone
                gauge.labels(labels.base[1], record.provider).set(value)

    def fault(self, kind: str) -> None:
        self.faults.labels(kind).inc()


def _register_all(registry: CollectorRegistry, metrics: list[Any]) -> None:
    """Register every family, or none: a clash halfway takes back the ones already registered."""
    done = []
    try:
        for metric in metrics:
            registry.register(metric)
            done.append(metric)
    except ValueError:
        for metric in done:
            registry.unregister(metric)
        raise


class _Series:
    """The labelled children one label set uses, looked up once and then reused."""

    def __init__(self, s: MultiprocessStore, labels: Labels) -> None:
        base, error_type, stream, extra = labels
        values = (*base, *extra)
        self.requests = s.requests.labels(*base, error_type, *extra)
        self.tokens = tuple(family.labels(*values) for family in s.tokens)
        self.cost = s.cost.labels(*values)
        self.unpriced = s.unpriced.labels(*values)
        self.estimated = s.estimated.labels(*values)
        self.estimated_input_tokens = s.estimated_input_tokens.labels(*values)
        self.estimated_output_tokens = s.estimated_output_tokens.labels(*values)
        self.estimated_cost = s.estimated_cost.labels(*values)
        self.duration = s.duration.labels(*base, stream, *extra)
        self.ttft: Any = None
        self.exemplars = _Exemplars(s, s.exemplars, labels) if s.exemplars is not None else None


class _Exemplars:
    """Where one label set's exemplars go: the latest increment of each counter, the latest observation of each
    histogram bucket (the single-process store keeps the same ones), written to this worker's exemplar file."""

    __slots__ = ("cost", "duration", "estimated", "estimated_cost", "estimated_input_tokens",
                 "estimated_output_tokens", "file", "labels", "requests", "tokens", "ttft", "unpriced")

    def __init__(self, s: MultiprocessStore, file: ExemplarFile, labels: Labels) -> None:
        base, error_type, stream, extra = labels
        ns = s.ns
        self.file = file
        self.labels = labels
        usage = dict(zip((*names.BASE_LABELS, *s.extra_labels), (*base, *extra), strict=True))
        self.requests = file.counter(names.requests_total(ns), {**usage, "error_type": error_type})
        self.tokens = tuple(file.counter(names.usage_total(ns, kind.name), usage) for kind in PROMETHEUS_KINDS)
        self.cost = file.counter(names.cost_usd_total(ns), usage)
        self.unpriced = file.counter(names.unpriced_requests_total(ns), usage)
        self.estimated = file.counter(names.estimated_requests_total(ns), usage)
        self.estimated_input_tokens = file.counter(names.estimated_input_tokens_total(ns), usage)
        self.estimated_output_tokens = file.counter(names.estimated_output_tokens_total(ns), usage)
        self.estimated_cost = file.counter(names.estimated_cost_usd_total(ns), usage)
        self.duration = file.histogram(names.request_duration_seconds(ns), {**usage, "stream": stream}, _EDGES)
        self.ttft: list[Ex | None] | None = None

    def add(self, s: MultiprocessStore, record: CallRecord, inc: Increments, trace_id: str) -> None:
        now = time.time()
        self.requests.ex = (trace_id, 1.0, now)
        if inc.tokens is not None:
            for slot, amount in zip(self.tokens, inc.tokens, strict=True):
                if amount:
                    slot.ex = (trace_id, float(amount), now)
        _set(self.cost, inc.cost, trace_id, now)
        if inc.estimated:
            self.estimated.ex = (trace_id, 1.0, now)
        if inc.estimated_tokens is not None:
            _set(self.estimated_input_tokens, inc.estimated_tokens[0], trace_id, now)
            _set(self.estimated_output_tokens, inc.estimated_tokens[1], trace_id, now)
        _set(self.estimated_cost, inc.estimated_cost, trace_id, now)
        if inc.unpriced:
            self.unpriced.ex = (trace_id, 1.0, now)
        bounds = s.bounds
        value = record.duration_s
        self.duration[bisect_left(bounds, value)] = (trace_id, value, now)  # le: the first bound >= value
        ttft = record.time_to_first_token_s
        if ttft is not None:
            if self.ttft is None:
                base, _, _, extra = self.labels
                self.ttft = self.file.histogram(
                    names.time_to_first_token_seconds(s.ns),
                    dict(zip((*names.BASE_LABELS, *s.extra_labels), (*base, *extra), strict=True)), _EDGES)
            self.ttft[bisect_left(bounds, ttft)] = (trace_id, ttft, now)
        self.file.touched()


def _set(slot: Slot, amount: float | None, trace_id: str, now: float) -> None:
    if amount:  # an increment of 0 (or none) is no exemplar, as in the single-process store
        slot.ex = (trace_id, float(amount), now)


_EDGES: tuple[str, ...] = (*(str(floatToGoString(float(b)))  # type: ignore[no-untyped-call]
                             for b in names.PROMETHEUS_DURATION_BUCKETS), "+Inf")
"""The ``le`` texts prometheus-client writes for the buckets (``0.01``, ``1.28``, ``+Inf``)."""
