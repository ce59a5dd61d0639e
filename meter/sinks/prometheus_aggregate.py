"""The single-process Prometheus store: plain per-label-set values, turned into metrics when scraped.

prometheus-client's ``Counter.labels(...).inc(amount, exemplar)`` validates the
exemplar and takes a lock on every call; a record touches a dozen values, so
that was most of the sink's time. Here a record takes one lock and does a few
additions (and one bucket search per histogram); ``collect`` builds the same
families prometheus-client would (``_total`` and ``_created`` samples, cumulative
``_bucket``s with ``le``, exemplars on the latest increment of each value), so
the exposition and every query are unchanged. Registered as one collector. Like
prometheus-client, it leaves the ``_created`` samples out when
``PROMETHEUS_DISABLE_CREATED_SERIES`` is true or ``disable_created_metrics()`` was called.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import metrics as client_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

from meter import names
from meter.core.record import CallRecord
from meter.sinks.prometheus_rules import PROMETHEUS_KINDS, LabelGuard, Labels, increments
from meter.sinks.scrape_drain import drain

_Ex = tuple[str, float, float] | None
"""An exemplar as kept: (trace id, value, unix time)."""


class _Counter:
    __slots__ = ("created", "exemplar", "value")

    def __init__(self, now: float) -> None:
        self.value = 0.0
        self.created = now
        self.exemplar: _Ex = None


class _Histogram:
    __slots__ = ("counts", "created", "exemplars", "sum")

    def __init__(self, buckets: int, now: float) -> None:
        self.counts = [0] * (buckets + 1)  # the last one is +Inf
        self.sum = 0.0
        self.created = now
        self.exemplars: list[_Ex] = [None] * (buckets + 1)

    def observe(self, value: float, bounds: tuple[float, ...], trace_id: str | None, now: float) -> None:
        i = bisect_left(bounds, value)  # le: the first bound >= value
        self.counts[i] += 1
        self.sum += value
        if trace_id is not None:
            self.exemplars[i] = (trace_id, value, now)


_TOKEN_FAMILIES = tuple(kind.name for kind in PROMETHEUS_KINDS)


class _Usage:
    """Every counter of one (base, extra) label set, but the requests counter (which has error_type)."""

    __slots__ = ("cost", "estimated", "estimated_cost", "estimated_input_tokens", "estimated_output_tokens",
                 "tokens", "unpriced")

    def __init__(self, now: float) -> None:
        self.tokens = [_Counter(now) for _ in _TOKEN_FAMILIES]
        self.cost = _Counter(now)
        self.unpriced = _Counter(now)
        self.estimated = _Counter(now)
        self.estimated_input_tokens = _Counter(now)
        self.estimated_output_tokens = _Counter(now)
        self.estimated_cost = _Counter(now)


def _add(counter: _Counter, amount: float, trace_id: str | None, now: float) -> None:
    counter.value += amount
    if trace_id is not None and amount:
        counter.exemplar = (trace_id, amount, now)


class AggregateStore:
    """One (registry, namespace)'s metric values, exposed by ``collect`` (a prometheus-client collector)."""

    def __init__(self, registry: CollectorRegistry | None, ns: str, extra_labels: tuple[str, ...],
                 max_label_values: int) -> None:
        self.ns = ns
        self.extra_labels = extra_labels
        self.guard = LabelGuard(max_label_values)
        self._lock = threading.Lock()
        self._bounds = tuple(float(b) for b in names.PROMETHEUS_DURATION_BUCKETS)
        self._requests: dict[tuple[tuple[str, ...], str, tuple[str, ...]], _Counter] = {}
        self._usage: dict[tuple[tuple[str, ...], tuple[str, ...]], _Usage] = {}
        self._duration: dict[tuple[tuple[str, ...], str, tuple[str, ...]], _Histogram] = {}
        self._ttft: dict[tuple[tuple[str, ...], tuple[str, ...]], _Histogram] = {}
        self._ratelimits: dict[tuple[str, str], list[float | None]] = {}
        self._faults: dict[str, _Counter] = {}
        if registry is not None:
            registry.register(self)

    # -- the hot path: one lock, a few additions --------------------------------------------------

    def observe(self, record: CallRecord, labels: Labels, trace_id: str | None) -> None:
        inc = increments(record)
        base, error_type, stream, extra = labels
        now = time.time()
        bounds = self._bounds
        with self._lock:
            key = (base, error_type, extra)
            requests = self._requests.get(key)
            if requests is None:
                requests = self._requests[key] = _Counter(now)
            _add(requests, 1, trace_id, now)
            ukey = (base, extra)
            usage = self._usage.get(ukey)
            if usage is None:
                usage = self._usage[ukey] = _Usage(now)
            if inc.tokens is not None:
                for counter, amount in zip(usage.tokens, inc.tokens, strict=True):
                    if amount:  # most kinds are 0 on most calls (audio, tools, units): nothing to add
                        _add(counter, amount, trace_id, now)
            if inc.cost is not None:
                _add(usage.cost, inc.cost, trace_id, now)
            if inc.estimated:
                _add(usage.estimated, 1, trace_id, now)
            if inc.estimated_tokens is not None:
                _add(usage.estimated_input_tokens, inc.estimated_tokens[0], trace_id, now)
                _add(usage.estimated_output_tokens, inc.estimated_tokens[1], trace_id, now)
            if inc.estimated_cost is not None:
                _add(usage.estimated_cost, inc.estimated_cost, trace_id, now)
            if inc.unpriced:
                _add(usage.unpriced, 1, trace_id, now)
            dkey = (base, stream, extra)
            duration = self._duration.get(dkey)
            if duration is None:
                duration = self._duration[dkey] = _Histogram(len(bounds), now)
            duration.observe(record.duration_s, bounds, trace_id, now)
            if record.time_to_first_token_s is not None:
                ttft = self._ttft.get(ukey)
                if ttft is None:
                    ttft = self._ttft[ukey] = _Histogram(len(bounds), now)
                ttft.observe(record.time_to_first_token_s, bounds, trace_id, now)
            azure = record.azure
            limits = (azure.ratelimit_remaining_tokens, azure.ratelimit_remaining_requests,
                      azure.ratelimit_limit_tokens, azure.ratelimit_limit_requests)
            if limits != (None, None, None, None):  # absent or -1 (unknown) leave a gauge alone
                rkey = (base[1], record.provider)
                gauges = self._ratelimits.setdefault(rkey, [None, None, None, None])
                for i, value in enumerate(limits):
                    if value is not None:
                        gauges[i] = float(value)

    def fault(self, kind: str) -> None:
        now = time.time()
        with self._lock:
            counter = self._faults.get(kind)
            if counter is None:
                counter = self._faults[kind] = _Counter(now)
            counter.value += 1

    # -- scrape time ---------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        drain(self)  # the calls that have ended, still on a metering worker, first
        ns = self.ns
        base_names = (*names.BASE_LABELS, *self.extra_labels)
        with self._lock:  # a consistent copy; the families are built outside the lock
            requests = [(k, _snap(c)) for k, c in self._requests.items()]
            usage = [(k, [_snap(c) for c in u.tokens],
                      [_snap(c) for c in (u.cost, u.unpriced, u.estimated, u.estimated_input_tokens,
                                          u.estimated_output_tokens, u.estimated_cost)])
                     for k, u in self._usage.items()]
            duration = [(k, _hsnap(h)) for k, h in self._duration.items()]
            ttft = [(k, _hsnap(h)) for k, h in self._ttft.items()]
            ratelimits = [(k, list(v)) for k, v in self._ratelimits.items()]
            faults = [(k, _snap(c)) for k, c in self._faults.items()]
            overflow = dict(self.guard.overflow)
        family = _counter(names.requests_total(ns), names.HELP[names.requests_total],
                          (*names.REQUEST_LABELS, *self.extra_labels))
        for (base, error_type, extra), snap in requests:
            _sample(family, (*base, error_type, *extra), snap)
        yield family
        docs = [(names.usage_total(ns, kind.name), kind.help) for kind in PROMETHEUS_KINDS]
        for i, (name, doc) in enumerate(docs):
            family = _counter(name, doc, base_names)
            for (base, extra), tokens, _ in usage:
                _sample(family, (*base, *extra), tokens[i])
            yield family
        others = (
            (names.cost_usd_total(ns), names.HELP[names.cost_usd_total]),
            (names.unpriced_requests_total(ns), names.HELP[names.unpriced_requests_total]),
            (names.estimated_requests_total(ns), names.HELP[names.estimated_requests_total]),
            (names.estimated_input_tokens_total(ns), names.HELP[names.estimated_input_tokens_total]),
            (names.estimated_output_tokens_total(ns), names.HELP[names.estimated_output_tokens_total]),
            (names.estimated_cost_usd_total(ns), names.HELP[names.estimated_cost_usd_total]),
        )
        for i, (name, doc) in enumerate(others):
            family = _counter(name, doc, base_names)
            for (base, extra), _, rest in usage:  # a series exists once its label set is seen, as bound children did
                _sample(family, (*base, *extra), rest[i])
            yield family
        bounds = self._bounds
        yield _histogram(names.request_duration_seconds(ns), names.HELP[names.request_duration_seconds],
                         (*names.BASE_LABELS, "stream", *self.extra_labels), bounds,
                         [((*base, stream, *extra), h) for (base, stream, extra), h in duration])
        yield _histogram(names.time_to_first_token_seconds(ns), names.HELP[names.time_to_first_token_seconds],
                         base_names, bounds, [((*base, *extra), h) for (base, extra), h in ttft])
        gauges = (
            (names.ratelimit_remaining_tokens(ns), names.HELP[names.ratelimit_remaining_tokens]),
            (names.ratelimit_remaining_requests(ns), names.HELP[names.ratelimit_remaining_requests]),
            (names.ratelimit_limit_tokens(ns), names.HELP[names.ratelimit_limit_tokens]),
            (names.ratelimit_limit_requests(ns), names.HELP[names.ratelimit_limit_requests]),
        )
        for i, (name, doc) in enumerate(gauges):
            gauge = GaugeMetricFamily(name, doc, labels=names.RATELIMIT_LABELS)
            for key, values in ratelimits:
                value = values[i]
                if value is not None:
                    gauge.add_metric(list(key), value)
            yield gauge
        family = _counter(names.metering_faults_total(ns), names.HELP[names.metering_faults_total],
                          ("kind",))
        for kind, snap in faults:
            _sample(family, (kind,), snap)
        yield family
        family = _counter(names.label_overflow_total(ns),
                          names.HELP[names.label_overflow_total], ("label",))
        for label, count in overflow.items():
            family.add_metric([label], float(count))
        yield family

    def describe(self) -> list[Metric]:
        """Nothing up front: ``registry.register`` then learns the names from ``collect`` (and refuses clashes)."""
        return list(self.collect())


