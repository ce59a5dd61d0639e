"""PromQL building blocks: every metric name comes from :mod:`meter.names`, never from a literal.

Dashboard expressions use Grafana's macros (``$__rate_interval``, ``$__range``) and template
variables (``$deployment``, ``$model``, ``$team``); :func:`substitute_macros` turns them into plain
PromQL so tests (and promtool) can evaluate the exact text the dashboards ship.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from meter import names

NS = names.DEFAULT_NAMESPACE

# -- metric names (all derived from meter.names) ------------------------------------------------------
REQUESTS = names.requests_total(NS)
INPUT_TOKENS = names.input_tokens_total(NS)
CACHED_INPUT_TOKENS = names.cached_input_tokens_total(NS)
CACHE_WRITE_INPUT_TOKENS = names.cache_write_input_tokens_total(NS)
OUTPUT_TOKENS = names.output_tokens_total(NS)
REASONING_OUTPUT_TOKENS = names.reasoning_output_tokens_total(NS)
COST_USD = names.cost_usd_total(NS)
UNPRICED_REQUESTS = names.unpriced_requests_total(NS)
ESTIMATED_REQUESTS = names.estimated_requests_total(NS)
ESTIMATED_INPUT_TOKENS = names.estimated_input_tokens_total(NS)
ESTIMATED_OUTPUT_TOKENS = names.estimated_output_tokens_total(NS)
ESTIMATED_COST_USD = names.estimated_cost_usd_total(NS)
DURATION = names.request_duration_seconds(NS)
TTFT = names.time_to_first_token_seconds(NS)
DURATION_BUCKET = f"{DURATION}_bucket"
DURATION_SUM = f"{DURATION}_sum"
DURATION_COUNT = f"{DURATION}_count"
TTFT_BUCKET = f"{TTFT}_bucket"
RATELIMIT_REMAINING_TOKENS = names.ratelimit_remaining_tokens(NS)
RATELIMIT_REMAINING_REQUESTS = names.ratelimit_remaining_requests(NS)
RATELIMIT_LIMIT_TOKENS = names.ratelimit_limit_tokens(NS)
RATELIMIT_LIMIT_REQUESTS = names.ratelimit_limit_requests(NS)
METERING_FAULTS = names.metering_faults_total(NS)
LABEL_OVERFLOW = names.label_overflow_total(NS)

MONTHLY_BUDGET = f"{NS}:monthly_budget_usd"
"""Recording rule holding the monthly budget in USD (written into alerts.yml by the generator)."""

SECONDS_PER_MONTH = 30 * 86400
"""A budget "month" is 30 days, the usual burn-rate convention."""

EXEMPLAR_TRACE_ID_LABEL = names.EXEMPLAR_TRACE_ID
"""The exemplar label meter's Prometheus sink writes (meter/sinks/prometheus.py); Grafana links it to Jaeger."""

ALL_METRICS: tuple[str, ...] = (
    REQUESTS, INPUT_TOKENS, CACHED_INPUT_TOKENS, CACHE_WRITE_INPUT_TOKENS, OUTPUT_TOKENS, REASONING_OUTPUT_TOKENS,
    COST_USD, UNPRICED_REQUESTS, ESTIMATED_REQUESTS, ESTIMATED_INPUT_TOKENS, ESTIMATED_OUTPUT_TOKENS,
    ESTIMATED_COST_USD, DURATION_BUCKET, DURATION_SUM, DURATION_COUNT, TTFT_BUCKET,
    RATELIMIT_REMAINING_TOKENS, RATELIMIT_REMAINING_REQUESTS, RATELIMIT_LIMIT_TOKENS, RATELIMIT_LIMIT_REQUESTS,
    METERING_FAULTS, LABEL_OVERFLOW,
)
"""Every series name a dashboard or rule may reference (tests check expressions use only these)."""

