"""Periods are UTC: calendar days, weeks from Monday and months, across month and year ends; rolling windows."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from meter.budgets import parse_period, period_window


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("period", "at", "start", "end"), [
    ("day", utc(2026, 3, 14, 23, 59, 59, 999999), utc(2026, 3, 14), utc(2026, 3, 15)),
    ("day", utc(2026, 3, 15), utc(2026, 3, 15), utc(2026, 3, 16)),
    ("day", utc(2026, 12, 31, 12), utc(2026, 12, 31), utc(2027, 1, 1)),
    ("day", utc(2028, 2, 28, 12), utc(2028, 2, 28), utc(2028, 2, 29)),  # a leap year
    ("week", utc(2026, 12, 7, 0, 0), utc(2026, 12, 7), utc(2026, 12, 14)),  # a Monday starts its own week
    ("week", utc(2026, 12, 13, 23, 59, 59), utc(2026, 12, 7), utc(2026, 12, 14)),  # Sunday ends it
    ("week", utc(2027, 1, 2, 8), utc(2026, 12, 28), utc(2027, 1, 4)),  # across the year end
    ("month", utc(2026, 1, 31, 23, 59, 59, 999999), utc(2026, 1, 1), utc(2026, 2, 1)),
    ("month", utc(2026, 2, 1), utc(2026, 2, 1), utc(2026, 3, 1)),
    ("month", utc(2028, 2, 29, 12), utc(2028, 2, 1), utc(2028, 3, 1)),
    ("month", utc(2026, 12, 31, 23, 59, 59, 999999), utc(2026, 12, 1), utc(2027, 1, 1)),  # the year end
    ("month", utc(2027, 1, 1), utc(2027, 1, 1), utc(2027, 2, 1)),
    ("24h", utc(2026, 3, 1, 6), utc(2026, 2, 28, 6), utc(2026, 3, 1, 6)),
    ("7d", utc(2027, 1, 3), utc(2026, 12, 27), utc(2027, 1, 3)),
])
def test_windows(period: str, at: datetime, start: datetime, end: datetime) -> None:
    assert period_window(period, at) == (start, end)


def test_utc_has_no_daylight_saving_and_offsets_are_converted() -> None:
    """Europe's clocks went forward on 2026-03-29 and back on 2026-10-25: a UTC day stays 24 hours; an instant
    given with an offset, or naive (taken as UTC), falls in the UTC period of that instant."""
    for day in (utc(2026, 3, 29, 12), utc(2026, 10, 25, 12), utc(2026, 3, 8, 12), utc(2026, 11, 1, 12)):
        start, end = period_window("day", day)
        assert end - start == timedelta(hours=24)
    paris_summer = timezone(timedelta(hours=2))
    # 00:30 on 1 July in Paris is 22:30 on 30 June UTC: still June's period.
    in_paris = datetime(2026, 7, 1, 0, 30, tzinfo=paris_summer)
    assert period_window("month", in_paris) == (utc(2026, 6, 1), utc(2026, 7, 1))
    assert period_window("month", datetime(2026, 7, 1, 0, 30)) == (utc(2026, 7, 1), utc(2026, 8, 1))


def test_a_naive_instant_is_utc_whatever_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine set to New York, 22:30 naive on 30 June is still June 30th UTC (not 02:30 on 1 July)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert period_window("day", datetime(2026, 6, 30, 22, 30)) == (utc(2026, 6, 30), utc(2026, 7, 1))
    finally:
        monkeypatch.undo()
        time.tzset()


def test_every_instant_of_a_year_falls_in_exactly_one_period() -> None:
    """Consecutive periods tile time: each end is the next start, and a week always starts on a Monday."""
    for period in ("day", "week", "month"):
        at = utc(2026, 12, 1)
        previous_end = None
        for _ in range(60):
            start, end = period_window(period, at)
            assert start <= at < end
            if previous_end is not None:
                assert start == previous_end
            if period == "week":
                assert start.weekday() == 0 and end - start == timedelta(days=7)
            previous_end = end
            at = end


def test_the_ends_of_time_do_not_overflow() -> None:
    assert period_window("month", utc(9999, 12, 31, 23))[1] == datetime.max.replace(tzinfo=UTC)
    assert period_window("day", utc(9999, 12, 31, 23))[1] == datetime.max.replace(tzinfo=UTC)
    assert period_window("24h", utc(1, 1, 1, 1))[0] == datetime.min.replace(tzinfo=UTC)


@pytest.mark.parametrize("text", ["1h", "24h", "7d", "366d", "8784h"])
def test_rolling_periods(text: str) -> None:
    period = parse_period(text)
    assert period.kind == "rolling" and period.length is not None and period.text == text


@pytest.mark.parametrize("text", ["", "0d", "1.5h", "-1d", "24H", "1w", "367d", "8785h", "9999999d", " day", "Month"])
def test_bad_periods(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_period(text)
    assert "\n" not in str(caught.value)
