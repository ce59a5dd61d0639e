"""The value types every later stage consumes: ``Usage``, ``AzureHeaders``, ``CallRecord``.

Plain slotted dataclasses. ``Usage`` is frozen (it is small and shared into
costs); ``CallRecord`` and ``AzureHeaders`` are built once per call on the hot
path, where a frozen dataclass's per-field ``object.__setattr__`` costs more
than the rest of the record: they are not frozen, but they are final when anyone
sees them (one record goes to every subscriber), so everyone treats them as
read-only (``record.replace(...)`` makes a changed copy).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from meter.core.units import Units
from meter.core.usage_kinds import UsageKind, kind, kinds_of

Api = Literal["chat", "responses", "embeddings", "transcriptions", "translations", "speech", "images", "batch_output"]
"""The endpoint a call went to: Chat Completions, Responses (compaction included), embeddings, audio
transcriptions / translations / speech, image generations and edits, a Batch output file (``GET
files/{id}/content``). ``MEDIA_APIS`` are the ones outside chat / Responses / embeddings."""
MEDIA_APIS: frozenset[Api] = frozenset({"transcriptions", "translations", "speech", "images", "batch_output"})
Outcome = Literal["ok", "http_error", "transport_error", "aborted", "incomplete"]
UsageSource = Literal["response", "stream", "estimated"]


UNKNOWN = "unknown"
"""The value of the model and deployment labels and attributes (Prometheus, OTel metrics and spans,
ledger reports, ``CallRecord.model_label``) of a call that never named them: one refused or failed
before the service said which model served it, or sent to a path without a deployment. Never an
empty value, which dashboards would show as a series with no name. (``meter.names.UNKNOWN``.)"""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call, as the service reported them.

    Subsets, not addends: ``cached_input_tokens`` and ``cache_write_input_tokens``
    are parts of ``input_tokens``; ``reasoning_output_tokens`` is part of
    ``output_tokens``; the audio counts are parts of input and output, and
    ``cached_audio_input_tokens`` is part of both ``cached_input_tokens`` and
    ``audio_input_tokens`` (realtime-class models bill cached audio at its own rate).
    This is how Azure and OpenAI report them, and adding a subset to its total double
    counts.
    ``total_tokens`` is what the service sent (input + output when it sent none).
    """

    # The catalogue of usage kinds (``meter.core.usage_kinds``): each field with what meter knows of it.
    input_tokens: int = kind(
        help="Input tokens, all of them (cached and cache-write tokens included)",
        chat=(("prompt_tokens",),), responses=(("input_tokens",),), otel_attribute="gen_ai.usage.input_tokens",
        prometheus=True, price_kind="input", report=True, primary=True)
    cached_input_tokens: int = kind(
        help="Input tokens read from the prompt cache (a subset of input tokens)",
        chat=(("prompt_tokens_details", "cached_tokens"),), responses=(("input_tokens_details", "cached_tokens"),),
        subset_of=("input_tokens",), otel_attribute="gen_ai.usage.cache_read.input_tokens", prometheus=True,
        price_kind="cached_input", report=True)
    cache_write_input_tokens: int = kind(
        help="Input tokens written to the prompt cache (a subset of input tokens)",
        chat=(("prompt_tokens_details", "cache_write_tokens"),),
        responses=(("input_tokens_details", "cache_write_tokens"),),
        subset_of=("input_tokens",), otel_attribute="gen_ai.usage.cache_write.input_tokens", prometheus=True,
        price_kind="cache_write", report=True)
    output_tokens: int = kind(
        help="Output tokens (reasoning tokens included)",
        chat=(("completion_tokens",),), responses=(("output_tokens",),), otel_attribute="gen_ai.usage.output_tokens",
        prometheus=True, price_kind="output", report=True, primary=True)
    reasoning_output_tokens: int = kind(
        help="Reasoning tokens (a subset of output tokens)",
        chat=(("completion_tokens_details", "reasoning_tokens"), ("reasoning_tokens",)),  # DeepSeek: top level
        responses=(("output_tokens_details", "reasoning_tokens"),),
        subset_of=("output_tokens",), otel_attribute="gen_ai.usage.reasoning.output_tokens", prometheus=True,
        report=True)
    audio_input_tokens: int = kind(
        help="Audio input tokens (a subset of input tokens)",
        chat=(("prompt_tokens_details", "audio_tokens"),), responses=(("input_tokens_details", "audio_tokens"),),
        subset_of=("input_tokens",), price_kind="audio_input")
    audio_output_tokens: int = kind(
        help="Audio output tokens (a subset of output tokens)",
        chat=(("completion_tokens_details", "audio_tokens"),), responses=(("output_tokens_details", "audio_tokens"),),
        subset_of=("output_tokens",), price_kind="audio_output")
    total_tokens: int = kind(
        help="Tokens in all, as the service reported them (input + output when it sent none)",
        chat=(("total_tokens",),), responses=(("total_tokens",),))
    cached_audio_input_tokens: int = kind(
        help="Cached audio input tokens (a subset of both cached and audio input tokens)",
        chat=(("prompt_tokens_details", "cached_tokens_details", "audio_tokens"),),
        responses=(("input_tokens_details", "cached_tokens_details", "audio_tokens"),),
        subset_of=("cached_input_tokens", "audio_input_tokens"), price_kind="cached_audio_input")
    image_input_tokens: int = kind(
        help="Image input tokens (a subset of input tokens; image models bill them at their own rate)",
        chat=(("prompt_tokens_details", "image_tokens"),), responses=(("input_tokens_details", "image_tokens"),),
        subset_of=("input_tokens",), price_kind="image_input")
    image_output_tokens: int = kind(
        help="Image output tokens (a subset of output tokens; image models bill them at their own rate)",
        chat=(("completion_tokens_details", "image_tokens"),), responses=(("output_tokens_details", "image_tokens"),),
        subset_of=("output_tokens",), price_kind="image_output")
    # Built-in tools of the Responses API (and chat web search), billed per call or per session apart from
    # the tokens: counted from the output items (``meter.core.tools``), not from the usage object.
    web_search_calls: int = kind(
        help="Web search tool calls (Responses web_search_call items; a chat search model's answer is one)",
        otel_attribute="meter.usage.web_search.calls", prometheus=True, price_kind="web_search", report=True,
        counted_from="output")
    file_search_calls: int = kind(
        help="File search tool calls (Responses file_search_call items)",
        otel_attribute="meter.usage.file_search.calls", prometheus=True, price_kind="file_search", report=True,
        counted_from="output")
    code_interpreter_sessions: int = kind(
        help="Code interpreter container sessions first seen in this call (distinct container ids)",
        otel_attribute="meter.usage.code_interpreter.sessions", prometheus=True, price_kind="code_interpreter",
        report=True, counted_from="output")
    image_generation_calls: int = kind(
        help="Image generation tool calls (Responses image_generation_call items; billed as image tokens)",
        otel_attribute="meter.usage.image_generation.calls", prometheus=True, counted_from="output")
    computer_calls: int = kind(
        help="Computer use tool calls (Responses computer_call items; billed as tokens)",
        otel_attribute="meter.usage.computer.calls", prometheus=True, counted_from="output")
    mcp_calls: int = kind(
        help="Remote MCP tool calls (Responses mcp_call items)",
        otel_attribute="meter.usage.mcp.calls", prometheus=True, counted_from="output")

    @property
    def uncached_input_tokens(self) -> int:
        """Input billed at the plain input rate (never negative)."""
        return max(0, self.input_tokens - self.cached_input_tokens - self.cache_write_input_tokens)


