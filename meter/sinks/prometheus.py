"""Prometheus metrics (prometheus-client), with trace exemplars.

One counter family per token kind, so ``sum()`` over any of them is
meaningful and nothing is double counted (cached tokens are a subset of input
tokens: they get their own family, not a ``type`` label beside input). Cost is
``<ns>_cost_usd_total``: the unit is in the name, never in a label.

Several ``Meter``s may share one registry: the metric families are created
once per (registry, namespace) and shared. Labels whose values come from users
(deployment, model, attribution tags, error types) are guarded: past
``max_label_values`` distinct values a label reads ``other``, and the overflow
is counted, so a stray tag cannot blow up the series count.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from meter import names
from meter.core.call import Call
from meter.core.record import CallRecord

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    """prometheus-client's multiprocess mode is on (set by the process manager's shell)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class _LabelGuard:
    """Bounds the distinct values of each guarded label; the rest read ``other``."""

    def __init__(self, max_values: int, overflow: Counter) -> None:
        self.max_values = max_values
        self._seen: dict[str, set[str]] = {}
        self._overflow = overflow
        self._lock = threading.Lock()

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
        self._overflow.labels(label).inc()
        return names.OTHER


class _Families:
    """The metric families of one (registry, namespace): created once, shared by every sink."""

    def __init__(self, registry: CollectorRegistry | None, ns: str, extra_labels: tuple[str, ...],
                 max_label_values: int) -> None:
        self.extra_labels = extra_labels
        base = (*names.BASE_LABELS, *extra_labels)
        requests = (*names.REQUEST_LABELS, *extra_labels)
        buckets = names.PROMETHEUS_DURATION_BUCKETS
        live: Literal["mostrecent"] = "mostrecent"

        def counter(name: str, doc: str, labels: tuple[str, ...] = base) -> Counter:
            return Counter(name, doc, labels, registry=None)

        self.requests = counter(names.requests_total(ns), "Metered LLM calls (HTTP attempts), by outcome", requests)
        self.input_tokens = counter(names.input_tokens_total(ns),
                                    "Input tokens, all of them (cached and cache-write tokens included)")
        self.cached_input_tokens = counter(names.cached_input_tokens_total(ns),
                                           "Input tokens read from the prompt cache (a subset of input tokens)")
        self.cache_write_input_tokens = counter(names.cache_write_input_tokens_total(ns),
                                                "Input tokens written to the prompt cache (a subset of input tokens)")
        self.output_tokens = counter(names.output_tokens_total(ns), "Output tokens (reasoning tokens included)")
        self.reasoning_output_tokens = counter(names.reasoning_output_tokens_total(ns),
                                               "Reasoning tokens (a subset of output tokens)")
        self.cost = counter(names.cost_usd_total(ns), "Cost of metered calls in US dollars, at the price table")
        self.unpriced = counter(names.unpriced_requests_total(ns),
                                "Calls with usage that could not be priced (unknown model or price)")
        self.estimated = counter(names.estimated_requests_total(ns),
                                 "Calls whose usage was estimated because the service reported none")
        self.estimated_input_tokens = counter(names.estimated_input_tokens_total(ns),
                                              "Estimated input tokens of calls whose usage the service did not "
                                              "report (never in the input token counter)")
        self.estimated_output_tokens = counter(names.estimated_output_tokens_total(ns),
                                               "Estimated output tokens (never in the output token counter)")
        self.estimated_cost = counter(names.estimated_cost_usd_total(ns),
                                      "Cost in US dollars of estimated usage (never in the cost counter)")
        self.duration = Histogram(names.request_duration_seconds(ns), "Duration of metered calls, to the last byte",
                                  (*names.BASE_LABELS, "stream", *extra_labels), buckets=buckets, registry=None)
        self.ttft = Histogram(names.time_to_first_token_seconds(ns), "Time to the first output token of streams",
                              base, buckets=buckets, registry=None)
        rl = names.RATELIMIT_LABELS
        self.remaining_tokens = Gauge(names.ratelimit_remaining_tokens(ns), "Azure x-ratelimit-remaining-tokens",
                                      rl, registry=None, multiprocess_mode=live)
        self.remaining_requests = Gauge(names.ratelimit_remaining_requests(ns),
                                        "Azure x-ratelimit-remaining-requests", rl, registry=None,
                                        multiprocess_mode=live)
        self.limit_tokens = Gauge(names.ratelimit_limit_tokens(ns), "Azure x-ratelimit-limit-tokens", rl,
                                  registry=None, multiprocess_mode=live)
        self.limit_requests = Gauge(names.ratelimit_limit_requests(ns), "Azure x-ratelimit-limit-requests", rl,
                                    registry=None, multiprocess_mode=live)
        self.faults = Counter(names.metering_faults_total(ns), "Faults inside metering (the calls were unaffected)",
                              ("kind",), registry=None)
        overflow = Counter(names.label_overflow_total(ns),
                           "Label values folded into 'other' by the cardinality guard", ("label",), registry=None)
        self.guard = _LabelGuard(max_label_values, overflow)
        if registry is not None:
            _register_all(registry, [value for value in vars(self).values()
                                     if isinstance(value, Counter | Gauge | Histogram)] + [overflow])
        self.series: dict[tuple[Any, ...], _Series] = {}
        """Bound children per label set (bounded by the label guard)."""


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


