"""``CallRecord`` -> ledger rows: pure, no I/O. Money as exact decimal strings, times as ISO 8601 UTC."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from meter.core.record import CallCost, CallRecord, Usage
from meter.core.units import UNIT_KINDS, Units
from meter.ledger.schema import CALL_COLUMNS, COST_COLUMNS, INT32_COLUMNS, TOKEN_COLUMNS, UNIT_COLUMNS


def new_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so rows of one period sit together; unique across processes."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


_NANO = Decimal(10) ** 9
_ATTO = Decimal(10) ** 18


def split_money(value: Decimal | None) -> tuple[int | None, int | None]:
    """``value`` as (whole 1e-9 USD, rest in 1e-18 USD): exact for up to 18 decimal places."""
    if value is None:
        return None, None
    atto = value * _ATTO
    if atto != atto.to_integral_value():
        raise ValueError(f"cost {value} has more than 18 decimal places")
    nano, rest = divmod(int(atto), 10**9)
    return nano, rest


def join_money(nano: int | None, atto: int | None) -> Decimal | None:
    """The inverse of ``split_money`` (also for sums of each part)."""
    if nano is None:
        return None
    return (Decimal(nano) * _NANO + Decimal(atto or 0)) / _ATTO


def call_row(call_id: str, record: CallRecord) -> tuple[Any, ...]:
    usage = record.usage
    tokens = tuple(getattr(usage, column) for column in TOKEN_COLUMNS) if usage is not None else (None,) * len(
        TOKEN_COLUMNS)
    azure = record.azure
    units = record.units
    return (
        call_id, record.started_at.astimezone(UTC).isoformat(), record.duration_s, record.time_to_first_token_s,
        record.api, record.operation, int(record.stream), record.provider, record.server_address, record.server_port,
        record.deployment, record.deployment_type, record.region, record.request_model, record.response_model,
        record.response_id, record.api_version, record.status_code, record.outcome, record.error_type,
        record.error_code, *tokens, record.usage_source, int(record.repeat), int(record.provisional),
        int(record.supersedes_estimate), record.attempt, record.correlation_id, record.trace_id, record.span_id,
        azure.region, azure.apim_request_id, azure.request_id, azure.client_request_id,
        json.dumps(record.attributes, sort_keys=True, ensure_ascii=False),
        record.requested_service_tier, record.service_tier, int(record.service_tier_assumed),
        *(_NO_UNITS if units is None else (*(getattr(units, name) for name in _UNIT_NAMES), units.image_variant)),
        json.dumps(list(record.budgets), ensure_ascii=False) if record.budgets else None,
    )


def cost_row(call_id: str, record: CallRecord, recorded_at: datetime) -> tuple[Any, ...] | None:
    """The cost as reported with the call (``None`` when the call has no cost: no usage, or pricing off)."""
    return None if record.cost is None else cost_values(call_id, record.cost, recorded_at, reported=True)


def cost_values(call_id: str, cost: CallCost, recorded_at: datetime, reported: bool) -> tuple[Any, ...]:
    """One ``costs`` row (``COST_COLUMNS``), current: the cost recorded with the call (``reported``), or a
    re-pricing of it (``meter reprice``). Both write it here, so a re-priced row reads like a reported one."""
    nano, atto = split_money(cost.total)
    return (
        call_id, cost.table_version, recorded_at.astimezone(UTC).isoformat(), reported, True, _money(cost.total),
        nano, atto, cost.currency, cost.basis, cost.estimated, cost.model, cost.deployment_type, cost.region,
        json.dumps({k: _money(v) for k, v in cost.amounts.items()}, sort_keys=True),
        json.dumps({k: _money(v) for k, v in cost.unit_prices.items()}, sort_keys=True),
        json.dumps(list(cost.row_ids)), cost.reason,
    )


_UNIT_NAMES = tuple(kind.name for kind in UNIT_KINDS)
_NO_UNITS = (None,) * len(UNIT_COLUMNS)


def units_of(values: Sequence[Any]) -> Units | None:
    """The ``Units`` back from a row's ``UNIT_COLUMNS`` values (``None``: a call billed by tokens)."""
    *amounts, variant = values
    if all(value is None for value in amounts):
        return None
    counts = {name: value or 0 for name, value in zip(_UNIT_NAMES, amounts, strict=True)}
    return Units(**counts, image_variant=variant)


def usage_of(values: Sequence[Any]) -> Usage:
    """The ``Usage`` back from a row's ``TOKEN_COLUMNS`` values, in that order (NULL is 0)."""
    return Usage(**{name: int(value or 0) for name, value in zip(TOKEN_COLUMNS, values, strict=True)})


_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)
_CALL_BOUNDS = tuple(_INT32 if column in INT32_COLUMNS else _INT64 for column in CALL_COLUMNS)
_COST_BOUNDS = tuple(_INT64 for _ in COST_COLUMNS)


def _storable(value: Any, bounds: tuple[int, int]) -> Any:
    if isinstance(value, str):
        if "\x00" in value or not _encodes(value):
            return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
        return value
    if type(value) is int and not bounds[0] <= value <= bounds[1]:
        return None
    if type(value) is float and not math.isfinite(value):
        return None
    return value


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _repaired_row(row: tuple[Any, ...], bounds: tuple[tuple[int, int], ...]) -> tuple[Any, ...]:
    return tuple(_storable(value, bound) for value, bound in zip(row, bounds, strict=False))


def repaired(pair: tuple[tuple[Any, ...], tuple[Any, ...] | None]) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """A call row and its cost row with every value made storable: text without NUL or lone surrogates
    (each becomes ``?``), integers out of their column's range and non-finite numbers made NULL.

    The writer's last try for a row the database refused as it was. Values are normally made storable
    where they enter meter (``meter.core``); this is the ledger's own guard, so that one value nobody
    foresaw costs one row, never the ledger.
    """
    call, cost = pair
    return _repaired_row(call, _CALL_BOUNDS), None if cost is None else _repaired_row(cost, _COST_BOUNDS)
