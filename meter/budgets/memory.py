"""``BudgetLedger``: the budget store of one process, in memory (the first ``BudgetStore``).

**The bound.** Every reservation is made under one lock, for all the budgets a call matches at once:
a call is let through only if, for each hard budget it matches, ``spent + reserved + its worst case``
stays within the limit; otherwise nothing is reserved anywhere and the first such budget is named.
So, in one process, however many calls run concurrently, a hard budget's settled spend never exceeds
its limit, **unless a call's real cost exceeds its reserved worst case**; then by exactly that excess:

    settled spend <= limit + sum over settled calls of max(0, real cost - reserved worst case)

A worst case is exact for output (the request's own limit, or the model's maximum) and for tool
calls capped by ``max_tool_calls``; input tokens are estimated (``meter.budgets.estimate``), which is
where an excess can come from. A call whose real cost is unknown settles at its worst case, so it
adds no excess. Soft budgets never refuse: their spend is counted, and alerts say when it crossed.

Memory is bounded by the number of budgets, never by calls or attribution values: one state per
budget that was charged (the current calendar period and the previous one; a rolling window keeps
at most ``ROLLING_BUCKETS + 1`` time buckets), and the reservations of calls in flight.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from meter.budgets.estimate import WorstCase
from meter.budgets.model import Budget
from meter.budgets.periods import as_utc, period_window
from meter.budgets.store import AlertEvent, BudgetStatus, Refusal, Reservation, ReservationLine, known_cost

ROLLING_BUCKETS = 96
"""A rolling window is summed in this many time buckets (a 24h window in 15-minute buckets). The bucket at
the window's start counts whole, so a rolling budget may count up to one bucket of spend older than its
window: it errs towards refusing, never towards overspending."""

_ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Window:
    """One calendar period of one budget."""

    __slots__ = ("calls", "end", "estimated", "fired", "refused", "reserved", "spent", "start", "unpriced")

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.end = end
        self.spent = _ZERO
        self.reserved = _ZERO
        self.fired = 0
        """The ``alert_at`` thresholds fired in this period, one bit each (bit i: ``alert_at[i]``)."""
        self.calls = self.unpriced = self.estimated = self.refused = 0

    def spent_at(self, now: datetime) -> Decimal:
        return self.spent

    def charge(self, bucket: int, amount: Decimal, now: datetime) -> None:
        self.spent += amount

    def reset_at(self, now: datetime) -> datetime:
        return self.end

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        return self.start, self.end


class _Bucket:
    """Settled spend of one time bucket of a rolling window."""

    __slots__ = ("amount", "index")

    def __init__(self, index: int, amount: Decimal) -> None:
        self.index = index
        self.amount = amount


class _Rolling:
    """A rolling window of one budget: settled spend in time buckets, reservations in flight apart."""

    __slots__ = ("bucket_s", "buckets", "calls", "estimated", "fired", "length", "length_s", "refused", "reserved",
                 "total", "unpriced")

    def __init__(self, length: timedelta) -> None:
        self.length = length
        self.length_s = int(length.total_seconds())
        self.bucket_s = max(1, -(-self.length_s // ROLLING_BUCKETS))
        self.buckets: deque[_Bucket] = deque()  # oldest first
        self.total = _ZERO
        self.reserved = _ZERO
        self.fired = 0
        self.calls = self.unpriced = self.estimated = self.refused = 0

    def bucket_of(self, at: datetime) -> int:
        return math.floor(at.timestamp()) // self.bucket_s

    def _first_kept(self, now: datetime) -> int:
        """The bucket the window ``(now - length, now]`` begins in."""
        return (math.floor(now.timestamp()) - self.length_s) // self.bucket_s

    def _prune(self, now: datetime) -> None:
        """Drop the buckets that ended before the window begins."""
        first_kept = self._first_kept(now)
        buckets = self.buckets
        while buckets and buckets[0].index < first_kept:
            self.total -= buckets.popleft().amount

    def spent_at(self, now: datetime) -> Decimal:
        self._prune(now)
        return self.total

    def charge(self, bucket: int, amount: Decimal, now: datetime) -> None:
        self._prune(now)
        if bucket < self._first_kept(now):
            return  # its time has already left the window
        buckets = self.buckets
        if not buckets or buckets[-1].index < bucket:
            buckets.append(_Bucket(bucket, amount))
        else:  # a call reserved earlier than the last charge: found from the newest end
            for i in range(len(buckets) - 1, -1, -1):
                if buckets[i].index == bucket:
                    buckets[i].amount += amount
                    break
                if buckets[i].index < bucket:
                    buckets.insert(i + 1, _Bucket(bucket, amount))
                    break
            else:
                buckets.appendleft(_Bucket(bucket, amount))
        self.total += amount

    def reset_at(self, now: datetime) -> datetime:
        self._prune(now)
        if not self.buckets:
            return now
        return _EPOCH + timedelta(seconds=(self.buckets[0].index + 1) * self.bucket_s) + self.length

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        try:
            return now - self.length, now
        except OverflowError:
            return datetime.min.replace(tzinfo=UTC), now


_State = _Window | _Rolling


class _Calendar:
    """A calendar budget's current period and the one before it (late settlements of its calls land there)."""

    __slots__ = ("current", "previous")

    def __init__(self) -> None:
        self.current: _Window | None = None
        self.previous: _Window | None = None