_Snap = tuple[float, float, _Ex]


def _snap(counter: _Counter) -> _Snap:
    return counter.value, counter.created, counter.exemplar


def _hsnap(h: _Histogram) -> tuple[list[int], float, float, list[_Ex]]:
    return list(h.counts), h.sum, h.created, list(h.exemplars)


def _counter(name: str, doc: str, labels: tuple[str, ...]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


def _exemplar(ex: _Ex) -> Exemplar | None:
    if ex is None:
        return None
    return Exemplar({names.EXEMPLAR_TRACE_ID: ex[0]}, ex[1], ex[2])


def _created_series() -> bool:
    """prometheus-client's own switch (the environment variable, or ``disable_created_metrics()``), read at
    each scrape as its metrics do."""
    return bool(getattr(client_metrics, "_use_created", True))


def _sample(family: CounterMetricFamily, values: tuple[str, ...], snap: _Snap) -> None:
    value, created, ex = snap
    family.add_metric(list(values), value, created=created if _created_series() else None, exemplar=_exemplar(ex))


def _histogram(name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...],
               series: list[tuple[tuple[str, ...], tuple[list[int], float, float, list[_Ex]]]]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=labels)
    edges = [*(_float_text(b) for b in bounds), "+Inf"]
    created_series = _created_series()
    for values, (counts, total, created, exemplars) in series:
        cumulative = 0
        buckets: list[Any] = []
        for edge, count, ex in zip(edges, counts, exemplars, strict=True):
            cumulative += count
            exemplar = _exemplar(ex)
            buckets.append((edge, float(cumulative), exemplar) if exemplar is not None else (edge, float(cumulative)))
        family.add_metric(list(values), buckets, total)
        if created_series:
            family.samples.append(Sample(family.name + "_created", dict(zip(labels, values, strict=True)), created,
                                         None, None))
    return family


def _float_text(value: float) -> str:
    """A bucket bound as prometheus-client writes it (``0.01``, ``1.28``, ``163.84``)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text