_shared: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, _Families]] = weakref.WeakKeyDictionary()
"""Families per live registry and namespace. Weak keys: a registry that is gone takes its families
with it, and a new registry never inherits a dead one's (``id()`` keys were reused by new objects)."""
_shared_lock = threading.Lock()


def _families(registry: CollectorRegistry | None, ns: str, extra_labels: tuple[str, ...],
              max_label_values: int) -> _Families:
    if registry is None:  # registered nowhere: nothing to share, each sink has its own
        return _Families(None, ns, extra_labels, max_label_values)
    with _shared_lock:
        per_namespace = _shared.setdefault(registry, {})
        families = per_namespace.get(ns)
        if families is None:
            try:
                families = per_namespace[ns] = _Families(registry, ns, extra_labels, max_label_values)
            except ValueError as exc:  # prometheus-client: "Duplicated timeseries in CollectorRegistry"
                raise ValueError(f"meter's Prometheus metrics '{ns}_*' clash with metrics already in this "
                                 f"registry ({exc}); pass Meter(namespace=...) or another registry") from exc
        elif families.extra_labels != extra_labels:
            raise ValueError(
                f"the Prometheus metrics '{ns}_*' on this registry were created with attribution labels "
                f"{list(families.extra_labels)}; a Meter with labels {list(extra_labels)} cannot share them "
                f"(use the same label_keys, another namespace or another registry)")
        return families


