"""Every telemetry name meter emits, in one place, so a convention rename is one edit.

OpenTelemetry names follow the GenAI semantic conventions as released in
semantic-conventions v1.41 and continued in semantic-conventions-genai
(schema 1.42.0). All of them are "Development" stability upstream; the ones
known to be moving are marked UNSTABLE with the open proposal that may rename
them. Prometheus names are meter's own (prometheus-client, ``<namespace>_...``);
the dashboards and alert rules are generated from the functions below.
"""

from __future__ import annotations

from collections.abc import Callable

from meter.core import record, units

SCHEMA_URL = "https://opentelemetry.io/schemas/gen-ai/1.42.0"
INSTRUMENTATION_SCOPE = "meter"

# -- span attributes (GenAI semconv) -------------------------------------------------------------
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_STREAM = "gen_ai.request.stream"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
# The usage attributes are declared with their kinds (``meter.core.usage_kinds``, on ``Usage``); these
# names read them from there.
_USAGE_ATTRIBUTES = {kind.name: kind.otel_attribute for kind in record.USAGE_KINDS}
USAGE_INPUT_TOKENS = str(_USAGE_ATTRIBUTES["input_tokens"])
USAGE_OUTPUT_TOKENS = str(_USAGE_ATTRIBUTES["output_tokens"])
USAGE_CACHE_READ_INPUT_TOKENS = str(_USAGE_ATTRIBUTES["cached_input_tokens"])
USAGE_CACHE_WRITE_INPUT_TOKENS = str(_USAGE_ATTRIBUTES["cache_write_input_tokens"])
"""UNSTABLE: renamed from ``gen_ai.usage.cache_creation.input_tokens`` by semconv-genai PR #440."""
USAGE_REASONING_OUTPUT_TOKENS = str(_USAGE_ATTRIBUTES["reasoning_output_tokens"])
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
OPENAI_API_TYPE = "openai.api.type"
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
"""Conditionally required when the request set one other than ``auto`` (GenAI OpenAI conventions)."""
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
"""Conditionally required when the response said which tier served the call."""
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
AZURE_REQUEST_ID = "azure.service.request.id"

# Cost: UNSTABLE, the names proposed by semconv-genai PR #443 (open).
USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
USAGE_COST_SOURCE = "gen_ai.usage.cost.source"

# meter's own attributes (no convention covers them).
COST_TABLE_VERSION = "meter.cost.table_version"
COST_BASIS = "meter.cost.basis"
COST_ESTIMATED = "meter.cost.estimated"
USAGE_SOURCE = "meter.usage.source"
USAGE_PROVISIONAL = "meter.usage.provisional"
"""An estimate for a background response still running: its real usage may come later; in no total."""
USAGE_SUPERSEDES_ESTIMATE = "meter.usage.supersedes_estimate"
"""The service's usage for a response id that an earlier record had only estimated."""
IMAGE_VARIANT = "meter.usage.image_variant"
"""dall-e-3's price variant of the images a call made (``standard``, ``standard_wide``, ``hd``, ``hd_wide``)."""
SERVICE_TIER_ASSUMED = "meter.service_tier.assumed"
"""The call was priced at the tier it asked for: the service did not say which tier served it."""
OUTCOME = "meter.outcome"
DEPLOYMENT = "meter.deployment"
DEPLOYMENT_TYPE = "meter.deployment_type"
ATTEMPT = "meter.attempt"
ATTRIBUTE_PREFIX = "meter.attribute."
"""Attribution tags (``meter.attribute(team=...)``) become ``meter.attribute.team`` on spans."""

FIRST_TOKEN_EVENT = "gen_ai.first_token"
"""Span event at the first output delta of a stream (meter's name; no convention defines one)."""

