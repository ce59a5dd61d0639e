"""Budgets: spend limits per team, feature, deployment or model, checked before a call is sent.

The pure core (this first step of issue 24): what a budget is and how it is loaded
(``load_budgets``, ``Budget``), its periods (``period_window``), which budgets a call matches
(``BudgetSet``), a call's worst-case cost from its request (``worst_case``), the reservations and
settlements against budgets (``BudgetStore``, the in-memory ``BudgetLedger``), and the HTTP 429
meter answers when a hard budget refuses (``refusal_answer``). No I/O but reading a budgets file
(``meter.budgets.loader``). See ``docs/budgets.md``.
"""

from meter.budgets.errors import BudgetFileError, Problem
from meter.budgets.estimate import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    MODEL_MAX_OUTPUT_TOKENS,
    WorstCase,
    max_output_tokens_of,
    worst_case,
)
from meter.budgets.loader import load_budgets
from meter.budgets.matching import BudgetSet, budgets_for
from meter.budgets.memory import BudgetLedger
from meter.budgets.model import Budget
from meter.budgets.periods import Period, parse_period, period_window
from meter.budgets.refusal import RefusalAnswer, refusal_answer, retry_after_seconds
from meter.budgets.store import AlertEvent, BudgetStatus, BudgetStore, Refusal, Reservation, ReservationLine

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "MODEL_MAX_OUTPUT_TOKENS",
    "AlertEvent",
    "Budget",
    "BudgetFileError",
    "BudgetLedger",
    "BudgetSet",
    "BudgetStatus",
    "BudgetStore",
    "Period",
    "Problem",
    "Refusal",
    "RefusalAnswer",
    "Reservation",
    "ReservationLine",
    "WorstCase",
    "budgets_for",
    "load_budgets",
    "max_output_tokens_of",
    "parse_period",
    "period_window",
    "refusal_answer",
    "retry_after_seconds",
    "worst_case",
]
