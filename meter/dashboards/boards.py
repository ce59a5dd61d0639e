"""The four dashboards meter ships: Cost, Tokens, Latency, Errors and limits.

Each is a list of rows of panels (``meter.dashboards.grafana`` writes them as Grafana JSON);
every expression comes from ``meter.dashboards.queries``, the one place metric names are spelled.
"""

from __future__ import annotations

from collections.abc import Callable

from meter.dashboards.grafana import Json, Panel, Target, bars, dashboard, heatmap, series, stat
from meter.dashboards.queries import DEFAULT, Queries

BY_DEPLOYMENT = ("deployment",)
UNKNOWN = {"type": "value", "options": {"-1": {"text": "unknown", "index": 0}}}
"""The value mapping of a headroom the service did not report (the query's ``-1``)."""
TIERS = (" (the tier a call was served at is folded in: Priority and Flex calls count as GlobalPriority, "
         "DataZonePriority and GlobalFlex; a Batch output file as GlobalBatch)")


def cost_dashboard(q: Queries = DEFAULT) -> Json:
    S = q.sel
    cost, requests = S(q.COST_USD), S(q.REQUESTS)

    def spend_rate_by(label: str) -> Panel:
        return series(f"Spend rate by {label.replace('_', ' ')} (USD/h)",
                      [Target(q.per_hour(q.sum_by((label,), q.rate(cost))), "{{" + label + "}}", exemplar=True)],
                      "currencyUSD", f"USD per hour, per {label}{TIERS if label == 'deployment_type' else ''}. "
                      "Exemplar dots link to the call's trace in Jaeger.", stack=True)

    def by_attribution(panel: Callable[[str], Panel]) -> list[Panel]:
        """The panel for the first attribution label (``Meter(label_keys=...)``), none without one."""
        return [panel(q.attribution)] if q.attribution else []

    def spend_by(label: str, title: str) -> Panel:
        return bars(f"Spend by {title} (range)", [Target(q.sum_by((label,), q.increase(cost)), "{{" + label + "}}")],
                    "currencyUSD", f"USD spent in the selected time range, per {title}"
                    f"{TIERS if label == 'deployment_type' else ''}.")

    return dashboard(q, "meter-cost", "meter / Cost", "Spend in USD from meter's cost counter.", [
        [
            stat("Spend (range)", q.sum_by((), q.increase(cost)), "currencyUSD",
                 "USD spent in the selected time range (increase of the cost counter; a series' first sample is "
                 "not an increase, so calls made before a series was first scraped are not in it).", decimals=2),
            stat("Spend rate (USD/h)", q.per_hour(q.sum_by((), q.rate(cost))), "currencyUSD",
                 "Current spend rate in USD per hour.", decimals=2),
            stat("Cost per 1k requests",
                 f"1000 * {q.sum_by((), q.increase(cost))} / {q.sum_by((), q.increase(requests))}", "currencyUSD",
                 "USD per 1000 metered calls in the range (retries and failures count as calls).",
                 decimals=4),
            stat("Budget burn (1h, x allowed)", q.budget_burn_rate("1h"), "short",
                 "Spend over the last hour as a multiple of the rate that uses the monthly budget in 30 days "
                 f"(recording rule {q.MONTHLY_BUDGET} from alerts.yml; unfiltered). 1 = on budget, 14.4 pages.",
                 decimals=2),
            stat("Unpriced calls (range)", q.sum_by((), q.increase(S(q.UNPRICED_REQUESTS))), "short",
                 "Calls with usage that could not be priced (unknown model or price): their cost is missing.",
                 decimals=0),
            stat("Estimated calls (range)", q.sum_by((), q.increase(S(q.ESTIMATED_REQUESTS))), "short",
                 "Calls whose usage was estimated because the service reported none (e.g. streams closed early).",
                 decimals=0),
        ],
        [spend_rate_by("deployment"), spend_rate_by("model")],
        [*by_attribution(spend_rate_by), spend_rate_by("deployment_type")],
        [spend_by("deployment", "deployment"), spend_by("model", "model"),
         *by_attribution(lambda label: spend_by(label, label.replace("_", " "))),
         spend_by("deployment_type", "deployment type")],
        [
            series("Cost per 1k requests by deployment",
                   [Target("1000 * " + q.ratio_or_zero(q.rate(cost), q.rate(requests), BY_DEPLOYMENT),
                           "{{deployment}}")],
                   "currencyUSD", "USD per 1000 calls, per deployment.", width=8),
            series("Unpriced and estimated calls (calls/s)",
                   [Target(q.sum_by(("deployment", "model"), q.rate(S(q.UNPRICED_REQUESTS))),
                           "unpriced {{deployment}} {{model}}"),
                    Target(q.sum_by(("deployment", "model"), q.rate(S(q.ESTIMATED_REQUESTS))),
                           "estimated {{deployment}} {{model}}")],
                   "reqps", "Calls per second whose cost is missing (unpriced) or based on estimated usage.",
                   width=8),
            series("Estimated spend by deployment (USD/h)",
                   [Target(q.per_hour(q.sum_by(("deployment",), q.rate(S(q.ESTIMATED_COST_USD)))), "{{deployment}}")],
                   "currencyUSD", "Cost of estimated usage (the service reported none), per hour: kept out of "
                   "every spend panel above, which count the service's own numbers only.", width=8),
        ],
        [
            series("Built-in tool calls by tool (calls/s)", [Target(q.by_tool(f"rate({{}}[{q.RATE}])"), "{{tool}}")],
                   "reqps", "Responses built-in tool calls per second, per tool (code interpreter: container "
                   "sessions, each counted once). Billed apart from tokens, per 1,000 calls or per session: "
                   "their fees are in the spend panels where a price is published (else the call is unpriced).",
                   width=16, stack=True),
            bars("Tool calls by tool (range)", [Target(q.by_tool(f"increase({{}}[{q.RANGE}])"), "{{tool}}")],
                 "short", "Built-in tool calls in the selected time range, per tool (code interpreter: sessions).",
                 width=8, decimals=0),
        ],
        [
            bars("Budgets: spent and forecast (% of limit)",
                 [Target(f"{q.BUDGET_SPENT} / on (budget, period, enforce) {q.BUDGET_LIMIT}", "{{budget}} spent"),
                  Target(f"{q.BUDGET_FORECAST} / on (budget, period, enforce) {q.BUDGET_LIMIT}",
                         "{{budget}} forecast")],
                 "percentunit", "meter's budgets (Meter(budgets=...), docs/budgets.md): spend settled in each "
                 "budget's current period, and the forecast to the period's end at the burn so far, as a share of "
                 "its limit (each process's own view: its in-process store). Alerts: LLMBudgetThresholdReached, "
                 "LLMBudgetForecastOverLimit.", width=16, decimals=0),
            bars("Calls refused by budget (range)",
                 [Target(q.sum_by(("budget",), q.increase(q.BUDGET_REFUSED)), "{{budget}}")],
                 "short", "Calls a hard budget refused in the selected time range: answered HTTP 429 "
                 "(budget_exceeded) by meter itself, never sent to Azure.", width=8, decimals=0),
        ],
    ])


