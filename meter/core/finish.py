"""The one place a ``CallRecord`` is built: from a call's start, its end, and the hub's verdicts.

The hub decides what only it can know (is this response id's usage already
counted, what does it cost) and passes the answers in; the record comes out
final, and nobody changes it after. Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime

from meter.core.call import CallEnd
from meter.core.record import MEDIA_APIS, CallCost, CallRecord, Usage, UsageSource
from meter.core.start import CallStart
from meter.core.units import Units, units_of


def started_at(start: CallStart) -> datetime:
    """The call's start as an aware UTC datetime (what prices and records are dated by)."""
    return datetime.fromtimestamp(start.started_ns / 1e9, UTC)


def deployment(start: CallStart) -> str | None:
    """The deployment the call went to: from the path, or (Azure v1 and OpenAI routes) the body's model."""
    route = start.route
    if route.deployment is None and route.deployment_from_body:
        return start.info.model
    return route.deployment


def build_record(
    start: CallStart,
    end: CallEnd,
    *,
    at: datetime,
    usage: Usage | None,
    usage_source: UsageSource | None,
    repeat: bool = False,
    supersedes_estimate: bool = False,
    cost: CallCost | None = None,
    deployment_type: str | None = None,
    region: str | None = None,
    service_tier: str | None = None,
    service_tier_assumed: bool = False,
    units: Units | None = None,
    budgets: tuple[str, ...] = (),
) -> CallRecord:
    """The final record (``usage`` and ``usage_source`` as the dedupe step left them)."""
    route = start.route
    return CallRecord(
        api=route.api,
        operation=route.operation,
        stream=end.stream,
        provider=route.provider,
        deployment=deployment(start),
        request_model=start.info.model,
        response_model=end.response_model,
        response_id=end.response_id,
        server_address=route.server_address,
        server_port=route.server_port,
        api_version=route.api_version,
        status_code=end.status_code,
        outcome=end.outcome,
        error_type=end.error_type,
        error_code=end.error_code,
        usage=usage,
        usage_source=usage_source,
        finish_reasons=end.finish_reasons,
        started_at=at,
        duration_s=end.duration_s,
        time_to_first_token_s=end.time_to_first_token_s,
        azure=end.azure,
        attributes=start.attributes,
        cost=cost,
        attempt=start.attempt,
        correlation_id=start.correlation_id,
        trace_id=start.trace_id,
        span_id=start.span_id,
        repeat=repeat,
        deployment_type=deployment_type,
        region=region,
        provisional=end.provisional,
        supersedes_estimate=supersedes_estimate,
        output_text=end.output_text,
        requested_service_tier=start.info.service_tier,
        service_tier=service_tier,
        service_tier_assumed=service_tier_assumed,
        units=units,
        budgets=budgets,
    )


def billed_units(start: CallStart, end: CallEnd, usage: Usage | None) -> Units | None:
    """The units a call without token usage is billed in (``meter.core.units``), ``None`` for the others."""
    if start.route.api not in MEDIA_APIS or usage is not None:
        return None
    info = start.info
    return units_of(start.route.api, end.outcome == "ok", False, end.audio_seconds, end.images,
                    info.input_characters, info.image_variant)
