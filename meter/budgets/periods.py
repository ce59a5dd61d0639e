"""A budget's period: a UTC calendar day, week or month, or a rolling window ("24h", "7d").

Pure: no clock is read here; every function takes the instant it is about. Calendar periods are
UTC, so there is no daylight-saving hour to gain or lose: a day is always 24 hours, a week starts on
Monday 00:00 UTC, a month on the 1st 00:00 UTC. Windows are half-open, ``[start, end)``: the end of one
period is the start of the next, and it is the reset time a refused call is told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

PeriodKind = Literal["day", "week", "month", "rolling"]

MAX_ROLLING = timedelta(days=366)
"""The longest rolling window a budget may have (a longer one is a typo, or a hostile file)."""

_ROLLING = re.compile(r"([1-9][0-9]{0,5})([hd])")
_CALENDAR: dict[str, PeriodKind] = {"day": "day", "week": "week", "month": "month"}
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """A parsed period: its kind, and for a rolling window its length."""

    text: str
    """As written, canonical: ``"day"``, ``"week"``, ``"month"``, or ``"<N>h"`` / ``"<N>d"``."""
    kind: PeriodKind
    length: timedelta | None = None
    """A rolling window's length; ``None`` for calendar periods."""


def parse_period(text: object) -> Period:
    """``"day"`` | ``"week"`` | ``"month"`` | a rolling ``"<N>h"`` or ``"<N>d"`` (1 hour to 366 days).

    Raises ``ValueError`` with a one-line reason for anything else.
    """
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a period; write one of \"day\", \"week\", \"month\" or a rolling "
                         "window like \"24h\" or \"7d\"")
    calendar = _CALENDAR.get(text)
    if calendar is not None:
        return Period(text, calendar)
    found = _ROLLING.fullmatch(text)
    if found is None:
        raise ValueError(f"{text[:40]!r} is not a period; write one of \"day\", \"week\", \"month\" (UTC calendar) "
                         "or a rolling window like \"24h\" or \"7d\"")
    count = int(found.group(1))
    length = timedelta(hours=count) if found.group(2) == "h" else timedelta(days=count)
    if length > MAX_ROLLING:
        raise ValueError(f"{text!r} is longer than the longest rolling window, {MAX_ROLLING.days}d")
    return Period(text, "rolling", length)


def as_utc(at: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC (as ``PriceBook`` takes it)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def period_window(period: Period | str, at: datetime) -> tuple[datetime, datetime]:
    """The window ``[start, end)`` in UTC that ``at`` falls in.

    Calendar periods: the UTC day, the week from Monday, the month from the 1st; ``end`` is the next
    period's start (the reset time). A rolling window: ``(at - length, at)``, the spend it sums; its
    reset is when the oldest spend in it leaves the window, which only the ledger knows
    (``BudgetLedger`` reports it), and is never later than ``at + length``.
    """
    parsed = period if isinstance(period, Period) else parse_period(period)
    at = as_utc(at)
    if parsed.kind == "rolling":
        assert parsed.length is not None
        try:
            return at - parsed.length, at
        except OverflowError:
            return datetime.min.replace(tzinfo=UTC), at
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if parsed.kind == "day":
        start, step = day, timedelta(days=1)
    elif parsed.kind == "week":
        try:
            start = day - timedelta(days=day.weekday())
        except OverflowError:
            start = datetime.min.replace(tzinfo=UTC)
        step = timedelta(days=7)
    else:
        start = day.replace(day=1)
        try:
            end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(
                month=start.month + 1)
        except ValueError:  # December of year 9999
            end = _END_OF_TIME
        return start, end
    try:
        return start, start + step
    except OverflowError:
        return start, _END_OF_TIME
