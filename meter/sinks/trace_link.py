"""The caller's current trace, for calls without a span of meter's own (Prometheus exemplars).

Read only when the application has imported OpenTelemetry itself: a process that never
imported it has no current span, so ``Meter(otel=False)`` never imports it on its behalf
(no import time, no memory, no global provider lookups for an app that does not trace).
"""

from __future__ import annotations

import sys
from typing import Any

_TRACE_MODULE = "opentelemetry.trace"
_CONTEXT_MODULE = "opentelemetry.context"


def current_trace_ids() -> tuple[str | None, str | None]:
    """(trace id, span id) of the current span, hex, or ``(None, None)`` when there is none."""
    trace: Any = sys.modules.get(_TRACE_MODULE)
    if trace is None:  # nobody in this process uses OpenTelemetry: there is no current trace
        return None, None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def current_context() -> object:
    """The caller's OpenTelemetry context, kept with a call whose span is opened later, on the metering
    worker (``None`` when nobody in this process imported OpenTelemetry: then there is no context)."""
    context: Any = sys.modules.get(_CONTEXT_MODULE)
    return None if context is None else context.get_current()


def trace_ids_in(parent: object) -> tuple[str | None, str | None]:
    """(trace id, span id) of the current span of a context ``current_context`` kept, or ``(None, None)``."""
    trace: Any = sys.modules.get(_TRACE_MODULE)
    if trace is None or parent is None:
        return None, None
    context = trace.get_current_span(parent).get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