def tokens_dashboard(q: Queries = DEFAULT) -> Json:
    S = q.sel
    inp, cached, out = S(q.INPUT_TOKENS), S(q.CACHED_INPUT_TOKENS), S(q.OUTPUT_TOKENS)
    reasoning, write = S(q.REASONING_OUTPUT_TOKENS), S(q.CACHE_WRITE_INPUT_TOKENS)

    def per_deployment(title: str, selector: str, description: str) -> Panel:
        return series(f"{title} by deployment (tokens/s)",
                      [Target(q.sum_by(BY_DEPLOYMENT, q.rate(selector)), "{{deployment}}")], "short", description,
                      stack=True)

    return dashboard(q, "meter-tokens", "meter / Tokens", "Token usage from meter's token counters.", [
        [
            stat("Input tokens (range)", q.sum_by((), q.increase(inp)), "short",
                 "Billable input tokens, cached and cache-write included.", decimals=0),
            stat("Cached input tokens (range)", q.sum_by((), q.increase(cached)), "short",
                 "Input tokens read from the prompt cache (billed at the cached price).", decimals=0),
            stat("Cache write tokens (range)", q.sum_by((), q.increase(write)), "short",
                 "Input tokens written to the prompt cache.", decimals=0),
            stat("Output tokens (range)", q.sum_by((), q.increase(out)), "short",
                 "Output tokens, reasoning included.", decimals=0),
            stat("Reasoning tokens (range)", q.sum_by((), q.increase(reasoning)), "short",
                 "Reasoning tokens (a subset of output tokens).", decimals=0),
            stat("Cache hit ratio (range)", f"{q.sum_by((), q.increase(cached))} / {q.sum_by((), q.increase(inp))}",
                 "percentunit", "Cached input tokens over all input tokens.", decimals=1),
        ],
        [per_deployment("Input", inp, "Input tokens per second, per deployment."),
         per_deployment("Cached input", cached, "Prompt-cache reads per second, per deployment.")],
        [per_deployment("Output", out, "Output tokens per second, per deployment (reasoning included)."),
         per_deployment("Reasoning", reasoning, "Reasoning tokens per second, per deployment.")],
        [
            series("Cache hit ratio by deployment",
                   [Target(q.ratio_or_zero(q.rate(cached), q.rate(inp), BY_DEPLOYMENT), "{{deployment}}")],
                   "percentunit", "Cached over all input tokens, per deployment (0 where nothing was cached)."),
            series("Tokens per call by deployment",
                   [Target(f"{q.sum_by(BY_DEPLOYMENT, q.rate(inp))} / {q.sum_by(BY_DEPLOYMENT, q.rate(S(q.REQUESTS)))}",
                           "input {{deployment}}"),
                    Target(f"{q.sum_by(BY_DEPLOYMENT, q.rate(out))} / {q.sum_by(BY_DEPLOYMENT, q.rate(S(q.REQUESTS)))}",
                           "output {{deployment}}")],
                   "short", "Average input and output tokens per metered call."),
        ],
        [
            *([bars(f"Tokens by {team.replace('_', ' ')} (range)",
                    [Target(q.sum_by((team,), q.increase(inp)), "input {{" + team + "}}"),
                     Target(q.sum_by((team,), q.increase(out)), "output {{" + team + "}}")],
                    "short", f"Input and output tokens in the range, per attribution {team.replace('_', ' ')}.",
                    width=12)] if (team := q.attribution) else []),
            bars("Tokens by model (range)",
                 [Target(q.sum_by(("model",), q.increase(inp)), "input {{model}}"),
                  Target(q.sum_by(("model",), q.increase(out)), "output {{model}}")],
                 "short", "Input and output tokens in the range, per served model.", width=12),
        ],
    ])


