"""``BudgetLedger``: reserve, then settle; hard budgets refuse atomically, soft ones count; alerts once per
threshold per period; memory bounded by the budgets, not by calls or attribution values."""

from __future__ import annotations

import random
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from meter.budgets import Budget, BudgetLedger, BudgetSet, Refusal, Reservation, WorstCase, load_budgets

D = Decimal


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def budget(name: str = "b", **fields: Any) -> Budget:
    raw: dict[str, Any] = {"name": name, "period": "month", "limit_usd": "10"}
    raw.update(fields)
    (made,) = load_budgets([raw])
    return made


def reserved(result: Reservation | Refusal) -> Reservation:
    assert isinstance(result, Reservation), result
    return result


def refused(result: Reservation | Refusal) -> Refusal:
    assert isinstance(result, Refusal), result
    return result


JAN = datetime(2027, 1, 10, 12, tzinfo=UTC)


def test_reserve_then_settle_moves_the_hold_to_the_spend() -> None:
    b = budget(enforce="hard")
    ledger = BudgetLedger([b], clock=Clock(JAN))
    r = reserved(ledger.reserve("call-1", [b], D("2.5")))
    (status,) = ledger.status()
    assert (status.spent, status.reserved, status.limit) == (0, D("2.5"), D(10))
    assert r.budgets == ("b",) and r.lines[0].period_start == datetime(2027, 1, 1, tzinfo=UTC)
    ledger.settle(r, D("1.2"))
    (status,) = ledger.status()
    assert (status.spent, status.reserved, status.calls) == (D("1.2"), 0, 1)
    assert ledger.settle(r, D("100")) == () and ledger.status()[0].spent == D("1.2"), "a second settle is a no-op"


def test_a_hard_budget_refuses_atomically_naming_the_first_one_exceeded() -> None:
    soft, first, second = budget("soft", limit_usd="1"), budget("first", enforce="hard", limit_usd="5"), \
        budget("second", enforce="hard", limit_usd="3")
    ledger = BudgetLedger([soft, first, second], clock=Clock(JAN))
    ok = reserved(ledger.reserve("a", [soft, first, second], D("2")))
    no = refused(ledger.reserve("b", [soft, first, second], D("3.5")))
    assert no.budget.name == "first" and no.reason == "limit" and no.needed == D("3.5")
    assert (no.spent, no.reserved) == (0, D(2)) and no.reset_at == datetime(2027, 2, 1, tzinfo=UTC)
    assert [s.reserved for s in ledger.status()] == [D(2), D(2), D(2)], "nothing reserved for the refused call"
    assert refused(ledger.reserve("c", [soft, second], D("1.5"))).budget.name == "second"
    assert [s.refused_calls for s in ledger.status()] == [0, 1, 1]
    ledger.settle(ok, D("2"))
    reserved(ledger.reserve("d", [soft, second], D("1")))  # exactly to the limit is allowed
    assert ledger.status()[0].spent + ledger.status()[0].reserved == D(3), "soft budgets never refuse, past 100%"


def test_unpriced_calls_follow_the_documented_rule_never_zero() -> None:
    hard = budget("hard", enforce="hard")
    fallback = budget("fallback", enforce="hard", unpriced_usd="0.5")
    soft = budget("soft")
    ledger = BudgetLedger([hard, fallback, soft], clock=Clock(JAN))
    case = WorstCase(usd=D("0.1"), unpriced="no web_search price")
    no = refused(ledger.reserve("x", [hard, fallback, soft], case))
    assert no.reason == "unpriced" and no.budget.name == "hard" and "no web_search price" in no.message
    r = reserved(ledger.reserve("y", [fallback, soft], case))
    assert [(line.budget.name, line.amount, line.unpriced) for line in r.lines] == [
        ("fallback", D("0.6"), False), ("soft", D("0.1"), True)]
    ledger.settle(r, None)  # the real cost is unknown too: each budget counts what it reserved
    _, fb, sf = ledger.status()
    assert (fb.spent, fb.estimated_calls, fb.unpriced_calls) == (D("0.6"), 1, 0)
    assert (sf.spent, sf.unpriced_calls) == (D("0.1"), 1), "soft: at least the priced part, flagged unpriced"


def test_an_unknown_or_bad_actual_settles_at_the_worst_case_and_so_does_release() -> None:
    b = budget(enforce="hard")
    ledger = BudgetLedger([b], clock=Clock(JAN))
    for actual in (None, D("NaN"), D("-1"), D("Infinity")):
        ledger.settle(reserved(ledger.reserve("c", [b], D("1"))), actual)
    ledger.release(reserved(ledger.reserve("aborted", [b], D("2"))))
    (status,) = ledger.status()
    assert (status.spent, status.reserved, status.estimated_calls) == (D(6), 0, 5)
    no = refused(ledger.reserve("bad", [b], D("-3")))  # a worst case that is no amount: wholly unpriced
    assert no.reason == "unpriced" and no.unpriced == "the worst case Decimal('-3') is not an amount of USD"
    soft = budget("soft")
    bad = reserved(BudgetLedger([soft]).reserve("bad", [soft], D("NaN")))
    assert bad.unpriced is not None and bad.lines[0].unpriced and bad.lines[0].amount == 0