def _current_trace_id() -> str | None:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


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
        self._f = _families(registry, namespace, label_keys, max_label_values)
        self.exemplars = not multiprocess_mode()  # multiprocess mode cannot store exemplars

    def start(self, call: Call) -> None:
        if call.trace_id is None and self.exemplars:
            call.trace_id = _current_trace_id()  # no meter span: link to the caller's own trace

    def fault(self, kind: str) -> None:
        self._f.faults.labels(kind).inc()

    def finish(self, record: CallRecord, call: Call) -> None:
        f = self._f
        guard = f.guard
        deployment = guard("deployment", record.deployment or "")
        model = guard("model", record.response_model or "")
        extra = tuple(guard(key, record.attributes.get(key, "")) for key in self.label_keys)
        error_type = guard("error_type", record.error_type or "") if record.outcome != "ok" else ""
        base = (record.api, deployment, model, record.deployment_type or "", record.provider, record.outcome)
        key = (base, error_type, record.stream, extra)
        series = f.series.get(key)
        if series is None:
            series = f.series[key] = _Series(f, base, error_type, record.stream, extra)
        exemplar = {names.EXEMPLAR_TRACE_ID: record.trace_id} if record.trace_id and self.exemplars else None

        series.requests.inc(1, exemplar)
        usage = record.usage
        cost = record.cost
        # One rule, shared with the OTel sink: the token and cost counters hold only usage the
        # service reported; estimates go to their own counters, and a provisional estimate (its
        # real usage may still come) to none, so no total ever holds an id twice.
        if usage is not None and record.usage_source == "estimated":
            series.estimated.inc(1, exemplar)
            if not record.provisional:
                _add(series.estimated_input_tokens, usage.input_tokens, exemplar)
                _add(series.estimated_output_tokens, usage.output_tokens, exemplar)
                if cost is not None and cost.total is not None:
                    series.estimated_cost.inc(float(cost.total), exemplar)
        elif usage is not None:
            _add(series.input_tokens, usage.input_tokens, exemplar)
            _add(series.cached_input_tokens, usage.cached_input_tokens, exemplar)
            _add(series.cache_write_input_tokens, usage.cache_write_input_tokens, exemplar)
            _add(series.output_tokens, usage.output_tokens, exemplar)
            _add(series.reasoning_output_tokens, usage.reasoning_output_tokens, exemplar)
            if cost is not None and cost.total is not None:
                # Decimal in the record; Prometheus samples are float64 (about 15 significant digits).
                series.cost.inc(float(cost.total), exemplar)
        if cost is not None and cost.total is None:
            series.unpriced.inc(1, exemplar)
        series.duration.observe(record.duration_s, exemplar)
        if record.time_to_first_token_s is not None:
            if series.ttft is None:  # bound on first use: non-streaming label sets never get one
                series.ttft = f.ttft.labels(*base, *extra)
            series.ttft.observe(record.time_to_first_token_s, exemplar)
        self._ratelimits(record, deployment)

    def _ratelimits(self, record: CallRecord, deployment: str) -> None:
        """Azure's headroom headers per deployment; absent or ``-1`` (unknown) leave the gauge alone."""
        azure = record.azure
        f = self._f
        for gauge, value in ((f.remaining_tokens, azure.ratelimit_remaining_tokens),
                             (f.remaining_requests, azure.ratelimit_remaining_requests),
                             (f.limit_tokens, azure.ratelimit_limit_tokens),
                             (f.limit_requests, azure.ratelimit_limit_requests)):
            if value is not None:
                gauge.labels(deployment, record.provider).set(value)


def _add(child: Any, amount: int, exemplar: dict[str, str] | None) -> None:
    child.inc(amount, exemplar if amount else None)


class _Series:
    """The labelled children one label set uses, looked up once and then reused.

    ``Counter.labels(...)`` validates and locks on every call; a call's record
    touches a dozen families with the same labels, so they are bound together.
    The label guard bounds how many of these exist.
    """

    def __init__(self, f: _Families, base: tuple[str, ...], error_type: str, stream: bool,
                 extra: tuple[str, ...]) -> None:
        labels = (*base, *extra)
        self.requests = f.requests.labels(*base, error_type, *extra)
        self.input_tokens = f.input_tokens.labels(*labels)
        self.cached_input_tokens = f.cached_input_tokens.labels(*labels)
        self.cache_write_input_tokens = f.cache_write_input_tokens.labels(*labels)
        self.output_tokens = f.output_tokens.labels(*labels)
        self.reasoning_output_tokens = f.reasoning_output_tokens.labels(*labels)
        self.estimated = f.estimated.labels(*labels)
        self.estimated_input_tokens = f.estimated_input_tokens.labels(*labels)
        self.estimated_output_tokens = f.estimated_output_tokens.labels(*labels)
        self.estimated_cost = f.estimated_cost.labels(*labels)
        self.unpriced = f.unpriced.labels(*labels)
        self.cost = f.cost.labels(*labels)
        self.duration = f.duration.labels(*base, "true" if stream else "false", *extra)
        self.ttft: Any = None
