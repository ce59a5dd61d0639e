"""What one record adds to the metrics: the rule every metric sink follows (Prometheus and OpenTelemetry).

The token and cost counters hold only usage the service reported; estimates go to their own
counters, and a provisional estimate (its real usage may still come) to none, so no total ever
holds an id twice. Written once here, below the sinks that use it.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

from meter import names
from meter.core.record import CallRecord
from meter.core.units import UnitKind
from meter.core.usage_kinds import UsageKind

PROMETHEUS_KINDS: tuple[UsageKind | UnitKind, ...] = (*names.PROMETHEUS_USAGE_KINDS, *names.PROMETHEUS_UNIT_KINDS)
"""Every family counted per record, usage kinds then unit kinds (each has a ``name`` and a ``help``)."""
_usage_counts = operator.attrgetter(*(kind.name for kind in names.PROMETHEUS_USAGE_KINDS))
_unit_counts = operator.attrgetter(*(kind.name for kind in names.PROMETHEUS_UNIT_KINDS))
_NO_USAGE = (0,) * len(names.PROMETHEUS_USAGE_KINDS)
_SEEN = frozenset(i for i, kind in enumerate(names.PROMETHEUS_USAGE_KINDS) if kind.counted_from == "output")
"""Positions of the kinds counted from the output items (tool calls): exact even in an estimated usage."""
_NO_UNITS = (0,) * len(names.PROMETHEUS_UNIT_KINDS)


class Increments(NamedTuple):
    """What one record adds to the metrics: the rule both stores (and the OTel sink) follow.

    The token and cost counters hold only usage the service reported; estimates go
    to their own counters, and a provisional estimate (its real usage may still come)
    to none, so no total ever holds an id twice.
    """

    tokens: tuple[float, ...] | None
    """One count per kind of ``PROMETHEUS_KINDS``, in its order (seconds of audio are not whole)."""
    cost: float | None
    estimated: bool
    estimated_tokens: tuple[int, int] | None
    estimated_cost: float | None
    unpriced: bool


def increments(record: CallRecord) -> Increments:
    usage = record.usage
    cost = record.cost
    total = None if cost is None or cost.total is None else float(cost.total)  # float64 in Prometheus
    if usage is not None and record.usage_source == "estimated":
        counted = not record.provisional
        # The tool calls a stream showed before it was cut off were seen, not estimated: they count.
        seen = tuple(n if i in _SEEN else 0 for i, n in enumerate(_usage_counts(usage))) + _NO_UNITS
        return Increments(seen if counted and any(seen) else None, None, True,
                          (usage.input_tokens, usage.output_tokens) if counted else None,
                          total if counted else None, cost is not None and cost.total is None)
    tokens = None
    units = record.units
    if usage is not None:
        tokens = _usage_counts(usage) + (_NO_UNITS if units is None else _unit_counts(units))
    elif units is not None:
        tokens = _NO_USAGE + _unit_counts(units)
    return Increments(tokens, total, False, None, None, cost is not None and cost.total is None)
