"""What a budget store does, whatever keeps its numbers: the ``BudgetStore`` protocol and its values.

``BudgetLedger`` (``meter.budgets.memory``) keeps them in this process's memory; a store backed by the
ledger's database (PostgreSQL: atomic reservations shared by many processes) is to implement the same
protocol, so the hub, the transports and the proxy never know which one they hold.

The life of a call: ``reserve`` its worst case against every budget it matches before it is sent (or
get a ``Refusal``); when its record arrives, ``settle`` the reservation at the real cost; a call that
ends without one (aborted, cut off) is ``release``\\ d, which settles it at its reserved worst case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from meter.budgets.estimate import WorstCase
from meter.budgets.model import Budget, Enforce


def known_cost(actual: object) -> Decimal | None:
    """A settled cost as the stores take it: a finite amount >= 0, else ``None`` (unknown: the hold counts)."""
    if isinstance(actual, Decimal) and actual.is_finite() and actual >= 0:
        return actual
    return None


def percent(fraction: Decimal) -> str:
    """``Decimal("0.8")`` -> ``"80%"`` (as ``alert_at`` is written)."""
    text = f"{fraction * 100:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


@dataclass(frozen=True, slots=True)
class ReservationLine:
    """What one reservation holds against one budget."""

    budget: Budget
    amount: Decimal
    """Reserved: the call's worst case, plus the budget's ``unpriced_usd`` when part of it is unpriced."""
    unpriced: bool
    """Part of the worst case could not be priced and the budget has no ``unpriced_usd`` (soft budgets only)."""
    period_start: datetime
    period_end: datetime


class Reservation:
    """A call's hold on its budgets, from ``reserve`` until ``settle`` / ``release`` (once; again is a no-op)."""

    __slots__ = ("at", "call", "handles", "id", "lines", "pending", "unpriced", "worst_case")

    def __init__(self, id: int, call: str, at: datetime, worst_case: Decimal, unpriced: str | None,
                 lines: tuple[ReservationLine, ...], handles: tuple[object, ...]) -> None:
        self.id = id
        self.call = call
        self.at = at
        """When the call was reserved: it is charged to the periods this instant falls in."""
        self.worst_case = worst_case
        self.unpriced = unpriced
        self.lines = lines
        self.handles = handles
        """The store's own handle per line (its period state, a row id ...)."""
        self.pending = True
        """Not yet settled or released."""

    @property
    def budgets(self) -> tuple[str, ...]:
        """The names of the budgets the call is charged to (for the record)."""
        return tuple(line.budget.name for line in self.lines)

    def __repr__(self) -> str:
        return (f"Reservation(id={self.id}, call={self.call!r}, worst_case={self.worst_case}, "
                f"budgets={self.budgets!r}, pending={self.pending})")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A call a hard budget does not let through: which budget, why, and when it resets."""

    budget: Budget
    reason: Literal["limit", "unpriced", "db_down"]
    """``limit``: its worst case would take the spend past the limit; ``unpriced``: it cannot be priced and
    the budget has no ``unpriced_usd`` to count it at; ``db_down``: its shared store cannot be reached and the
    budget says ``on_db_down = "closed"``."""
    reset_at: datetime
    """When the budget's period ends (a rolling window: when its oldest spend leaves it)."""
    spent: Decimal
    reserved: Decimal
    needed: Decimal | None
    """What the call would have reserved (``None`` when unpriced)."""
    at: datetime
    unpriced: str | None = None
    """Why the call could not be priced."""

    @property
    def message(self) -> str:
        """One sentence for people: the budget, what is left, and the reset time."""
        name, limit = self.budget.name, self.budget.limit_usd
        reset = self.reset_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.reason == "db_down":
            return (f"Budget {name!r} (hard, {limit} USD per {self.budget.period}) refused this call: its shared "
                    f"store cannot be reached and the budget says on_db_down = \"closed\". Try again at {reset}.")
        if self.reason == "unpriced":
            return (f"Budget {name!r} (hard, {limit} USD per {self.budget.period}) refused this call: its cost "
                    f"cannot be worked out in advance ({self.unpriced}) and the budget sets no unpriced_usd. "
                    f"It resets at {reset}.")
        if self.needed is not None and self.needed > limit:
            return (f"Budget {name!r} (hard, {limit} USD per {self.budget.period}) refused this call: its worst "
                    f"case, {self.needed} USD, is more than the whole limit; lower max_output_tokens. "
                    f"It resets at {reset}.")
        return (f"Budget {name!r} (hard, {limit} USD per {self.budget.period}) refused this call: {self.spent} USD "
                f"spent and {self.reserved} USD held by calls in flight leave too little for its worst case of "
                f"{self.needed} USD. It resets at {reset}.")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A budget's spend reached one of its ``alert_at`` thresholds (once per threshold per period)."""

    budget: str
    threshold: Decimal
    """A fraction of the limit (``Decimal("0.8")`` for ``"80%"``)."""
    spent: Decimal
    limit: Decimal
    period_start: datetime
    period_end: datetime
    at: datetime

    @property
    def percent(self) -> str:
        return percent(self.threshold)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget in its current period: ``meter budgets status`` shows these."""

    name: str
    enforce: Enforce
    period: str
    period_start: datetime
    period_end: datetime
    """The end of a calendar period; for a rolling window, the instant the status was taken."""
    reset_at: datetime
    """When the spend next falls: the period's end; for a rolling window, when its oldest spend leaves it."""
    spent: Decimal
    """Settled spend in the period (priced exactly, or at the worst case when the real cost is unknown)."""
    reserved: Decimal
    """Held by calls in flight."""
    limit: Decimal
    forecast: Decimal
    """Spend by the period's end at the burn so far: ``spent + reserved + spent / elapsed * remaining``; for a
    rolling window, ``spent + reserved`` (a steady burn keeps a rolling window where it is)."""
    calls: int
    """Settled calls."""
    unpriced_calls: int
    """Settled calls whose cost is partly unknown and counted at their priced part only (soft budgets without
    ``unpriced_usd``): the spend is at least ``spent``."""
    estimated_calls: int
    """Settled calls whose real cost was unknown, counted at their reserved worst case."""
    refused_calls: int
    alerts_fired: tuple[Decimal, ...]


class BudgetStore(Protocol):
    """Reservations against budgets, shared by everything that holds this store."""

    def reserve(self, call: str, budgets: Sequence[Budget], worst_case: WorstCase | Decimal, *,
                at: datetime | None = None) -> Reservation | Refusal:
        """Hold ``worst_case`` against every budget in ``budgets`` at once, or refuse (a hard budget only)."""
        ...

    def settle(self, reservation: Reservation, actual: Decimal | None, *,
               at: datetime | None = None) -> tuple[AlertEvent, ...]:
        """Turn the hold into the real cost (``None``: unknown, counted at the worst case); the alerts it fires."""
        ...

    def release(self, reservation: Reservation, *, at: datetime | None = None) -> tuple[AlertEvent, ...]:
        """A call that ended without a cost (aborted): settled at its reserved worst case."""
        ...

    def status(self, at: datetime | None = None) -> list[BudgetStatus]:
        """Every budget of the store in its period at ``at`` (default now), in configured order."""
        ...