def test_overspend_is_exactly_the_excess_of_real_costs_over_their_worst_cases() -> None:
    b = budget(enforce="hard", limit_usd="1")
    ledger = BudgetLedger([b], clock=Clock(JAN))
    r1 = reserved(ledger.reserve("1", [b], D("0.6")))
    r2 = reserved(ledger.reserve("2", [b], D("0.4")))
    refused(ledger.reserve("3", [b], D("0.01")))
    ledger.settle(r1, D("0.75"))  # 0.15 more than its worst case (its input tokenised denser than estimated)
    ledger.settle(r2, D("0.4"))
    assert ledger.status()[0].spent == D("1.15") == b.limit_usd + D("0.15")


def test_a_call_is_charged_to_the_period_it_started_in_even_when_it_ends_in_the_next() -> None:
    b = budget(enforce="hard", limit_usd="5")
    clock = Clock(datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC))
    ledger = BudgetLedger([b], clock=clock)
    stream = reserved(ledger.reserve("stream", [b], D("4")))
    clock.at = datetime(2027, 2, 1, 0, 0, 5, tzinfo=UTC)
    february = reserved(ledger.reserve("feb", [b], D("5")))  # a new period: the whole limit again
    ledger.settle(stream, D("3"))
    (status,) = ledger.status()
    assert status.period_start == datetime(2027, 2, 1, tzinfo=UTC) and (status.spent, status.reserved) == (0, D(5))
    (january,) = ledger.status(at=datetime(2027, 1, 31, 12, tzinfo=UTC))
    assert (january.spent, january.reserved) == (D(3), 0)
    ledger.settle(february, D("1"))
    assert ledger.status()[0].spent == D(1)


def test_alerts_fire_once_per_threshold_per_period() -> None:
    b = budget(alert_at=["50%", "80%", "100%"], limit_usd="10")
    clock = Clock(JAN)
    ledger = BudgetLedger([b], clock=clock)

    def spend(amount: str) -> list[str]:
        return [e.percent for e in ledger.settle(reserved(ledger.reserve("c", [b], D(amount))), D(amount))]

    assert spend("4") == []
    assert spend("1") == ["50%"]
    assert spend("1") == []
    assert spend("4.5") == ["80%", "100%"], "one settle can cross several thresholds"
    assert spend("5") == [], "past 100% nothing fires again"
    event = ledger.settle(reserved(ledger.reserve("c", [b], D(0))), D(0))
    assert event == ()
    assert ledger.status()[0].alerts_fired == (D("0.5"), D("0.8"), D(1))
    clock.at = datetime(2027, 2, 1, 0, 0, 1, tzinfo=UTC)
    assert spend("6") == ["50%"], "a new period fires again"
    (alert,) = ledger.settle(reserved(ledger.reserve("c", [b], D(3))), D(3))
    assert (alert.budget, alert.spent, alert.limit, alert.period_start) == ("b", D(9), D(10),
                                                                            datetime(2027, 2, 1, tzinfo=UTC))


def test_a_rolling_window_forgets_old_spend_and_reports_when() -> None:
    b = budget(period="24h", enforce="hard", limit_usd="10", alert_at=["50%"])
    clock = Clock(datetime(2027, 1, 10, 0, 0, tzinfo=UTC))
    ledger = BudgetLedger([b], clock=clock)
    assert [e.percent for e in ledger.settle(reserved(ledger.reserve("a", [b], D(6))), D(6))] == ["50%"]
    clock.at += timedelta(hours=12)
    ledger.settle(reserved(ledger.reserve("b", [b], D(3))), D(3))
    no = refused(ledger.reserve("c", [b], D(2)))
    assert no.reset_at == datetime(2027, 1, 11, 0, 15, tzinfo=UTC), "when the first spend's 15-minute bucket leaves"
    clock.at = datetime(2027, 1, 11, 0, 15, tzinfo=UTC)
    assert ledger.status()[0].spent == D(3)
    assert [e.percent for e in ledger.settle(reserved(ledger.reserve("d", [b], D(2))), D(2))] == ["50%"], \
        "re-armed once the spend fell below the threshold"


