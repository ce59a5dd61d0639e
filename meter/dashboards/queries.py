"""PromQL building blocks: every metric name comes from :mod:`meter.names`, never from a literal.

A ``Queries`` is made for one metric namespace and one set of attribution labels, the
``Meter(namespace=..., label_keys=...)`` of the metrics it will read, so an export for
``namespace="acme_ai", label_keys=("team", "feature")`` queries ``acme_ai_*`` series and
has a ``$team`` and a ``$feature`` variable. ``DEFAULT`` is meter's defaults (``llm``,
``team``): what the committed files under dashboards/ are generated for.

Dashboard expressions use Grafana's macros (``$__rate_interval``, ``$__range``) and template
variables (``$deployment``, ``$model``, one per label key); :meth:`Queries.substitute_macros`
turns them into plain PromQL so tests (and promtool) can evaluate the exact text the dashboards ship.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from meter import names

SECONDS_PER_MONTH = 30 * 86400
"""A budget "month" is 30 days, the usual burn-rate convention."""

EXEMPLAR_TRACE_ID_LABEL = names.EXEMPLAR_TRACE_ID
"""The exemplar label meter's Prometheus sink writes (meter/sinks/prometheus.py); Grafana links it to Jaeger."""

RATE = "$__rate_interval"
RANGE = "$__range"
ERROR = 'error_type!=""'
THROTTLED = 'error_type="429"'
NOT_THROTTLED = 'error_type!="429"'
ABORTED = 'outcome="aborted"'
DEPLOYMENT_FILTER: tuple[str, ...] = ('deployment=~"$deployment"',)
"""For the rate-limit gauges, which carry only ``deployment`` and ``provider``."""

_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RESERVED = frozenset({"api", "deployment", "model", "deployment_type", "provider", "outcome", "error_type",
                       "stream", "le", "label", "kind"})


def sum_by(labels: Iterable[str], expr: str) -> str:
    by = ", ".join(labels)
    return f"sum by ({by}) ({expr})" if by else f"sum({expr})"


def rate(selector: str, window: str = RATE) -> str:
    return f"rate({selector}[{window}])"


def increase(selector: str, window: str = RANGE) -> str:
    return f"increase({selector}[{window}])"


def ratio_or_zero(numerator: str, denominator: str, by: Sequence[str]) -> str:
    """``numerator / denominator`` per ``by`` group, 0 (not missing) where the numerator has no series.

    Both arguments are inner expressions (e.g. ``rate(...)``); each is summed by ``by``.
    """
    num, den = sum_by(by, numerator), sum_by(by, denominator)
    return f"({num} or {den} * 0) / {den}"


def quantile(q: float, bucket_selector: str, by: Sequence[str] = (), window: str = RATE) -> str:
    return f"histogram_quantile({q}, {sum_by(('le', *by), rate(bucket_selector, window))})"


def per_hour(expr: str) -> str:
    return f"{expr} * 3600"


