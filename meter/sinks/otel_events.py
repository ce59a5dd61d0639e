"""One OpenTelemetry event per call: ``gen_ai.client.inference.operation.details``, through the Logs API.

For pipelines past a database: an OpenTelemetry Collector receives every call as a log
record and routes it (ClickHouse, Kafka, object storage; see docs/ledger.md). The record
carries the call's GenAI attributes, meter's usage and cost attributes and its tags, and
the call's trace context (so a backend joins it to the span). Prompt and completion text
only when content capture is on. Opt-in: ``Meter(otel_events=True)`` or
``OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT=true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber, get_logger_provider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from meter import names
from meter._version import __version__
from meter.core.record import CallRecord
from meter.core.start import CallStart
from meter.sinks import content
from meter.sinks.otel import operation_name, record_attributes

if TYPE_CHECKING:  # sinks do not import the budgets package; the gate hands its events over
    from meter.budgets.store import AlertEvent

EVENT_NAME = "gen_ai.client.inference.operation.details"


class EventSink:
    """Emits the per-call event; its per-call state is the request body (kept only when capturing content)."""

    def __init__(self, logger_provider: Any = None, capture_content: bool = False,
                 content_max_chars: int = 8192) -> None:
        provider = logger_provider if logger_provider is not None else get_logger_provider()
        self._logger = provider.get_logger(names.INSTRUMENTATION_SCOPE, __version__, schema_url=names.SCHEMA_URL)
        self.capture_content = capture_content
        self.content_max_chars = content_max_chars

    def start(self, start: CallStart) -> Any:
        return start.request_body if self.capture_content else None

    def fault(self, kind: str) -> None:
        """Faults are counted by the meter and the Prometheus sink."""

    def finish(self, record: CallRecord, state: Any) -> None:
        attrs = record_attributes(record)
        attrs[names.OPERATION_NAME] = operation_name(record.api, record.operation)
        attrs[names.PROVIDER_NAME] = record.provider
        attrs[names.SERVER_ADDRESS] = record.server_address
        if record.server_port is not None:
            attrs[names.SERVER_PORT] = record.server_port
        model = record.deployment or record.request_model
        if model:
            attrs[names.REQUEST_MODEL] = model
        if record.outcome != "ok":
            attrs[names.ERROR_TYPE] = record.error_type or record.outcome
        if self.capture_content:
            attrs.update(content.message_attributes(state, record.output_text, record.finish_reasons,
                                                    self.content_max_chars))
        context = None
        if record.trace_id and record.span_id:
            span = NonRecordingSpan(SpanContext(int(record.trace_id, 16), int(record.span_id, 16), is_remote=False,
                                                trace_flags=TraceFlags(TraceFlags.SAMPLED)))
            context = trace.set_span_in_context(span)
        end_ns = int((record.started_at.timestamp() + record.duration_s) * 1e9)
        self._logger.emit(LogRecord(timestamp=end_ns, context=context, event_name=EVENT_NAME,
                                    severity_number=SeverityNumber.INFO if record.outcome == "ok"
                                    else SeverityNumber.WARN, attributes=attrs))


class BudgetAlertEvents:
    """One event per ``alert_at`` threshold a budget's spend reaches (``meter.budget.alert``, a log record):
    the budget, the threshold (``"80%"``), the spend and the limit, the period. Given to the budget gate
    (``BudgetGate.on_alert``) when ``Meter(otel_events=True)`` and the Meter has budgets."""

    def __init__(self, logger_provider: Any = None) -> None:
        provider = logger_provider if logger_provider is not None else get_logger_provider()
        self._logger = provider.get_logger(names.INSTRUMENTATION_SCOPE, __version__, schema_url=names.SCHEMA_URL)

    def emit(self, event: AlertEvent) -> None:
        attrs: dict[str, Any] = {
            names.BUDGET_NAME: event.budget,
            names.BUDGET_THRESHOLD: event.percent,
            names.BUDGET_SPENT: float(event.spent),
            names.BUDGET_LIMIT: float(event.limit),
            names.BUDGET_PERIOD_START: event.period_start.isoformat(),
            names.BUDGET_PERIOD_END: event.period_end.isoformat(),
        }
        self._logger.emit(LogRecord(timestamp=int(event.at.timestamp() * 1e9), event_name=names.BUDGET_ALERT_EVENT,
                                    severity_number=SeverityNumber.WARN, attributes=attrs,
                                    body=f"budget {event.budget!r} reached {event.percent} of its {event.limit} USD "
                                         f"limit ({event.spent} USD spent this period)"))
