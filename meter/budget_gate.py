"""Budgets at the call: reserve a call's worst case before it is sent, settle its real cost when it ends.

The hub asks ``reserve`` once a call is recognised, with the request already parsed: the call is
matched to its budgets, its worst case priced the way the call will be (the model, deployment type
and tier meter prices it at), and held against every matched budget at once. A hard budget that
would be passed refuses: the transport then answers the caller with meter's own 429 (Azure's error
shape, ``budget_exceeded``, ``x-should-retry: false``) and never sends the request. When the record
is built, ``settle`` turns the hold into what the call cost:

- a priced call with the service's usage: its cost;
- an error the service answered (4xx/5xx, meter's own 429 included): nothing (Azure bills no
  failed request); a repeat (a response retrieved again, its usage counted by an earlier record): nothing;
- a call spent before meter saw it (a Batch output download, a response retrieved, resumed or
  cancelled; ``WorstCase.spent_before``): never refused, held at 0, settled by these same rules;
- a priced call whose only unpriced part is a built-in tool's fee Azure publishes no price for (web
  search): the part that is priced, exactly (its worst case has the same unknown part);
- anything else (a stream cut off, a transport error, estimated or unpriced usage): its reserved
  worst case, so an unknown is never $0.

Without a ledger the store is this process's (``meter.budgets.BudgetLedger``); with
``Meter(ledger=...)`` it is shared through the ledger's database (``meter.budget_store``, issue 24).
Thread-safe: the store locks; the refusal counts are under a lock of their own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from meter.budgets import (
    AlertEvent,
    Budget,
    BudgetLedger,
    BudgetSet,
    BudgetStore,
    Refusal,
    RefusalAnswer,
    Reservation,
    WorstCase,
    load_budgets,
    refusal_answer,
    worst_case,
)
from meter.budgets.shared import SharedBudgets
from meter.core.faults import FaultKind, Guard
from meter.core.record import CallRecord
from meter.core.start import CallStart
from meter.costing import Costing
from meter.pricing.model import ANY_MODEL_KINDS

logger = logging.getLogger("meter")

BudgetsOption = str | Sequence[Mapping[str, Any] | Budget] | None
"""``Meter(budgets=...)``: a budgets.toml path, or the budgets themselves (mappings as in the file)."""


class BudgetGate:
    """The budgets of one Meter: which a call matches, its hold, its settlement, the refusals."""

    def __init__(self, budgets: tuple[Budget, ...], costing: Costing, store: BudgetStore | None = None) -> None:
        self.budgets = budgets
        self.store: BudgetStore = store if store is not None else BudgetLedger(budgets)
        """``BudgetLedger`` (this process) without a ledger; with one, ``SharedBudgets`` on its database."""
        self._set = BudgetSet(budgets)
        self._hard = {budget.name: budget.hard for budget in budgets}
        self._costing = costing
        self._lock = threading.Lock()
        self._refused: dict[str, int] = {}
        self.on_alert: list[Callable[[AlertEvent], None]] = []
        """Called with each alert a settlement fires (the OTel event, ``Meter(otel_events=True)``), after the
        log line. A shared store fires an alert in the heartbeat that writes the spend (on its thread, up to
        ``flush_s`` after the settle), in one process only."""
        self.on_refused: list[Callable[[str], None]] = []
        """Called with the budget's name for each call refused (the multiprocess files count it at once)."""
        self.on_settled: list[Callable[[], None]] = []
        """Called after each settlement (the multiprocess files then refresh the gauges soon)."""
        self.shared = not isinstance(self.store, BudgetLedger)
        """The store is shared by many processes (a ledger's database): every worker sees the same figures."""
        if isinstance(self.store, SharedBudgets):
            self.store.on_alert = self._alert_later

    @classmethod
    def load(cls, source: BudgetsOption, costing: Costing | None, ledger: str | os.PathLike[str] | None = None,
             guard: Mapping[FaultKind, Guard] | None = None) -> BudgetGate | None:
        """The gate for ``Meter(budgets=...)``, or ``None`` without budgets; a bad file raises now (one line
        naming the file, the budget and the field), never inside a call. With ``Meter(ledger=...)`` the budgets
        are shared through the ledger's database (``meter.budget_store``); a hard budget let through while it
        is unreachable is the fault ``budget_db_down``, reported to ``guard``."""
        if source is None:
            return None
        budgets = load_budgets(source)
        if not budgets:
            return None
        if costing is None:
            raise ValueError("budgets need pricing: Meter(budgets=...) cannot be used with price_book=False")
        if ledger is None:
            return cls(budgets, costing)
        from meter.budget_store import shared_budgets

        def db_down(budget: Budget, exc: BaseException) -> None:
            if guard is not None:
                guard["budget_db_down"].report("budget_db_down", exc)

        return cls(budgets, costing, shared_budgets(os.fspath(ledger), budgets, on_db_down=db_down))

    def close(self) -> None:
        """A shared store writes what it holds and gives its leases back (a no-op in memory)."""
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    def reserve(self, start: CallStart, deployment: str | None, body: Mapping[str, Any] | None,
                tier: str | None) -> Reservation | RefusalAnswer | None:
        """Hold the call's worst case against its budgets: the reservation, the 429 to answer, or ``None``."""
        matched = self._set.budgets_for(start.attributes, deployment, start.info.model)
        if not matched:
            return None
        at = datetime.fromtimestamp(start.started_ns / 1e9, UTC)
        model, deployment_type, region = self._costing.pricing_key(deployment, at, tier)
        case = worst_case(body, api=start.route.api, model=model, price_book=self._costing.book,
                          deployment_type=deployment_type, region=region, at=at, operation=start.route.operation,
                          requested_model=start.info.model)
        if case.spent_before:
            return self._reserve_spent(start.correlation_id or "", matched, case, at)
        held = self.store.reserve(start.correlation_id or "", matched, case, at=at)
        if isinstance(held, Refusal):
            with self._lock:
                self._refused[held.budget.name] = self._refused.get(held.budget.name, 0) + 1
            logger.info("meter: budget %r refused a call (%s); it resets at %s", held.budget.name, held.reason,
                        held.reset_at.isoformat())
            for refused in self.on_refused:
                refused(held.budget.name)
            return refusal_answer(held)
        return held

    def holds_hard(self, reservation: Reservation) -> bool:
        """Does this hold count against a hard budget (one that may refuse the next call)?"""
        return any(self._hard.get(name, False) for name in reservation.budgets)

    def _reserve_spent(self, call: str, matched: Sequence[Budget], case: WorstCase,
                       at: datetime) -> Reservation | None:
        """A call whose cost was spent before it (a Batch output download, a response retrieved) is never
        refused: refusing it would save nothing. It holds 0, so it settles at its real cost. A hard budget
        that refuses even 0 (already past its limit, or its database down with ``closed``) is left out of the
        hold (the store counts that refusal), and the call is charged to the others."""
        remaining = list(matched)
        while remaining:
            held = self.store.reserve(call, remaining, case, at=at)
            if not isinstance(held, Refusal):
                return held
            logger.info("meter: budget %r (%s) is not charged a call spent before it (%s); the call goes through",
                        held.budget.name, held.reason, case.output_from)
            remaining = [budget for budget in remaining if budget.name != held.budget.name]
        return None

    def settle(self, reservation: Reservation, record: CallRecord) -> tuple[AlertEvent, ...]:
        """Turn the hold into what the call cost (see the module docstring); the alerts it fires."""
        cost = record.cost
        actual: Decimal | None = None
        if record.outcome == "http_error" or record.repeat:
            # Azure bills no failed request; a repeat's usage (a response retrieved again) was counted by its first.
            actual = Decimal(0)
        elif record.outcome == "ok" and record.usage_source != "estimated" and cost is not None:
            if cost.total is not None:
                actual = cost.total
            elif cost.amounts and all(kind in ANY_MODEL_KINDS for kind, amount in cost.amounts.items()
                                      if amount is None):
                # Only a tool fee no one publishes (web search on Azure) is unknown: the rest is exact, and
                # the worst case has the same unknown part (it would charge the whole output cap instead).
                actual = sum((amount for amount in cost.amounts.values() if amount is not None), Decimal(0))
        events = self.store.settle(reservation, actual, at=record.started_at)
        for event in events:
            self._alert(event)
        for settled in self.on_settled:
            settled()
        return events

    def _alert(self, event: AlertEvent) -> None:
        logger.warning("meter: budget %r reached %s of its %s USD limit (%s USD spent this period)",
                       event.budget, f"{event.threshold:%}", event.limit, event.spent)
        for listener in self.on_alert:
            listener(event)

    def _alert_later(self, event: AlertEvent) -> None:
        """An alert the shared store fired in a transaction (the heartbeat's thread, or a take in ``reserve``):
        a listener that raises is logged, never raised into a call."""
        try:
            self._alert(event)
        except Exception:
            logger.exception("meter: a budget alert listener failed")

    def refused(self) -> dict[str, int]:
        """Calls refused so far, by budget."""
        with self._lock:
            return dict(self._refused)


def charged_to(reservation: Reservation | None) -> tuple[str, ...]:
    """The names of the budgets a call was charged to (``CallRecord.budgets``)."""
    if reservation is None:
        return ()
    return tuple(line.budget.name for line in reservation.lines)
