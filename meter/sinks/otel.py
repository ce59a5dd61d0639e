"""OpenTelemetry: one CLIENT span per metered HTTP call, and the GenAI client metrics.

The span starts when the request is sent, in the caller's context (so it
nests under the caller's current span): the hub opens it before the call's
``CallStart`` is made, and the start carries its trace and span ids. It ends
when the record is final (stream end, early close, or failure), with every
attribute known then set in one call. The span is this sink's own per-call
state, handed back to it with the record; nothing else reads it. Providers are the ones passed in, else
the global ones (no-ops until the application configures them); meter never
installs a global provider by itself.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from meter import names
from meter._version import __version__
from meter.core.record import USAGE_KINDS, CallRecord
from meter.core.request import RequestInfo
from meter.core.route import Route
from meter.core.start import CallStart
from meter.core.units import UNIT_KINDS
from meter.sinks import content
from meter.sinks.increments import increments

_API_TYPE = {"chat": "chat_completions", "responses": "responses"}

_SPAN_USAGE = tuple((kind.otel_attribute, kind.name) for kind in USAGE_KINDS
                    if kind.otel_attribute and kind.counted_from == "usage")
"""(span attribute, ``Usage`` field) of every usage kind the service reports that the catalogue gives an
attribute: set on every span with usage (the GenAI conventions' token counts, 0 included)."""
_SPAN_TOOLS = tuple((kind.otel_attribute, kind.name) for kind in USAGE_KINDS
                    if kind.otel_attribute and kind.counted_from == "output")
"""The built-in tool calls: meter's own attributes, set only when a call made some (the SDK's attribute
checks cost about a microsecond each, on every span)."""


def operation_name(api: str, operation: str) -> str:
    """``chat`` for Chat Completions and Responses, ``embeddings``, the Responses retrieve/cancel/compact
    names, or the name of an audio, images or Batch output call (``names.MEDIA_OPERATIONS``)."""
    if api == "embeddings":
        return names.OPERATION_EMBEDDINGS
    media = names.MEDIA_OPERATIONS.get(api)
    if media is not None:
        return media
    if operation == "compact":
        return names.OPERATION_COMPACT_RESPONSE
    if operation in ("retrieve", "resume"):
        return names.OPERATION_FETCH_RESPONSE
    if operation == "cancel":
        return names.OPERATION_CANCEL_RESPONSE
    return names.OPERATION_CHAT


def record_attributes(record: CallRecord) -> dict[str, Any]:
    """What a finished record says, as GenAI (and meter) attributes: usage, cost, response, outcome, tags.

    Set on the call's span at its end, and carried by the per-call event (``otel_events``).
    """
    attrs: dict[str, Any] = {
        names.OPENAI_API_TYPE: _API_TYPE.get(record.api, record.api),
        names.OUTCOME: record.outcome,
        names.REQUEST_STREAM: record.stream,
    }
    attrs[names.DEPLOYMENT] = record.deployment_label  # defined, never empty: "unknown"
    if record.deployment_type:
        attrs[names.DEPLOYMENT_TYPE] = record.deployment_type
    attrs[names.RESPONSE_MODEL] = record.model_label
    if record.response_id:
        attrs[names.RESPONSE_ID] = record.response_id
    if record.finish_reasons:
        attrs[names.RESPONSE_FINISH_REASONS] = list(record.finish_reasons)
    if record.azure.apim_request_id:
        attrs[names.AZURE_REQUEST_ID] = record.azure.apim_request_id
    if record.attempt is not None:
        attrs[names.ATTEMPT] = record.attempt
    if record.requested_service_tier is not None and record.requested_service_tier != "auto":
        attrs[names.OPENAI_REQUEST_SERVICE_TIER] = record.requested_service_tier
    if record.service_tier is not None:
        if record.service_tier_assumed:
            attrs[names.SERVICE_TIER_ASSUMED] = True
        else:
            attrs[names.OPENAI_RESPONSE_SERVICE_TIER] = record.service_tier
    usage = record.usage
    if record.provisional:
        attrs[names.USAGE_PROVISIONAL] = True
    if record.supersedes_estimate:
        attrs[names.USAGE_SUPERSEDES_ESTIMATE] = True
    if usage is not None:
        attrs[names.USAGE_SOURCE] = record.usage_source or ""
        for attribute, kind in _SPAN_USAGE:
            attrs[attribute] = getattr(usage, kind)
        for attribute, kind in _SPAN_TOOLS:
            count = getattr(usage, kind)
            if count:
                attrs[attribute] = count
    units = record.units
    if units is not None:
        for unit_kind in UNIT_KINDS:
            attrs[unit_kind.otel_attribute] = getattr(units, unit_kind.name)
        if units.image_variant is not None:
            attrs[names.IMAGE_VARIANT] = units.image_variant
    cost = record.cost
    if cost is not None:
        attrs[names.COST_BASIS] = cost.basis
        attrs[names.COST_TABLE_VERSION] = cost.table_version
        attrs[names.COST_ESTIMATED] = cost.estimated
        attrs[names.USAGE_COST_CURRENCY] = cost.currency
        attrs[names.USAGE_COST_SOURCE] = "local"
        if cost.total is not None:
            attrs[names.USAGE_COST_AMOUNT] = float(cost.total)
    for key, value in record.attributes.items():
        attrs[names.ATTRIBUTE_PREFIX + key] = value
    return attrs


class SpanState:
    """This sink's per-call state: the open span and what its end needs."""

    __slots__ = ("request_body", "span", "started_ns")

    def __init__(self, span: Any, started_ns: int, request_body: dict[str, Any] | None) -> None:
        self.span = span
        self.started_ns = started_ns
        self.request_body = request_body


class OTelSink:
    """Spans and GenAI metrics for every record."""

    def __init__(
        self,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        capture_content: bool = False,
        content_max_chars: int = 8192,
        metric_attribute_keys: tuple[str, ...] = (),
    ) -> None:
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self._tracer = provider.get_tracer(names.INSTRUMENTATION_SCOPE, __version__, schema_url=names.SCHEMA_URL)
        mp = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        otel_meter = mp.get_meter(names.INSTRUMENTATION_SCOPE, __version__, schema_url=names.SCHEMA_URL)
        self._tokens = otel_meter.create_histogram(
            names.METRIC_TOKEN_USAGE, unit="{token}", description="Tokens used per call, by token type",
            explicit_bucket_boundaries_advisory=list(names.TOKEN_BUCKETS))
        self._duration = otel_meter.create_histogram(
            names.METRIC_OPERATION_DURATION, unit="s", description="Duration of the GenAI operation",
            explicit_bucket_boundaries_advisory=list(names.DURATION_BUCKETS))
        self._ttfc = otel_meter.create_histogram(
            names.METRIC_TIME_TO_FIRST_CHUNK, unit="s", description="Time to the first output chunk of a stream",
            explicit_bucket_boundaries_advisory=list(names.DURATION_BUCKETS))
        self._cost = otel_meter.create_counter(
            names.METRIC_OPERATION_COST, unit="USD", description="Cost of GenAI operations at list prices")
        self._estimated_tokens = otel_meter.create_counter(
            names.METRIC_ESTIMATED_TOKENS, unit="{token}",
            description="Estimated tokens of calls whose usage the service did not report")
        self._estimated_cost = otel_meter.create_counter(
            names.METRIC_ESTIMATED_COST, unit="USD", description="Cost of estimated usage")
        self.capture_content = capture_content
        self.content_max_chars = content_max_chars
        self.metric_attribute_keys = metric_attribute_keys
        self._attribute_sets: dict[tuple[Any, ...], _AttributeSet] = {}
        self._global_traces = tracer_provider is None
        self._global_metrics = meter_provider is None

    def _traces_unset(self) -> bool:
        """Global tracing with no provider installed yet: every span would be a no-op, so make none."""
        return self._global_traces and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)

    def _metrics_unset(self) -> bool:
        """Global metrics with no provider installed yet (the API's proxy): nothing would be recorded."""
        return self._global_metrics and type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"

    def open(self, route: Route, info: RequestInfo, started_ns: int, request_body: dict[str, Any] | None,
             parent: object = None) -> tuple[SpanState | None, str | None, str | None]:
        """Start the call's span at ``started_ns``; returns it as this sink's state, with its trace and span ids.

        ``parent``: the caller's context when the span is opened later, on the metering worker (``None``:
        the current context, on the caller's own thread)."""
        if self._traces_unset():
            return None, None, None
        operation = operation_name(route.api, route.operation)
        model = route.deployment or info.model  # as requested: on Azure, the deployment alias (path or body)
        attributes: dict[str, Any] = {
            names.OPERATION_NAME: operation,
            names.PROVIDER_NAME: route.provider,
            names.SERVER_ADDRESS: route.server_address,
        }
        if model:
            attributes[names.REQUEST_MODEL] = model
        if route.server_port is not None:
            attributes[names.SERVER_PORT] = route.server_port
        span = self._tracer.start_span(f"{operation} {model}" if model else operation, kind=SpanKind.CLIENT,
                                       attributes=attributes, start_time=started_ns,
                                       context=parent)  # type: ignore[arg-type]
        context = span.get_span_context()
        if not context.is_valid:
            return SpanState(span, started_ns, request_body), None, None
        return (SpanState(span, started_ns, request_body), format(context.trace_id, "032x"),
                format(context.span_id, "016x"))

    def start(self, start: CallStart) -> SpanState | None:
        """The span opened for this call (``open``, one step before the start was built) is this sink's state."""
        return start.span if isinstance(start.span, SpanState) else None

    def finish(self, record: CallRecord, state: SpanState | None) -> None:
        if state is not None:
            self._end_span(state, record)
        if not self._metrics_unset():
            self._record_metrics(record)

    def fault(self, kind: str) -> None:
        """Faults are counted by the Prometheus sink and the meter; spans carry nothing for them."""

    # -- internals -----------------------------------------------------------------------------

    def _end_span(self, state: SpanState, record: CallRecord) -> None:
        span = state.span
        if not span.is_recording():
            span.end()
            return
        attrs = record_attributes(record)
        if record.time_to_first_token_s is not None:
            attrs[names.RESPONSE_TIME_TO_FIRST_CHUNK] = record.time_to_first_token_s
            span.add_event(names.FIRST_TOKEN_EVENT,
                           {names.RESPONSE_TIME_TO_FIRST_CHUNK: record.time_to_first_token_s},
                           timestamp=state.started_ns + int(record.time_to_first_token_s * 1e9))
        if self.capture_content:
            attrs.update(content.message_attributes(state.request_body, record.output_text, record.finish_reasons,
                                                    self.content_max_chars))
        if record.outcome != "ok":
            attrs[names.ERROR_TYPE] = record.error_type or record.outcome
            span.set_status(Status(StatusCode.ERROR, record.error_type or record.outcome))
        span.set_attributes(attrs)
        span.end(end_time=state.started_ns + int(record.duration_s * 1e9))

    def _metric_attributes(self, record: CallRecord) -> _AttributeSet:
        """The metric attributes of a record, built once per distinct set and reused (the SDK only reads them)."""
        extra = tuple(record.attributes.get(key) for key in self.metric_attribute_keys)
        key = (record.api, record.operation, record.provider, record.server_address, record.server_port,
               record.deployment or record.request_model, record.response_model, extra)
        found = self._attribute_sets.get(key)
        if found is not None:
            return found
        attrs: dict[str, Any] = {
            names.OPERATION_NAME: operation_name(record.api, record.operation),
            names.PROVIDER_NAME: record.provider,
            names.SERVER_ADDRESS: record.server_address,
        }
        attrs[names.REQUEST_MODEL] = record.deployment or record.request_model or names.UNKNOWN
        attrs[names.RESPONSE_MODEL] = record.model_label
        if record.server_port is not None:
            attrs[names.SERVER_PORT] = record.server_port
        for name, value in zip(self.metric_attribute_keys, extra, strict=True):
            if value is not None:
                attrs[names.ATTRIBUTE_PREFIX + name] = value
        if len(self._attribute_sets) >= 1024:  # bounded: free-form models and tags cannot grow it without end
            self._attribute_sets.clear()
        found = self._attribute_sets[key] = _AttributeSet(attrs)
        return found

    def _record_metrics(self, record: CallRecord) -> None:
        sets = self._metric_attributes(record)
        attrs = sets.base
        duration_attrs = attrs
        if record.outcome != "ok":
            duration_attrs = {**attrs, names.ERROR_TYPE: record.error_type or record.outcome}
        self._duration.record(record.duration_s, duration_attrs)
        if record.stream and record.time_to_first_token_s is not None:
            self._ttfc.record(record.time_to_first_token_s, attrs)
        # The rule every metric sink follows (``meter.sinks.increments``): the semconv metrics hold only usage
        # the service reported (semconv: no offline counting); estimates have their own counters, and a
        # provisional estimate (its real usage may still come) none.
        inc = increments(record)
        usage, cost = record.usage, record.cost
        if inc.estimated_tokens is not None:
            self._estimated_tokens.add(inc.estimated_tokens[0], sets.input)
            self._estimated_tokens.add(inc.estimated_tokens[1], sets.output)
        if inc.estimated_cost is not None and cost is not None:
            self._estimated_cost.add(inc.estimated_cost, sets.with_basis(cost.basis))
        # an estimated usage's increments are only the tool calls a cut-off stream showed: not tokens
        if inc.tokens is not None and usage is not None and not inc.estimated:
            self._tokens.record(usage.input_tokens, sets.input)
            self._tokens.record(usage.output_tokens, sets.output)
        if inc.cost is not None and cost is not None:
            self._cost.add(inc.cost, sets.with_basis(cost.basis))


class _AttributeSet:
    """One metric attribute set and the variants the token and cost metrics add to it, built once."""

    __slots__ = ("_bases", "base", "input", "output")

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base
        self.input = {**base, names.TOKEN_TYPE: "input"}
        self.output = {**base, names.TOKEN_TYPE: "output"}
        self._bases: dict[str, dict[str, Any]] = {}

    def with_basis(self, basis: str) -> dict[str, Any]:
        found = self._bases.get(basis)
        if found is None:
            found = self._bases[basis] = {**self.base, names.COST_BASIS: basis}
        return found