def check_label_keys(label_keys: Sequence[str]) -> tuple[str, ...]:
    """Attribution labels as Prometheus label names; a clear ``ValueError`` for one that cannot be."""
    keys = tuple(label_keys)
    for key in keys:
        if not _LABEL.fullmatch(key) or key.startswith("__"):
            raise ValueError(f"label key {key!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        if key in _RESERVED:
            raise ValueError(f"label key {key!r} clashes with a label meter's metrics already carry")
    if len(set(keys)) != len(keys):
        raise ValueError(f"label keys repeat: {list(keys)}")
    return keys


class Queries:
    """The series names and query builders for one namespace and set of attribution labels.

    The builders that do not depend on either are the module's, reachable here too, so a board
    reads everything from one ``q``.
    """

    RATE, RANGE = RATE, RANGE
    ERROR, THROTTLED, NOT_THROTTLED, ABORTED = ERROR, THROTTLED, NOT_THROTTLED, ABORTED
    DEPLOYMENT_FILTER = DEPLOYMENT_FILTER
    SECONDS_PER_MONTH = SECONDS_PER_MONTH
    EXEMPLAR_TRACE_ID_LABEL = EXEMPLAR_TRACE_ID_LABEL
    sum_by = staticmethod(sum_by)
    rate = staticmethod(rate)
    increase = staticmethod(increase)
    ratio_or_zero = staticmethod(ratio_or_zero)
    quantile = staticmethod(quantile)
    per_hour = staticmethod(per_hour)

    def __init__(self, namespace: str = names.DEFAULT_NAMESPACE, label_keys: Sequence[str] = ("team",)) -> None:
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", namespace):
            raise ValueError(f"namespace {namespace!r} is not a Prometheus metric name prefix ([a-zA-Z_][a-zA-Z0-9_]*)")
        ns = self.NS = namespace
        self.label_keys = check_label_keys(label_keys)
        """Attribution labels (``Meter(label_keys=...)``): one dashboard variable each; the first is the
        breakdown the "by team" panels use (none: those panels are left out)."""
        self.REQUESTS = names.requests_total(ns)
        self.USAGE = {kind.name: names.usage_total(ns, kind.name) for kind in names.PROMETHEUS_USAGE_KINDS}
        """The counter of each usage kind the catalogue counts in Prometheus (``meter.core.usage_kinds``)."""
        self.TOOL_CALLS = {kind.name: self.USAGE[kind.name] for kind in names.PROMETHEUS_USAGE_KINDS
                           if kind.counted_from == "output"}
        """The built-in tool counters (web search, file search, code interpreter sessions, ...), by usage kind."""
        self.INPUT_TOKENS = self.USAGE["input_tokens"]
        self.CACHED_INPUT_TOKENS = self.USAGE["cached_input_tokens"]
        self.CACHE_WRITE_INPUT_TOKENS = self.USAGE["cache_write_input_tokens"]
        self.OUTPUT_TOKENS = self.USAGE["output_tokens"]
        self.REASONING_OUTPUT_TOKENS = self.USAGE["reasoning_output_tokens"]
        self.COST_USD = names.cost_usd_total(ns)
        self.UNPRICED_REQUESTS = names.unpriced_requests_total(ns)
        self.ESTIMATED_REQUESTS = names.estimated_requests_total(ns)
        self.ESTIMATED_INPUT_TOKENS = names.estimated_input_tokens_total(ns)
        self.ESTIMATED_OUTPUT_TOKENS = names.estimated_output_tokens_total(ns)
        self.ESTIMATED_COST_USD = names.estimated_cost_usd_total(ns)
        self.DURATION = names.request_duration_seconds(ns)
        self.TTFT = names.time_to_first_token_seconds(ns)
        self.DURATION_BUCKET = f"{self.DURATION}_bucket"
        self.DURATION_SUM = f"{self.DURATION}_sum"
        self.DURATION_COUNT = f"{self.DURATION}_count"
        self.TTFT_BUCKET = f"{self.TTFT}_bucket"
        self.RATELIMIT_REMAINING_TOKENS = names.ratelimit_remaining_tokens(ns)
        self.RATELIMIT_REMAINING_REQUESTS = names.ratelimit_remaining_requests(ns)
        self.RATELIMIT_LIMIT_TOKENS = names.ratelimit_limit_tokens(ns)
        self.RATELIMIT_LIMIT_REQUESTS = names.ratelimit_limit_requests(ns)
        self.METERING_FAULTS = names.metering_faults_total(ns)
        self.LABEL_OVERFLOW = names.label_overflow_total(ns)
        self.BUDGET_SPENT = names.budget_spent_usd(ns)
        self.BUDGET_RESERVED = names.budget_reserved_usd(ns)
        self.BUDGET_LIMIT = names.budget_limit_usd(ns)
        self.BUDGET_FORECAST = names.budget_forecast_usd(ns)
        self.BUDGET_ALERT_AT = names.budget_alert_threshold_ratio(ns)
        self.BUDGET_REFUSED = names.budget_refused_total(ns)
        self.MONTHLY_BUDGET = f"{ns}:monthly_budget_usd"
        """Recording rule holding the monthly budget in USD (written into alerts.yml by the generator)."""
        self.ALL_METRICS: tuple[str, ...] = (
            self.REQUESTS, *self.USAGE.values(), self.COST_USD, self.UNPRICED_REQUESTS,
            self.ESTIMATED_REQUESTS, self.ESTIMATED_INPUT_TOKENS, self.ESTIMATED_OUTPUT_TOKENS,
            self.ESTIMATED_COST_USD, self.DURATION_BUCKET, self.DURATION_SUM, self.DURATION_COUNT, self.TTFT_BUCKET,
            self.RATELIMIT_REMAINING_TOKENS, self.RATELIMIT_REMAINING_REQUESTS, self.RATELIMIT_LIMIT_TOKENS,
            self.RATELIMIT_LIMIT_REQUESTS, self.METERING_FAULTS, self.LABEL_OVERFLOW,
            self.BUDGET_SPENT, self.BUDGET_RESERVED, self.BUDGET_LIMIT, self.BUDGET_FORECAST, self.BUDGET_ALERT_AT,
            self.BUDGET_REFUSED,
        )
        """Every series name a dashboard or rule may reference (tests check expressions use only these)."""
        self.FILTER: tuple[str, ...] = ('deployment=~"$deployment"', 'model=~"$model"',
                                        *(f'{key}=~"${key}"' for key in self.label_keys))
        """Matchers for the dashboard variables (their "All" value is ``.*``, which also matches a missing label)."""
        self.MACROS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s", "$deployment": ".*",
                       "$model": ".*", **{f"${key}": ".*" for key in self.label_keys}}

    @property
    def attribution(self) -> str | None:
        """The label the "by team" panels and the label-overflow alert test use: the first label key."""
        return self.label_keys[0] if self.label_keys else None

    def substitute_macros(self, expr: str, macros: dict[str, str] | None = None) -> str:
        """Plain PromQL from a dashboard expression (longest macro first, ``${x}`` and ``$x`` forms)."""
        table = macros if macros is not None else self.MACROS
        for macro in sorted(table, key=len, reverse=True):
            expr = expr.replace("${" + macro[1:] + "}", table[macro]).replace(macro, table[macro])
        return expr

    def metrics_in(self, expr: str) -> set[str]:
        """The series names an expression references (identifiers that name one of :attr:`ALL_METRICS` or
        look like ``<namespace>_...``/``<namespace>:...``), for the tests that map queries to metrics."""
        found = set()
        without_strings = re.sub(r'"[^"]*"', '""', expr)
        for token in _IDENT.findall(without_strings):
            if token in self.ALL_METRICS or token == self.MONTHLY_BUDGET or token.startswith(
                    (f"{self.NS}_", f"{self.NS}:")):
                found.add(token)
        return found

    def sel(self, metric: str, *matchers: str, filters: Sequence[str] | None = None) -> str:
        """``metric{filters..., matchers...}`` (filters default to every dashboard variable)."""
        parts = [*(self.FILTER if filters is None else filters), *matchers]
        return f"{metric}{{{', '.join(parts)}}}" if parts else metric

    def by_tool(self, inner: str) -> str:
        """One vector of every built-in tool counter, each series labelled ``tool`` with its kind in words
        ("web search calls", "code interpreter sessions"), summed by tool. ``inner`` is ``rate(...)`` or
        ``increase(...)`` with ``{}`` where the selector goes (``"rate({}[$__rate_interval])"``)."""
        parts = [f'label_replace({inner.format(self.sel(metric))}, "tool", "{kind.replace("_", " ")}", "", "")'
                 for kind, metric in self.TOOL_CALLS.items()]
        return sum_by(("tool",), " or ".join(parts))

    def budget_burn_rate(self, window: str) -> str:
        """Spend over ``window`` as a multiple of the rate that exactly uses the monthly budget in 30 days."""
        return f"{sum_by((), rate(self.COST_USD, window))} / on () ({self.MONTHLY_BUDGET} / {SECONDS_PER_MONTH})"

    def headroom(self, remaining: str, limit: str, filters: Sequence[str] = DEPLOYMENT_FILTER) -> str:
        """Smallest remaining/limit fraction per deployment, ignoring unknown (negative) and zero limits."""
        return (f"min by (deployment) (({self.sel(remaining, filters=filters)} >= 0) / "
                f"({self.sel(limit, filters=filters)} > 0))")

    def totals_queries(self) -> dict[str, str]:
        """Raw counter sums (no ``increase``): what the demo's ``--json`` totals must equal."""
        return {
            "requests": f"sum({self.REQUESTS})",
            **{kind.name: f"sum({self.USAGE[kind.name]})" for kind in names.PROMETHEUS_USAGE_KINDS if kind.report},
            "cost_usd": f"sum({self.COST_USD})",
            "unpriced": f"sum({self.UNPRICED_REQUESTS})",
            "estimated": f"sum({self.ESTIMATED_REQUESTS})",
            "estimated_input_tokens": f"sum({self.ESTIMATED_INPUT_TOKENS})",
            "estimated_output_tokens": f"sum({self.ESTIMATED_OUTPUT_TOKENS})",
            "estimated_cost_usd": f"sum({self.ESTIMATED_COST_USD})",
        }


DEFAULT = Queries()
"""meter's defaults (namespace ``llm``, label key ``team``): the committed dashboards/ files."""