# Operation names.
OPERATION_CHAT = "chat"
OPERATION_EMBEDDINGS = "embeddings"
OPERATION_FETCH_RESPONSE = "fetch_response"
OPERATION_CANCEL_RESPONSE = "cancel_response"
# The GenAI conventions name no operation for these (their well-known values are chat, embeddings,
# text_completion, generate_content and the agent ones): meter's own, in the same style, until they do.
OPERATION_COMPACT_RESPONSE = "compact_response"
OPERATION_TRANSCRIPTION = "transcription"
OPERATION_TRANSLATION = "translation"
OPERATION_SPEECH = "speech"
OPERATION_IMAGE_GENERATION = "image_generation"
OPERATION_BATCH_OUTPUT = "batch_output"
MEDIA_OPERATIONS = {"transcriptions": OPERATION_TRANSCRIPTION, "translations": OPERATION_TRANSLATION,
                    "speech": OPERATION_SPEECH, "images": OPERATION_IMAGE_GENERATION,
                    "batch_output": OPERATION_BATCH_OUTPUT}
"""``gen_ai.operation.name`` of the calls outside chat / Responses / embeddings, by ``CallRecord.api``."""

# -- OpenTelemetry metrics --------------------------------------------------------------------------
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
METRIC_OPERATION_COST = "gen_ai.client.operation.cost"
METRIC_ESTIMATED_TOKENS = "meter.client.estimated.token.usage"
"""Estimated tokens (the service reported none), by ``gen_ai.token.type``: never in the exact metrics."""
METRIC_ESTIMATED_COST = "meter.client.estimated.operation.cost"
"""UNSTABLE: proposed by semconv-genai PR #443; a counter in USD."""
TOKEN_TYPE = "gen_ai.token.type"

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

# -- Prometheus (prometheus-client) -----------------------------------------------------------------
DEFAULT_NAMESPACE = "llm"
PROMETHEUS_DURATION_BUCKETS = (*DURATION_BUCKETS, 163.84, 327.68)
"""The semconv duration buckets, extended to five minutes (long reasoning calls)."""

BASE_LABELS = ("api", "deployment", "model", "deployment_type", "provider", "outcome")
REQUEST_LABELS = (*BASE_LABELS, "error_type")
RATELIMIT_LABELS = ("deployment", "provider")
EXEMPLAR_TRACE_ID = "trace_id"
"""The exemplar label carrying the trace id (Grafana's exemplar link is configured on this name)."""
OTHER = "other"
"""The value a label takes once it has seen more distinct values than allowed."""
UNKNOWN = record.UNKNOWN
"""The model or deployment of a call that never named one (defined with ``CallRecord.model_label``)."""


def requests_total(ns: str) -> str:
    return f"{ns}_requests_total"


PROMETHEUS_USAGE_KINDS = tuple(kind for kind in record.USAGE_KINDS if kind.prometheus)
"""The usage kinds counted in Prometheus as ``<ns>_<kind>_total`` (the catalogue's ``prometheus`` kinds)."""
PROMETHEUS_UNIT_KINDS = units.UNIT_KINDS
"""The unit kinds (``meter.core.units``), each counted as ``<ns>_<kind>_total`` too (seconds, characters, images)."""


def usage_total(ns: str, kind: str) -> str:
    """The counter of one usage kind of the catalogue (``meter.core.usage_kinds``, ``prometheus=True``)."""
    return f"{ns}_{kind}_total"


def input_tokens_total(ns: str) -> str:
    return usage_total(ns, "input_tokens")


def cached_input_tokens_total(ns: str) -> str:
    return usage_total(ns, "cached_input_tokens")


def cache_write_input_tokens_total(ns: str) -> str:
    return usage_total(ns, "cache_write_input_tokens")


def output_tokens_total(ns: str) -> str:
    return usage_total(ns, "output_tokens")


def reasoning_output_tokens_total(ns: str) -> str:
    return usage_total(ns, "reasoning_output_tokens")


def cost_usd_total(ns: str) -> str:
    return f"{ns}_cost_usd_total"


def unpriced_requests_total(ns: str) -> str:
    return f"{ns}_unpriced_requests_total"


def estimated_requests_total(ns: str) -> str:
    return f"{ns}_estimated_requests_total"


def estimated_input_tokens_total(ns: str) -> str:
    return f"{ns}_estimated_input_tokens_total"


def estimated_output_tokens_total(ns: str) -> str:
    return f"{ns}_estimated_output_tokens_total"


def estimated_cost_usd_total(ns: str) -> str:
    return f"{ns}_estimated_cost_usd_total"


def request_duration_seconds(ns: str) -> str:
    return f"{ns}_request_duration_seconds"


def time_to_first_token_seconds(ns: str) -> str:
    return f"{ns}_time_to_first_token_seconds"