# -- Grafana variables ---------------------------------------------------------------------------------
RATE = "$__rate_interval"
RANGE = "$__range"
FILTER: tuple[str, ...] = ('deployment=~"$deployment"', 'model=~"$model"', 'team=~"$team"')
"""Matchers for the dashboard variables (their "All" value is ``.*``, which also matches a missing label)."""
DEPLOYMENT_FILTER: tuple[str, ...] = ('deployment=~"$deployment"',)
"""For the rate-limit gauges, which carry only ``deployment`` and ``provider``."""

ERROR = 'error_type!=""'
THROTTLED = 'error_type="429"'
NOT_THROTTLED = 'error_type!="429"'
ABORTED = 'outcome="aborted"'

MACROS = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$__interval": "15s",
    "$deployment": ".*",
    "$model": ".*",
    "$team": ".*",
}


def substitute_macros(expr: str, macros: dict[str, str] | None = None) -> str:
    """Plain PromQL from a dashboard expression (longest macro first, ``${x}`` and ``$x`` forms)."""
    table = macros if macros is not None else MACROS
    for macro in sorted(table, key=len, reverse=True):
        expr = expr.replace("${" + macro[1:] + "}", table[macro]).replace(macro, table[macro])
    return expr


_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metrics_in(expr: str) -> set[str]:
    """The series names an expression references (identifiers that name one of :data:`ALL_METRICS` or
    look like ``<namespace>_...``/``<namespace>:...``), for the tests that map queries to metrics."""
    found = set()
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    for token in _IDENT.findall(without_strings):
        if token in ALL_METRICS or token == MONTHLY_BUDGET or token.startswith((f"{NS}_", f"{NS}:")):
            found.add(token)
    return found


# -- builders -----------------------------------------------------------------------------------------


def sel(metric: str, *matchers: str, filters: Sequence[str] = FILTER) -> str:
    """``metric{filters..., matchers...}``."""
    parts = [*filters, *matchers]
    return f"{metric}{{{', '.join(parts)}}}" if parts else metric


def rate(selector: str, window: str = RATE) -> str:
    return f"rate({selector}[{window}])"


def increase(selector: str, window: str = RANGE) -> str:
    return f"increase({selector}[{window}])"


def sum_by(labels: Iterable[str], expr: str) -> str:
    by = ", ".join(labels)
    return f"sum by ({by}) ({expr})" if by else f"sum({expr})"


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


def budget_burn_rate(window: str) -> str:
    """Spend over ``window`` as a multiple of the rate that exactly uses the monthly budget in 30 days."""
    return f"{sum_by((), rate(COST_USD, window))} / on () ({MONTHLY_BUDGET} / {SECONDS_PER_MONTH})"


def headroom(remaining: str, limit: str, filters: Sequence[str] = DEPLOYMENT_FILTER) -> str:
    """Smallest remaining/limit fraction per deployment, ignoring unknown (negative) and zero limits."""
    return f"min by (deployment) (({sel(remaining, filters=filters)} >= 0) / ({sel(limit, filters=filters)} > 0))"


def totals_queries() -> dict[str, str]:
    """Raw counter sums (no ``increase``): what the demo's ``--json`` totals must equal."""
    return {
        "requests": f"sum({REQUESTS})",
        "input_tokens": f"sum({INPUT_TOKENS})",
        "cached_input_tokens": f"sum({CACHED_INPUT_TOKENS})",
        "output_tokens": f"sum({OUTPUT_TOKENS})",
        "reasoning_output_tokens": f"sum({REASONING_OUTPUT_TOKENS})",
        "cost_usd": f"sum({COST_USD})",
        "unpriced": f"sum({UNPRICED_REQUESTS})",
        "estimated": f"sum({ESTIMATED_REQUESTS})",
        "estimated_input_tokens": f"sum({ESTIMATED_INPUT_TOKENS})",
        "estimated_output_tokens": f"sum({ESTIMATED_OUTPUT_TOKENS})",
        "estimated_cost_usd": f"sum({ESTIMATED_COST_USD})",
    }
