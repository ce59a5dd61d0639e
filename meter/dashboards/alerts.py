"""Prometheus alert rules for meter's metrics, and their ``promtool test rules`` cases.

Every alert is ``<signal> <threshold>`` (or two signals joined by ``and`` for multi-window burn
rates). The signals are kept separately (:attr:`Alert.signals`) so the integration test can check
they return data from a real workload even when nothing fires.

The monthly budget is a recording rule (``llm:monthly_budget_usd``) whose value the generator takes
(``python -m meter.dashboards.generate --monthly-budget-usd 5000``); burn-rate alerts compare spend against
``budget / 30 days``: page at 14.4x over 1h confirmed over 5m (2% of the month's budget in an hour),
ticket at 6x over 6h confirmed over 30m (5% in six hours).

meter's own budgets (``Meter(budgets=...)``, docs/budgets.md) have two alerts of their own, read from the
budget gauges: ``LLMBudgetThresholdReached`` fires once per ``alert_at`` threshold a budget's spend has
reached (one series per threshold: ``<ns>_budget_alert_threshold_ratio``), ``LLMBudgetForecastOverLimit``
when the spend forecast to the end of the period at the current burn is over the limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from meter.dashboards.queries import DEFAULT, Queries

GROUP = "meter-llm"


@dataclass(frozen=True)
class Settings:
    """The alert thresholds; every one is a generator parameter, documented in docs/dashboards.md."""

    monthly_budget_usd: float = 1000.0
    page_burn_rate: float = 14.4
    ticket_burn_rate: float = 6.0
    error_ratio: float = 0.05
    error_min_calls: int = 10
    throttle_ratio: float = 0.02
    headroom: float = 0.10


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    signals: tuple[str, ...]
    severity: str
    summary: str
    description: str
    dashboard: str
    for_: str = "0m"
    labels: dict[str, str] = field(default_factory=dict)


def _fmt(value: float) -> str:
    return f"{value:g}"


def alerts(settings: Settings | None = None, q: Queries = DEFAULT) -> list[Alert]:
    s = settings or Settings()
    burn_1h, burn_5m = q.budget_burn_rate("1h"), q.budget_burn_rate("5m")
    burn_6h, burn_30m = q.budget_burn_rate("6h"), q.budget_burn_rate("30m")
    page, ticket = _fmt(s.page_burn_rate), _fmt(s.ticket_burn_rate)

    calls_10m = q.sum_by(("deployment",), q.increase(q.REQUESTS, "10m"))
    errors = q.sel(q.REQUESTS, q.ERROR, q.NOT_THROTTLED, filters=())
    error_ratio = q.ratio_or_zero(q.rate(errors, "10m"), q.rate(q.REQUESTS, "10m"), ("deployment",))
    throttle_ratio = q.ratio_or_zero(q.rate(q.sel(q.REQUESTS, q.THROTTLED, filters=()), "10m"),
                                     q.rate(q.REQUESTS, "10m"), ("deployment",))
    token_headroom = q.headroom(q.RATELIMIT_REMAINING_TOKENS, q.RATELIMIT_LIMIT_TOKENS, filters=())
    request_headroom = q.headroom(q.RATELIMIT_REMAINING_REQUESTS, q.RATELIMIT_LIMIT_REQUESTS, filters=())
    unpriced = q.sum_by(("deployment", "model"), q.increase(q.UNPRICED_REQUESTS, "15m"))
    faults = q.sum_by(("kind",), q.increase(q.METERING_FAULTS, "15m"))
    overflow = q.sum_by(("label",), q.increase(q.LABEL_OVERFLOW, "1h"))
    budget = _fmt(s.monthly_budget_usd)
    used = f"{q.BUDGET_SPENT} / on (budget, period, enforce) {q.BUDGET_LIMIT}"
    threshold_reached = f"({used}) >= on (budget, period, enforce) group_right {q.BUDGET_ALERT_AT}"
    over_forecast = f"{q.BUDGET_FORECAST} > on (budget, period, enforce) {q.BUDGET_LIMIT}"
    return [
        Alert("LLMBudgetFastBurn", f"({burn_1h}) > {page} and ({burn_5m}) > {page}", (burn_1h, burn_5m), "page",
              "LLM spend is burning the monthly budget fast",
              f"Spend over the last hour is {{{{ $value | humanize }}}}x the rate that uses the monthly budget "
              f"(USD {budget}) in 30 days (page threshold {page}x: 2% of the budget in an hour), confirmed over 5m.",
              "meter-cost", "2m"),
        Alert("LLMBudgetSlowBurn", f"({burn_6h}) > {ticket} and ({burn_30m}) > {ticket}", (burn_6h, burn_30m),
              "ticket", "LLM spend is burning the monthly budget too fast",
              f"Spend over the last 6 hours is {{{{ $value | humanize }}}}x the rate that uses the monthly budget "
              f"(USD {budget}) in 30 days (ticket threshold {ticket}x: 5% of the budget in 6 hours), "
              "confirmed over 30m.",
              "meter-cost", "15m"),
        Alert("LLMBudgetThresholdReached", threshold_reached, (used,), "warning",
              "Budget {{ $labels.budget }} reached {{ $labels.threshold }} of its limit",
              "Budget {{ $labels.budget }} ({{ $labels.enforce }}, per {{ $labels.period }}) has spent "
              "{{ $value | humanizePercentage }} of its limit this period (alert_at {{ $labels.threshold }}). "
              "`meter budgets status` shows what is spent and held.",
              "meter-cost"),
        Alert("LLMBudgetForecastOverLimit", over_forecast, (q.BUDGET_FORECAST,), "warning",
              "Budget {{ $labels.budget }} will pass its limit before its period ends",
              "At the burn so far, budget {{ $labels.budget }} ({{ $labels.enforce }}, per {{ $labels.period }}) "
              "will have spent USD {{ $value | humanize }} by the end of its period, more than its limit "
              "(a hard budget then refuses calls).",
              "meter-cost", "15m"),
        Alert("LLMErrorRatioHigh",
              f"({error_ratio}) > {_fmt(s.error_ratio)} and on (deployment) ({calls_10m}) >= {s.error_min_calls}",
              (error_ratio, calls_10m), "warning", "Deployment {{ $labels.deployment }} fails too many calls",
              f"{{{{ $value | humanizePercentage }}}} of calls to {{{{ $labels.deployment }}}} failed over 10m "
              f"(429s excluded: see LLMThrottling; threshold {_fmt(s.error_ratio * 100)}%, "
              f"at least {s.error_min_calls} calls).",
              "meter-errors", "10m"),
        Alert("LLMThrottling", f"({throttle_ratio}) > {_fmt(s.throttle_ratio)}", (throttle_ratio,), "warning",
              "Deployment {{ $labels.deployment }} is throttled (HTTP 429)",
              f"{{{{ $value | humanizePercentage }}}} of calls to {{{{ $labels.deployment }}}} got HTTP 429 over 10m "
              f"(threshold {_fmt(s.throttle_ratio * 100)}%): raise its quota (TPM/RPM) or spread load.",
              "meter-errors", "10m"),
        Alert("LLMRateLimitTokenHeadroomLow", f"{token_headroom} < {_fmt(s.headroom)}", (token_headroom,),
              "warning", "Deployment {{ $labels.deployment }} is close to its token rate limit",
              f"Only {{{{ $value | humanizePercentage }}}} of {{{{ $labels.deployment }}}}'s token limit remains "
              f"(x-ratelimit-remaining-tokens; threshold {_fmt(s.headroom * 100)}%).",
              "meter-errors", "5m"),
        Alert("LLMRateLimitRequestHeadroomLow", f"{request_headroom} < {_fmt(s.headroom)}", (request_headroom,),
              "warning", "Deployment {{ $labels.deployment }} is close to its request rate limit",
              f"Only {{{{ $value | humanizePercentage }}}} of {{{{ $labels.deployment }}}}'s request limit remains "
              f"(x-ratelimit-remaining-requests; threshold {_fmt(s.headroom * 100)}%).",
              "meter-errors", "5m"),
        Alert("LLMUnpricedCalls", f"{unpriced} > 0", (unpriced,), "warning",
              "Calls to {{ $labels.deployment }} ({{ $labels.model }}) could not be priced",
              "{{ $value | humanize }} calls in 15m had usage but no price (unknown model or missing price): "
              "their cost is missing from the cost counter. Add the model to the price table.",
              "meter-cost"),
        Alert("LLMMeteringFaults", f"{faults} > 0", (faults,), "warning", "meter reported metering faults",
              "{{ $value | humanize }} faults of kind {{ $labels.kind }} inside metering in 15m; the calls were "
              "unaffected but their telemetry may be incomplete. Check the application's logs for meter warnings.",
              "meter-errors"),
        Alert("LLMLabelOverflow", f"{overflow} > 0", (overflow,), "info",
              "Label {{ $labels.label }} has more distinct values than meter allows",
              "Values of {{ $labels.label }} are being folded into 'other' (meter's cardinality guard). Raise "
              "max_label_values or stop using a high-cardinality attribution key.",
              "meter-errors"),
    ]


def rules_document(settings: Settings | None = None, q: Queries = DEFAULT) -> dict[str, Any]:
    """The alerts.yml contents: the budget recording rule first (same group, so it is evaluated first)."""
    s = settings or Settings()
    rules: list[dict[str, Any]] = [{
        "record": q.MONTHLY_BUDGET,
        "expr": f"vector({_fmt(s.monthly_budget_usd)})",
        "labels": {"currency": "USD"},
    }]
    for a in alerts(s, q):
        rules.append({
            "alert": a.name,
            "expr": a.expr,
            "for": a.for_,
            "labels": {"severity": a.severity, **a.labels},
            "annotations": {"summary": a.summary, "description": a.description,
                            "dashboard": f"/d/{a.dashboard}"},
        })
    return {"groups": [{"name": GROUP, "rules": rules}]}


# -- promtool unit tests ------------------------------------------------------------------------------


def _series(metric: str, values: str, **labels: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{inner}}}", "values": values}


_VALUE = re.compile(r"\{\{ \$value[^}]*\}\}")
_LABEL = re.compile(r"\{\{ \$labels\.(\w+) \}\}")


def _render(template: str, labels: dict[str, str], value: str) -> str:
    """Alertmanager-style template text with ``$labels`` and a hand-written expected ``$value``."""
    return _LABEL.sub(lambda m: labels[m.group(1)], _VALUE.sub(value, template))


def _fires(alert: Alert, eval_time: str, labels: dict[str, str], value: str) -> dict[str, Any]:
    """``alert`` fires once at ``eval_time`` with ``labels`` (severity added) and ``$value`` rendered as ``value``."""
    labels = {"severity": alert.severity, **labels}
    annotations = {"summary": _render(alert.summary, labels, value),
                   "description": _render(alert.description, labels, value), "dashboard": f"/d/{alert.dashboard}"}
    return {"eval_time": eval_time, "alertname": alert.name,
            "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}]}


def _silent(alertname: str, eval_time: str) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": alertname, "exp_alerts": []}


def rule_tests(settings: Settings | None = None, q: Queries = DEFAULT) -> dict[str, Any]:
    """``promtool test rules`` cases: at least one firing and one silent case per alert.

    The expectations are written by hand (not derived from the rules), with spend expressed as a
    multiple of the allowed rate so the cases hold for any budget.
    """
    s = settings or Settings()
    a = {alert.name: alert for alert in alerts(s, q)}
    per_minute = s.monthly_budget_usd / (q.SECONDS_PER_MONTH / 60)  # USD/min that uses the budget in 30 days

    def spend(multiple: float, minutes: int) -> str:
        return f"0+{per_minute * multiple:.6f}x{minutes}"

    req, d = q.REQUESTS, "deployment"
    search = {"budget": "search-monthly", "period": "month", "enforce": "hard"}
    ads = {"budget": "ads-daily", "period": "day", "enforce": "soft"}
    ok = {"outcome": "ok", "error_type": ""}
    tests: list[dict[str, Any]] = [
        {   # 20x the allowed rate: pages once the 1h window has filled enough.
            "name": "fast burn pages",
            "interval": "1m",
            "input_series": [_series(q.COST_USD, spend(20, 180), **{d: "gpt-5"})],
            "alert_rule_test": [
                _fires(a["LLMBudgetFastBurn"], "90m", {}, "20"),
                _silent("LLMBudgetFastBurn", "20m"),  # the 1h window has not seen enough spend yet
            ],
            "promql_expr_test": [{"expr": q.MONTHLY_BUDGET, "eval_time": "1m",
                                  "exp_samples": [{"labels": f'{q.MONTHLY_BUDGET}{{currency="USD"}}',
                                                   "value": float(s.monthly_budget_usd)}]}],
        },
        {   # a 1h spike that has stopped: the 1h window is hot, the 5m window is cold -> no page.
            "name": "fast burn needs the short window too",
            "interval": "1m",
            "input_series": [_series(q.COST_USD, f"{spend(20, 60)} {per_minute * 20 * 60:.6f}x30", **{d: "gpt-5"})],
            "alert_rule_test": [_silent("LLMBudgetFastBurn", "75m")],
        },
        {   # 4x: within budget pace for paging and ticketing.
            "name": "normal spend is silent",
            "interval": "1m",
            "input_series": [_series(q.COST_USD, spend(4, 480), **{d: "gpt-5"}),
                             _series(q.COST_USD, spend(1, 480), **{d: "o4-mini"})],
            "alert_rule_test": [_silent("LLMBudgetFastBurn", "7h"), _silent("LLMBudgetSlowBurn", "7h")],
        },
        {   # 10x (split over two deployments) for 8h: tickets but does not page.
            "name": "slow burn tickets",
            "interval": "1m",
            "input_series": [_series(q.COST_USD, spend(6, 480), **{d: "gpt-5"}),
                             _series(q.COST_USD, spend(4, 480), **{d: "o4-mini"})],
            "alert_rule_test": [_fires(a["LLMBudgetSlowBurn"], "7h", {}, "10"),
                                _silent("LLMBudgetFastBurn", "7h")],
        },
        {   # meter's budgets: spend reaches 50% then 80% of a 500 USD limit; another budget stays low.
            "name": "budget thresholds",
            "interval": "1m",
            "input_series": [
                _series(q.BUDGET_SPENT, "100 300x10 450x30", **search),
                _series(q.BUDGET_LIMIT, "500x40", **search),
                _series(q.BUDGET_ALERT_AT, "0.5x40", **search, threshold="50%"),
                _series(q.BUDGET_ALERT_AT, "0.8x40", **search, threshold="80%"),
                _series(q.BUDGET_SPENT, "10x40", **ads),
                _series(q.BUDGET_LIMIT, "100x40", **ads),
                _series(q.BUDGET_ALERT_AT, "0.5x40", **ads, threshold="50%"),
            ],
            "alert_rule_test": [
                _silent("LLMBudgetThresholdReached", "0m"),  # 20%
                _fires(a["LLMBudgetThresholdReached"], "5m", {**search, "threshold": "50%"}, "60%"),
                {"eval_time": "20m", "alertname": "LLMBudgetThresholdReached", "exp_alerts": [
                    _fires(a["LLMBudgetThresholdReached"], "20m", {**search, "threshold": t}, "90%")["exp_alerts"][0]
                    for t in ("50%", "80%")]},
            ],
        },
        {   # the forecast passes the limit for longer than 15m: fires; a forecast under its limit does not.
            "name": "budget forecast over its limit",
            "interval": "1m",
            "input_series": [
                _series(q.BUDGET_FORECAST, "400x5 650x40", **search),
                _series(q.BUDGET_LIMIT, "500x45", **search),
                _series(q.BUDGET_FORECAST, "90x45", **ads),
                _series(q.BUDGET_LIMIT, "100x45", **ads),
            ],
            "alert_rule_test": [
                _silent("LLMBudgetForecastOverLimit", "15m"),  # over since 6m: not yet for 15m
                _fires(a["LLMBudgetForecastOverLimit"], "30m", search, "650"),
            ],
        },
        {
            "name": "errors and throttling",
            "interval": "1m",
            "input_series": [
                # d1: 1 error per 10 ok calls -> 9% errors: fires.
                _series(req, "0+10x60", **{d: "d1"}, **ok),
                _series(req, "0+1x60", **{d: "d1"}, outcome="http_error", error_type="500"),
                # d2: 429s only: throttled (33%), but 429s do not count as errors.
                _series(req, "0+10x60", **{d: "d2"}, **ok),
                _series(req, "0+5x60", **{d: "d2"}, outcome="http_error", error_type="429"),
                # d3: 1% errors and 1% throttling: below both thresholds.
                _series(req, "0+100x60", **{d: "d3"}, **ok),
                _series(req, "0+1x60", **{d: "d3"}, outcome="http_error", error_type="content_filter"),
                _series(req, "0+1x60", **{d: "d3"}, outcome="http_error", error_type="429"),
                # d4: every call fails but there are only ~2 calls per 10m: too few to alert on.
                _series(req, "0+0.2x60", **{d: "d4"}, outcome="transport_error", error_type="ConnectError"),
            ],
            "alert_rule_test": [
                _fires(a["LLMErrorRatioHigh"], "30m", {d: "d1"}, "9.091%"),
                _silent("LLMErrorRatioHigh", "5m"),  # condition true, but not yet for 10m
                _fires(a["LLMThrottling"], "30m", {d: "d2"}, "33.33%"),
                _silent("LLMThrottling", "5m"),
            ],
        },
        {
            "name": "healthy traffic is silent",
            "interval": "1m",
            "input_series": [_series(req, "0+50x60", **{d: "d1"}, **ok)],
            "alert_rule_test": [_silent("LLMErrorRatioHigh", "30m"), _silent("LLMThrottling", "30m")],
        },
        {
            "name": "rate-limit headroom",
            "interval": "1m",
            "input_series": [
                _series(q.RATELIMIT_REMAINING_TOKENS, "5000x30", **{d: "d1"}, provider="azure.ai.openai"),
                _series(q.RATELIMIT_LIMIT_TOKENS, "120000x30", **{d: "d1"}, provider="azure.ai.openai"),
                _series(q.RATELIMIT_REMAINING_REQUESTS, "5x30", **{d: "d1"}, provider="azure.ai.openai"),
                _series(q.RATELIMIT_LIMIT_REQUESTS, "120x30", **{d: "d1"}, provider="azure.ai.openai"),
                _series(q.RATELIMIT_REMAINING_TOKENS, "60000x30", **{d: "d2"}, provider="azure.ai.openai"),
                _series(q.RATELIMIT_LIMIT_TOKENS, "120000x30", **{d: "d2"}, provider="azure.ai.openai"),
                _series(q.RATELIMIT_REMAINING_REQUESTS, "100x30", **{d: "d2"}, provider="azure.ai.openai"),
                _series(q.RATELIMIT_LIMIT_REQUESTS, "120x30", **{d: "d2"}, provider="azure.ai.openai"),
                # d3: remaining without a limit header: no ratio, no alert.
                _series(q.RATELIMIT_REMAINING_TOKENS, "0x30", **{d: "d3"}, provider="azure.ai.openai"),
            ],
            "alert_rule_test": [
                _fires(a["LLMRateLimitTokenHeadroomLow"], "10m", {d: "d1"}, "4.167%"),
                _fires(a["LLMRateLimitRequestHeadroomLow"], "10m", {d: "d1"}, "4.167%"),
                _silent("LLMRateLimitTokenHeadroomLow", "2m"),  # not yet for 5m
            ],
        },
        {
            "name": "plenty of headroom is silent",
            "interval": "1m",
            "input_series": [
                _series(q.RATELIMIT_REMAINING_TOKENS, "119000x30", **{d: "d1"}, provider="azure.ai.openai"),
                _series(q.RATELIMIT_LIMIT_TOKENS, "120000x30", **{d: "d1"}, provider="azure.ai.openai"),
                _series(q.RATELIMIT_REMAINING_REQUESTS, "119x30", **{d: "d1"}, provider="azure.ai.openai"),
                _series(q.RATELIMIT_LIMIT_REQUESTS, "120x30", **{d: "d1"}, provider="azure.ai.openai"),
            ],
            "alert_rule_test": [_silent("LLMRateLimitTokenHeadroomLow", "10m"),
                                _silent("LLMRateLimitRequestHeadroomLow", "10m")],
        },
        {
            "name": "unpriced calls, metering faults, label overflow",
            "interval": "1m",
            "input_series": [
                _series(q.UNPRICED_REQUESTS, "0 0 0 1x90", **{d: "custom-ft"}, model="ft:gpt-4o:acme", api="chat",
                        outcome="ok"),
                _series(q.UNPRICED_REQUESTS, "0x90", **{d: "gpt-5"}, model="gpt-5", api="responses", outcome="ok"),
                _series(q.METERING_FAULTS, "0 0 0 2x90", kind="sink"),
                _series(q.LABEL_OVERFLOW, "0 0 0 5x90", label="team"),
            ],
            "alert_rule_test": [
                _fires(a["LLMUnpricedCalls"], "5m", {d: "custom-ft", "model": "ft:gpt-4o:acme"}, "1"),
                _silent("LLMUnpricedCalls", "40m"),  # no new unpriced calls in the last 15m
                _fires(a["LLMMeteringFaults"], "5m", {"kind": "sink"}, "2"),
                _silent("LLMMeteringFaults", "40m"),
                _fires(a["LLMLabelOverflow"], "5m", {"label": "team"}, "5"),
                _silent("LLMLabelOverflow", "90m"),
            ],
        },
    ]
    return {"rule_files": ["../alerts.yml"], "evaluation_interval": "1m", "tests": tests}