class BudgetLedger:
    """The in-memory ``BudgetStore``: thread-safe, every change under one lock (see the module docstring).

    ``clock`` returns the current time (aware UTC); tests pass their own.
    """

    def __init__(self, budgets: Iterable[Budget] = (), *, clock: Callable[[], datetime] | None = None) -> None:
        self.budgets: tuple[Budget, ...] = tuple(budgets)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._calendar: dict[str, _Calendar] = {}
        self._rolling: dict[str, _Rolling] = {}

    # ---- the state of one budget ---------------------------------------------------------------

    def _state(self, budget: Budget, at: datetime, create: bool = True) -> _State | None:
        """The budget's state for the period ``at`` falls in (made when missing, if ``create``)."""
        if budget.window.kind == "rolling":
            rolling = self._rolling.get(budget.name)
            if rolling is None and create:
                assert budget.window.length is not None
                rolling = self._rolling[budget.name] = _Rolling(budget.window.length)
            return rolling
        calendar = self._calendar.get(budget.name)
        if calendar is None:
            if not create:
                return None
            calendar = self._calendar[budget.name] = _Calendar()
        current = calendar.current
        if current is not None and current.start <= at < current.end:
            return current
        previous = calendar.previous
        if previous is not None and previous.start <= at < previous.end:
            return previous
        if not create:
            return None
        start, end = period_window(budget.window, at)
        window = _Window(start, end)
        if current is None or start >= current.end:  # a new period: the current one becomes the previous
            calendar.previous, calendar.current = current, window
        else:  # an instant older than the current period (a clock stepped back): keep it as the previous
            calendar.previous = window
        return window

    # ---- BudgetStore ---------------------------------------------------------------------------

    def reserve(self, call: str, budgets: Sequence[Budget], worst_case: WorstCase | Decimal, *,
                at: datetime | None = None) -> Reservation | Refusal:
        """Hold the call's worst case against every budget in ``budgets``, atomically, or refuse.

        A hard budget refuses when ``spent + reserved + amount > limit``, or when part of the call cannot
        be priced and it has no ``unpriced_usd``; the first such budget (in the order given) is named and
        nothing is reserved. Soft budgets never refuse. The amount held against a budget is the priced
        worst case, plus the budget's ``unpriced_usd`` when part of the call could not be priced.
        """
        usd, unpriced = _amount(worst_case)
        with self._lock:
            now = self._clock()
            when = now if at is None else as_utc(at)
            lines: list[ReservationLine] = []
            handles: list[_State] = []
            for budget in budgets:
                state = self._state(budget, when)
                assert state is not None
                amount = usd
                unpriced_line = False
                if unpriced is not None:
                    if budget.unpriced_usd is not None:
                        amount = usd + budget.unpriced_usd
                    elif budget.enforce == "hard":
                        state.refused += 1
                        return Refusal(budget, "unpriced", state.reset_at(when), state.spent_at(when), state.reserved,
                                       None, when, unpriced)
                    else:
                        unpriced_line = True
                if budget.enforce == "hard":
                    spent = state.spent_at(when)
                    if spent + state.reserved + amount > budget.limit_usd:
                        state.refused += 1
                        return Refusal(budget, "limit", state.reset_at(when), spent, state.reserved, amount, when,
                                       unpriced)
                start, end = state.bounds(when)
                lines.append(ReservationLine(budget, amount, unpriced_line, start, end))
                handles.append(state)
            for line, state in zip(lines, handles, strict=True):
                state.reserved += line.amount
            return Reservation(next(self._ids), call, when, usd, unpriced, tuple(lines), tuple(handles))

    def settle(self, reservation: Reservation, actual: Decimal | None, *,
               at: datetime | None = None) -> tuple[AlertEvent, ...]:
        """The call's real cost replaces its hold in each of its budgets' periods (the periods it was reserved
        in, even if they have ended since). ``actual=None`` (unknown, or not a finite amount >= 0) counts
        the reserved amount. Returns the alert thresholds this crossed, each once per period."""
        actual = known_cost(actual)
        events: list[AlertEvent] = []
        with self._lock:
            if not reservation.pending:
                return ()
            reservation.pending = False
            now = self._clock() if at is None else as_utc(at)
            for line, handle in zip(reservation.lines, reservation.handles, strict=True):
                state = handle
                assert isinstance(state, (_Window, _Rolling))
                state.reserved -= line.amount
                state.calls += 1
                if actual is not None:
                    charge = actual
                else:
                    charge = line.amount
                    if line.unpriced:
                        state.unpriced += 1
                    else:
                        state.estimated += 1
                bucket = 0
                if isinstance(state, _Rolling):
                    bucket = state.bucket_of(reservation.at)
                    if state.fired:  # a threshold the window's spend has fallen back below is armed again
                        spent, limit = state.spent_at(now), line.budget.limit_usd
                        state.fired &= sum(1 << i for i, fraction in enumerate(line.budget.alert_at)
                                           if spent >= fraction * limit)
                state.charge(bucket, charge, now)
                events.extend(_alerts(line.budget, state, now))
        return tuple(events)

    def release(self, reservation: Reservation, *, at: datetime | None = None) -> tuple[AlertEvent, ...]:
        """A call that ended without a cost (aborted, cut off before its usage): settled at its worst case."""
        return self.settle(reservation, None, at=at)

    def status(self, at: datetime | None = None) -> list[BudgetStatus]:
        """Every budget in its period at ``at`` (default now), in configured order; a budget never charged
        shows zeros."""
        with self._lock:
            now = self._clock() if at is None else as_utc(at)
            return [self._status(budget, now) for budget in self.budgets]

    def _status(self, budget: Budget, now: datetime) -> BudgetStatus:
        state = self._state(budget, now, create=False)
        if state is None:
            state = _Rolling(budget.window.length) if budget.window.length is not None else _Window(
                *period_window(budget.window, now))
        spent = state.spent_at(now)
        start, end = state.bounds(now)
        forecast = spent + state.reserved
        if isinstance(state, _Window):
            elapsed = (now - start) // timedelta(microseconds=1)
            remaining = (end - now) // timedelta(microseconds=1)
            if elapsed > 0 and remaining > 0:
                forecast += spent * remaining / elapsed
        return BudgetStatus(
            name=budget.name, enforce=budget.enforce, period=budget.period, period_start=start, period_end=end,
            reset_at=state.reset_at(now), spent=spent, reserved=state.reserved, limit=budget.limit_usd,
            forecast=forecast, calls=state.calls, unpriced_calls=state.unpriced, estimated_calls=state.estimated,
            refused_calls=state.refused,
            alerts_fired=tuple(fraction for i, fraction in enumerate(budget.alert_at) if state.fired >> i & 1))


def _amount(worst_case: WorstCase | Decimal) -> tuple[Decimal, str | None]:
    """The priced worst case and why part of it is unpriced; a bad amount is wholly unpriced, never $0."""
    if isinstance(worst_case, WorstCase):
        usd, unpriced = worst_case.usd, worst_case.unpriced
    else:
        usd, unpriced = worst_case, None
    if not isinstance(usd, Decimal) or not usd.is_finite() or usd < 0:
        return _ZERO, f"the worst case {usd!r} is not an amount of USD"
    return usd, unpriced


def _alerts(budget: Budget, state: _State, now: datetime) -> list[AlertEvent]:
    """The thresholds the budget's spend has reached and not yet fired in this period (a rolling window re-arms
    a threshold once its spend has fallen back below it: ``settle``)."""
    if not budget.alert_at:
        return []
    spent = state.spent_at(now)
    limit = budget.limit_usd
    events = []
    for i, fraction in enumerate(budget.alert_at):
        if not state.fired >> i & 1 and spent >= fraction * limit:
            state.fired |= 1 << i
            start, end = state.bounds(now)
            events.append(AlertEvent(budget.name, fraction, spent, limit, start, end, now))
    return events
