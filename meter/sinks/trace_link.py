"""The caller's current trace, for calls without a span of meter's own (Prometheus exemplars).

OpenTelemetry is optional here: without it installed there is no current trace.
"""

from __future__ import annotations

from collections.abc import Callable

_get_span: Callable[[], object] | None = None
try:
    from opentelemetry.trace import get_current_span as _imported

    _get_span = _imported
except ImportError:  # pragma: no cover - opentelemetry is a dependency; kept optional on purpose
    pass


def current_trace_ids() -> tuple[str | None, str | None]:
    """(trace id, span id) of the current span, hex, or ``(None, None)`` when there is none."""
    if _get_span is None:
        return None, None
    context = _get_span().get_span_context()  # type: ignore[attr-defined]
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