def ratelimit_remaining_tokens(ns: str) -> str:
    return f"{ns}_ratelimit_remaining_tokens"


def ratelimit_remaining_requests(ns: str) -> str:
    return f"{ns}_ratelimit_remaining_requests"


def ratelimit_limit_tokens(ns: str) -> str:
    return f"{ns}_ratelimit_limit_tokens"


def ratelimit_limit_requests(ns: str) -> str:
    return f"{ns}_ratelimit_limit_requests"


def metering_faults_total(ns: str) -> str:
    return f"{ns}_metering_faults_total"


def label_overflow_total(ns: str) -> str:
    return f"{ns}_label_overflow_total"


def budget_spent_usd(ns: str) -> str:
    return f"{ns}_budget_spent_usd"


def budget_reserved_usd(ns: str) -> str:
    return f"{ns}_budget_reserved_usd"


def budget_limit_usd(ns: str) -> str:
    return f"{ns}_budget_limit_usd"


def budget_forecast_usd(ns: str) -> str:
    return f"{ns}_budget_forecast_usd"


def budget_alert_threshold_ratio(ns: str) -> str:
    return f"{ns}_budget_alert_threshold_ratio"


def budget_refused_total(ns: str) -> str:
    return f"{ns}_budget_refused_total"


BUDGET_LABELS = ("budget", "period", "enforce")
"""The labels of the budget gauges (``budget_*_usd``): the budget's name, its period as written, soft/hard."""
BUDGET_THRESHOLD_LABEL = "threshold"
"""The extra label of ``budget_alert_threshold_ratio``: one series per ``alert_at`` threshold (``"80%"``)."""
BUDGET_REFUSED_LABELS = ("budget",)

BUDGET_ALERT_EVENT = "meter.budget.alert"
"""The OpenTelemetry event (a log record) emitted when a budget's spend reaches one of its ``alert_at``
thresholds (meter's name; no convention defines one)."""
BUDGET_NAME = "meter.budget.name"
BUDGET_THRESHOLD = "meter.budget.threshold"
BUDGET_SPENT = "meter.budget.spent_usd"
BUDGET_LIMIT = "meter.budget.limit_usd"
BUDGET_PERIOD_START = "meter.budget.period_start"
BUDGET_PERIOD_END = "meter.budget.period_end"


HELP: dict[Callable[[str], str], str] = {
    requests_total: "Metered LLM calls (HTTP attempts), by outcome",
    cost_usd_total: "Cost of metered calls in US dollars, at the price table",
    unpriced_requests_total: "Calls with usage that could not be priced (unknown model or price)",
    estimated_requests_total: "Calls whose usage was estimated because the service reported none",
    estimated_input_tokens_total: "Estimated input tokens of calls whose usage the service did not report "
                                  "(never in the input token counter)",
    estimated_output_tokens_total: "Estimated output tokens (never in the output token counter)",
    estimated_cost_usd_total: "Cost in US dollars of estimated usage (never in the cost counter)",
    request_duration_seconds: "Duration of metered calls, to the last byte",
    time_to_first_token_seconds: "Time to the first output token of streams",
    ratelimit_remaining_tokens: "Azure x-ratelimit-remaining-tokens",
    ratelimit_remaining_requests: "Azure x-ratelimit-remaining-requests",
    ratelimit_limit_tokens: "Azure x-ratelimit-limit-tokens",
    ratelimit_limit_requests: "Azure x-ratelimit-limit-requests",
    metering_faults_total: "Faults inside metering (the calls were unaffected)",
    label_overflow_total: "Label values folded into 'other' by the cardinality guard",
    budget_spent_usd: "Spend settled against each budget in its current period, in US dollars",
    budget_reserved_usd: "Worst cases held against each budget by calls in flight, in US dollars",
    budget_limit_usd: "Each budget's limit per period, in US dollars",
    budget_forecast_usd: "Each budget's spend by the end of its period at the burn so far, in US dollars",
    budget_alert_threshold_ratio: "Each budget's alert_at thresholds, as fractions of its limit",
    budget_refused_total: "Calls a hard budget refused (answered 429 by meter, never sent)",
}
"""The help text of each metric family but the usage counters (theirs is the catalogue's), for both stores."""