USAGE_KINDS: tuple[UsageKind, ...] = kinds_of(Usage)
"""The catalogue of usage kinds, in ``Usage``'s field order (``meter.core.usage_kinds``)."""


class CallCost(Protocol):
    """What a record's ``cost`` tells (``meter.pricing.Cost`` is one): the core and the sinks read a cost
    through this, so they depend on no pricing code. Money is ``Decimal``; ``total`` is ``None`` when the
    call could not be priced (unknown, never 0), and ``reason`` says why."""

    @property
    def total(self) -> Decimal | None: ...
    @property
    def amounts(self) -> Mapping[str, Decimal | None]: ...
    @property
    def tokens(self) -> Mapping[str, int | Decimal]: ...
    @property
    def unit_prices(self) -> Mapping[str, Decimal]: ...
    @property
    def basis(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def deployment_type(self) -> str | None: ...
    @property
    def assumed_deployment_type(self) -> bool: ...
    @property
    def region(self) -> str | None: ...
    @property
    def table_version(self) -> str: ...
    @property
    def row_ids(self) -> tuple[str, ...]: ...
    @property
    def estimated(self) -> bool: ...
    @property
    def long_context(self) -> bool: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def currency(self) -> str: ...


@dataclass(slots=True)
class AzureHeaders:
    """Response headers of interest; ``None`` where the service did not send one.

    Rate-limit values are ints; Azure's ``-1`` ("unknown", sent by the Responses
    API) is kept as ``None`` so nobody mistakes it for an exhausted quota.
    """

    region: str | None = None
    apim_request_id: str | None = None
    request_id: str | None = None
    client_request_id: str | None = None
    deployment_name: str | None = None
    served_model: str | None = None
    spilled_over: bool | None = None
    ratelimit_remaining_tokens: int | None = None
    ratelimit_remaining_requests: int | None = None
    ratelimit_limit_tokens: int | None = None
    ratelimit_limit_requests: int | None = None
    retry_after_s: float | None = None
    service_tier: str | None = None
    """``x-ms-service-tier``: the tier that served the call (folded by ``tiers.tier_name``)."""


@dataclass(slots=True)
class CallRecord:
    """Everything meter knows about one metered HTTP call, emitted exactly once.

    A record is emitted when the call is finished: body read, stream exhausted,
    stream closed early, or failed. ``usage`` is ``None`` when the service reported
    none and nothing could be estimated; ``usage_source`` then is ``None`` too.
    ``error_type`` is a low-cardinality label (the service's error code, else its
    error type, else the HTTP status, else the exception class); ``error_code`` is
    the service's own ``error.code`` verbatim, ``None`` when it sent none.
    ``cost`` is a ``meter.pricing.Cost``, or ``None`` when no price book is configured or
    there is no usage. Built once, deduplicated and priced, by ``meter.core.finish``;
    the same record goes to every sink and subscriber, which treat it as read-only.
    """

    api: Api
    operation: str
    stream: bool
    provider: str
    deployment: str | None
    request_model: str | None
    response_model: str | None
    response_id: str | None
    server_address: str
    server_port: int | None
    api_version: str | None
    status_code: int | None
    outcome: Outcome
    error_type: str | None
    error_code: str | None
    usage: Usage | None
    usage_source: UsageSource | None
    finish_reasons: tuple[str, ...] | None
    started_at: datetime
    duration_s: float
    time_to_first_token_s: float | None
    azure: AzureHeaders
    attributes: dict[str, str] = field(default_factory=dict)
    cost: CallCost | None = None
    """What the call cost (``None`` without usage or with pricing off); see ``CallCost``."""
    attempt: int | None = None
    """0 for the first HTTP attempt, n for the n-th retry (the SDK's ``x-stainless-retry-count``)."""
    correlation_id: str | None = None
    """Shared by every attempt of one logical call, so retries can be grouped."""
    trace_id: str | None = None
    """The OpenTelemetry trace of the call's span (32 hex digits), when there is one."""
    span_id: str | None = None
    repeat: bool = False
    deployment_type: str | None = None
    region: str | None = None
    provisional: bool = False
    """An estimate for a background Responses create whose stream dropped: the response runs on, and
    a later retrieve or resume brings the real usage. Metric totals leave it out (never both)."""
    supersedes_estimate: bool = False
    """This record's usage is the service's own for a response id an earlier record had only estimated."""
    output_text: tuple[str, ...] | None = None
    """The completion text as returned or streamed, only with ``Meter(capture_content=True)``."""
    requested_service_tier: str | None = None
    """The ``service_tier`` the request asked for (``meter.core.tiers.SERVICE_TIERS``)."""
    service_tier: str | None = None
    """The tier the call is priced at: the one the service says served it, else the requested one."""
    service_tier_assumed: bool = False
    """``service_tier`` is the requested tier: the service did not say which served the call."""
    units: Units | None = None
    """What a call without token usage is billed in (seconds of audio, characters, images: ``meter.core.units``)."""
    budgets: tuple[str, ...] = ()
    """The budgets the call was charged to (``Meter(budgets=...)``), by name."""

    @property
    def model_label(self) -> str:
        """The served model, or ``UNKNOWN`` for a call that never named one: the
        value labels, attributes and reports use. ``response_model`` itself stays ``None``: nothing invented."""
        return self.response_model or UNKNOWN

    @property
    def deployment_label(self) -> str:
        """The deployment, or ``"unknown"`` for a call to a path without one (see ``model_label``)."""
        return self.deployment or UNKNOWN

    def replace(self, **changes: Any) -> CallRecord:
        """A copy with some fields changed (a record is final once anyone sees it: change a copy, never it)."""
        return dataclasses.replace(self, **changes)
