"""``CallStart``: what is known of a call when its request goes out, fixed from then on.

The hub builds one per metered request (route, request facts, attribution,
start time, the trace it belongs to) and hands it to the state machine and to
every sink. Nothing changes it afterwards: a sink that needs per-call state
keeps its own (see ``meter.core.sink.Sink``). A ``NamedTuple``: immutable, and cheap
to build on the hot path.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from meter.core.request import RequestInfo
from meter.core.route import Route


class CallStart(NamedTuple):
    """The immutable start of one metered HTTP attempt."""

    route: Route
    info: RequestInfo
    attributes: dict[str, str]
    """``meter.attribute(...)`` tags in force when the request was sent: a copy of its own, never changed
    (the record shares it)."""
    attempt: int | None
    """0 for the first HTTP attempt, n for the n-th retry (the SDK's ``x-stainless-retry-count``)."""
    correlation_id: str | None
    """Shared by every attempt of one logical call within the process."""
    started_ns: int
    """Wall-clock start, ``time.time_ns()``."""
    trace_id: str | None
    span_id: str | None
    """The OpenTelemetry trace the call belongs to: meter's span, else the caller's current span."""
    capture: bool
    """Prompt and completion text are captured (``Meter(capture_content=True)``)."""
    request_body: dict[str, Any] | None
    """The parsed request, kept only when ``capture`` is on."""
    input_estimate: int
    """Rough input tokens (streams only), used if the service reports no usage."""
    repaired: bool = False
    """Some of the request's values were made storable (``meter.core.storable``): the call's one
    ``value_repaired`` fault is counted already, so a repair of its response adds none."""
    span: object = None
    """meter's own span for the call, opened one step before the start is built (so ``trace_id`` and
    ``span_id`` are its ids); the OpenTelemetry sink takes it as its state. ``None`` without one."""