def latency_dashboard(q: Queries = DEFAULT) -> Json:
    S = q.sel
    dur, ttft = S(q.DURATION_BUCKET), S(q.TTFT_BUCKET)

    def percentiles(selector: str) -> list[Target]:
        return [Target(q.quantile(p, selector), f"p{round(p * 100)}", exemplar=True) for p in (0.5, 0.95, 0.99)]

    return dashboard(q, "meter-latency", "meter / Latency",
                     "Call duration and time to first token; exemplars link to traces.", [
        [
            stat("Duration p50", q.quantile(0.5, dur), "s", "Median call duration to the last byte.", width=6),
            stat("Duration p95", q.quantile(0.95, dur), "s", "95th percentile call duration.", width=6),
            stat("Time to first token p95", q.quantile(0.95, ttft), "s",
                 "95th percentile time to the first output delta (streams).", width=6),
            stat("Calls per second", q.sum_by((), q.rate(S(q.REQUESTS))), "reqps", "Metered calls per second.",
                 width=6, decimals=2),
        ],
        [
            series("Request duration percentiles", percentiles(dur), "s",
                   "p50/p95/p99 of call duration. Exemplar dots link to the slow call's trace."),
            series("Time to first token percentiles", percentiles(ttft), "s",
                   "p50/p95/p99 time to the first output delta of streams. Exemplars link to traces."),
        ],
        [
            series("Request duration p95 by deployment",
                   [Target(q.quantile(0.95, dur, BY_DEPLOYMENT), "{{deployment}}", exemplar=True)], "s",
                   "95th percentile duration per deployment."),
            series("Time to first token p95 by deployment",
                   [Target(q.quantile(0.95, ttft, BY_DEPLOYMENT), "{{deployment}}", exemplar=True)], "s",
                   "95th percentile time to first token per deployment."),
        ],
        [
            series("Mean duration by API and stream",
                   [Target(f"{q.sum_by(('api', 'stream'), q.rate(S(q.DURATION_SUM)))} / "
                           f"{q.sum_by(('api', 'stream'), q.rate(S(q.DURATION_COUNT)))}",
                           "{{api}} stream={{stream}}")], "s",
                   "Average duration per API (chat, responses, embeddings, transcriptions, translations, speech, "
                   "images, batch_output) and streaming or not."),
            heatmap("Duration distribution", q.sum_by(("le",), q.increase(dur, q.RATE)), "s",
                    "Calls per duration bucket over time."),
        ],
    ])