def test_the_forecast_extends_the_burn_to_the_end_of_the_period() -> None:
    b = budget(period="month", limit_usd="100")
    clock = Clock(datetime(2027, 4, 11, tzinfo=UTC))  # 10 days of April's 30 gone
    ledger = BudgetLedger([b], clock=clock)
    ledger.settle(reserved(ledger.reserve("a", [b], D(10))), D(10))
    hold = reserved(ledger.reserve("b", [b], D(1)))
    (status,) = ledger.status()
    assert status.forecast == D(10) + D(1) + D(10) / 10 * 20 == D(31)
    ledger.release(hold)


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter can, so a check and its update can be split."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def test_sixteen_threads_never_settle_past_a_hard_limit(busy_switching: None) -> None:
    """16 threads reserve, hold (a call in flight), settle at most their worst case, against one hard budget
    and one soft: the settled spend never passes the limit, spent + reserved never does at any instant, and
    every refusal names the hard budget."""
    hard = budget("team-hard", enforce="hard", limit_usd="5")
    soft = budget("all")
    ledger = BudgetLedger([hard, soft])
    start = threading.Barrier(17)
    refusals: list[str] = []
    admitted: list[Decimal] = []
    stop = threading.Event()
    peaks: list[Decimal] = []

    class Yielding(list[Budget]):
        """The matched budgets, handing the interpreter to another thread between two of them: a ledger whose
        check and update were not one atomic step would let two calls pass the same check here."""

        def __iter__(self) -> Iterator[Budget]:
            for item in super().__iter__():
                yield item
                time.sleep(0)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(150):
            worst = D(rng.randint(1, 60)) / 100
            result = ledger.reserve(f"t{seed}", Yielding([hard, soft]), worst)
            if isinstance(result, Refusal):
                refusals.append(result.budget.name)
                continue
            time.sleep(0)
            actual = worst * D(rng.randint(0, 100)) / 100
            admitted.append(actual)
            ledger.settle(result, actual)

    def watch() -> None:
        start.wait()
        while not stop.is_set():
            status = ledger.status()[0]
            peaks.append(status.spent + status.reserved)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    watcher = threading.Thread(target=watch)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    status = ledger.status()[0]
    assert status.reserved == 0 and status.spent == sum(admitted)
    assert status.spent <= hard.limit_usd
    assert max(peaks) <= hard.limit_usd
    assert refusals and set(refusals) == {"team-hard"}
    assert ledger.status()[1].spent == status.spent, "the soft budget saw every admitted call"


def test_ten_thousand_teams_take_bounded_memory() -> None:
    """One budget per team for 10,000 teams, and 10,000 more attribution values that match none: memory grows
    with the budgets charged (a state each: the period and the one before), never with calls or values."""
    budgets = load_budgets([{"name": f"team-{i}", "match": {"team": f"t{i}"}, "period": "day",
                             "limit_usd": "100", "enforce": "hard", "alert_at": ["50%"]} for i in range(10_000)])
    index = BudgetSet(budgets)
    clock = Clock(datetime(2027, 1, 10, tzinfo=UTC))
    ledger = BudgetLedger(budgets, clock=clock)

    def drive(rounds: int) -> None:
        for r in range(rounds):
            for i in range(10_000):
                attributes = {"team": f"t{i}", "user": f"u{r}-{i}"}
                matched = index.budgets_for(attributes, "chat-prod", "gpt-5")
                result = ledger.reserve(f"c{i}", matched, D("0.01"))
                assert isinstance(result, Reservation)
                ledger.settle(result, D("0.005"))
            for i in range(10_000):  # values that match no budget
                assert index.budgets_for({"team": f"nobody-{r}-{i}"}, "chat-prod", "gpt-5") == ()

    tracemalloc.start()
    try:
        drive(1)
        first = tracemalloc.get_traced_memory()[0]
        drive(3)
        same_day = tracemalloc.get_traced_memory()[0]
        clock.at += timedelta(days=1)
        drive(1)
        clock.at += timedelta(days=1)
        drive(2)
        later = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    print(f"\n10,000 team budgets: {first / 1e6:.2f} MB after the first calls, {same_day / 1e6:.2f} MB after "
          f"30,000 more, {later / 1e6:.2f} MB two periods later ({later / 10_000:.0f} bytes a budget)")
    assert same_day - first < 200_000, "more calls in the same period take no more memory"
    assert later < 2 * first + 1_000_000, "a new period replaces the one before the previous"
    assert later / 10_000 < 2_000
    assert sum(s.calls for s in ledger.status()) == 20_000, "today's two rounds"


def test_reserve_and_settle_cost_a_few_microseconds() -> None:
    b = budget(enforce="hard", limit_usd="1000000", alert_at=["50%", "80%"])
    s = budget("soft", match={"team": "a"})
    ledger = BudgetLedger([b, s])
    matched = [b, s]
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        r = ledger.reserve("c", matched, D("0.01"))
        assert isinstance(r, Reservation)
        ledger.settle(r, D("0.005"))
    per_call = (time.perf_counter() - started) / n
    print(f"\nreserve + settle against 2 budgets: {per_call * 1e6:.1f} µs a call")
    assert per_call < 100e-6
