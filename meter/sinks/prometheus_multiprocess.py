"""The multiprocess Prometheus store: prometheus-client's own metrics, which write to shared files.

Under a process manager with ``PROMETHEUS_MULTIPROC_DIR`` set, every worker's
values must reach the files that ``/metrics`` aggregates, and only
prometheus-client's metric objects write them. Labelled children are bound once
per label set and reused (``labels(...)`` validates and locks on each call).
The files cannot hold exemplars, so none are written; the rate-limit gauges
keep the most recent value any worker wrote.
"""

from __future__ import annotations

from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from meter import names
from meter.core.record import CallRecord
from meter.sinks.prometheus_rules import PROMETHEUS_KINDS, LabelGuard, Labels, increments


class MultiprocessStore:
    """The metric families of one (registry, namespace) as prometheus-client metrics."""

    def __init__(self, registry: CollectorRegistry | None, ns: str, extra_labels: tuple[str, ...],
                 max_label_values: int) -> None:
        self.extra_labels = extra_labels
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