def errors_dashboard(q: Queries = DEFAULT) -> Json:
    S = q.sel
    requests = S(q.REQUESTS)
    errors = S(q.REQUESTS, q.ERROR)
    throttled = S(q.REQUESTS, q.THROTTLED)
    aborted = S(q.REQUESTS, q.ABORTED)
    tokens_headroom = q.headroom(q.RATELIMIT_REMAINING_TOKENS, q.RATELIMIT_LIMIT_TOKENS)
    requests_headroom = q.headroom(q.RATELIMIT_REMAINING_REQUESTS, q.RATELIMIT_LIMIT_REQUESTS)
    return dashboard(q, "meter-errors", "meter / Errors and limits",
                     "Failures, throttling, rate-limit headroom and metering health.", [
        [
            stat("Error ratio (range)",
                 f"{q.sum_by((), q.increase(errors))} / {q.sum_by((), q.increase(requests))}", "percentunit",
                 "Failed calls (any error_type, 429 included) over all calls in the range.", decimals=2),
            stat("429s (range)", f"{q.sum_by((), q.increase(throttled))} or vector(0)", "short",
                 "Throttled calls (HTTP 429) in the range; each SDK retry counts.", decimals=0),
            stat("Aborted streams (range)", f"{q.sum_by((), q.increase(aborted))} or vector(0)", "short",
                 "Streams closed by the caller before the end (usage may be estimated).", decimals=0),
            stat("Lowest token headroom", f"min({tokens_headroom})", "percentunit",
                 "Smallest x-ratelimit-remaining-tokens / limit across deployments (last value seen).", decimals=1),
            stat("Metering faults (range)", f"{q.sum_by((), q.increase(q.METERING_FAULTS))} or vector(0)", "short",
                 "Faults inside metering (the calls themselves were unaffected).", decimals=0),
            stat("Label overflow (range)", f"{q.sum_by((), q.increase(q.LABEL_OVERFLOW))} or vector(0)", "short",
                 "Label values folded into 'other' by the cardinality guard.", decimals=0),
        ],
        [
            series("Errors by type (calls/s)", [Target(q.sum_by(("error_type",), q.rate(errors)), "{{error_type}}")],
                   "reqps", "Failed calls per second by error type (HTTP status or error class).", stack=True),
            series("Error ratio by deployment",
                   [Target(q.ratio_or_zero(q.rate(errors), q.rate(requests), BY_DEPLOYMENT), "{{deployment}}")],
                   "percentunit", "Failed over all calls, per deployment."),
        ],
        [
            series("429 throttling by deployment (calls/s)",
                   [Target(q.sum_by(BY_DEPLOYMENT, q.rate(throttled)), "{{deployment}}")], "reqps",
                   "HTTP 429 responses per second; sustained 429s mean the deployment's quota is too small."),
            series("Calls by outcome (calls/s)", [Target(q.sum_by(("outcome",), q.rate(requests)), "{{outcome}}")],
                   "reqps", "ok, http_error, transport_error, aborted, incomplete.", stack=True),
        ],
        [
            series("Rate-limit headroom: tokens", [Target(tokens_headroom, "{{deployment}}")], "percentunit",
                   "x-ratelimit-remaining-tokens / x-ratelimit-limit-tokens per deployment (alert below 10%). "
                   "A deployment whose answers carry no token limit is not drawn: see Token headroom now.", width=9),
            bars("Token headroom now",
                 [Target(f"{tokens_headroom} or on (deployment) "
                         f"(max by (deployment) ({q.sel(q.RATELIMIT_LIMIT_REQUESTS, filters=q.DEPLOYMENT_FILTER)})"
                         " * 0 - 1)", "{{deployment}}")],
                 "percentunit", "The last token headroom per deployment that reports rate limits; 'unknown' where "
                 "its answers carry no token limit (Azure sends none on a streamed Responses answer, and has been "
                 "seen sending -1 on Responses), so it is listed, never silently left out. Lowest first.", width=6,
                 decimals=1, mappings=[UNKNOWN], lowest_first=True),
            series("Rate-limit headroom: requests", [Target(requests_headroom, "{{deployment}}")], "percentunit",
                   "x-ratelimit-remaining-requests / x-ratelimit-limit-requests per deployment.", width=9),
        ],
        [
            series("Aborted streams by deployment (calls/s)",
                   [Target(q.sum_by(BY_DEPLOYMENT, q.rate(aborted)), "{{deployment}}")], "reqps",
                   "Streams closed by the caller before the end, per second."),
            series("Metering faults and label overflow",
                   # "or vector(0)": a line at zero says "none", where no series would say "No data"
                   [Target(q.sum_by(("kind",), q.increase(q.METERING_FAULTS, q.RATE)) + " or vector(0)",
                           "fault {{kind}}"),
                    Target(q.sum_by(("label",), q.increase(q.LABEL_OVERFLOW, q.RATE)) + " or vector(0)",
                           "overflow {{label}}")],
                   "short", "Faults inside metering by kind, and label values folded into 'other' by label "
                            "(a line at zero: none)."),
        ],
    ])


def all_dashboards(q: Queries = DEFAULT) -> dict[str, Json]:
    """File name (under dashboards/grafana/) -> dashboard JSON, for the metrics ``q`` names."""
    return {f"{d['uid']}.json": d for d in (cost_dashboard(q), tokens_dashboard(q), latency_dashboard(q),
                                            errors_dashboard(q))}


