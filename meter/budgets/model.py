"""``Budget``: one spend limit, and the checks every budget passes however it was written.

A budget is built from a ``[[budget]]`` entry of a budgets file, from a dict in
``Meter(budgets=[...])``, or directly; all three go through the same checks here (``Budget``'s
``__post_init__``), so a budget that exists is valid: every field normalised, every value bounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal

from meter.budgets.errors import BudgetFileError, Problem
from meter.budgets.periods import Period, parse_period

Enforce = Literal["soft", "hard"]
OnDbDown = Literal["open", "closed"]

FIELDS = ("name", "match", "period", "limit_usd", "alert_at", "enforce", "on_db_down", "unpriced_usd")
"""Every field a budget entry may have, in the order the docs list them."""
REQUIRED = frozenset({"name", "period", "limit_usd"})
CALL_FACTS = frozenset({"deployment", "model"})
"""Match keys that name the call itself; every other key is an attribution tag (``meter.attribute``)."""

MAX_USD = Decimal(10) ** 12
"""The largest limit (and ``unpriced_usd``) a budget may have: a trillion dollars is a typo."""
MAX_DECIMAL_PLACES = 10
MAX_NAME = 200
MAX_MATCH_KEYS = 32
MAX_MATCH_VALUE = 1000
MAX_ALERTS = 16
MAX_ALERT = Decimal(10)
"""The highest alert threshold, as a fraction of the limit (1000 %)."""

DEFAULT_ALERT_AT: tuple[Decimal, ...] = (Decimal(1),)
"""Without ``alert_at`` a budget alerts once, when its spend reaches its limit (``["100%"]``)."""

_PERCENT = re.compile(r"([0-9]{1,4}(?:\.[0-9]{1,4})?)\s*%")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _text_problem(value: str, limit: int) -> str | None:
    """Why a name, key or value is unfit as text (``None``: fit)."""
    if not value:
        return "must not be empty"
    if len(value) > limit:
        return f"is {len(value)} characters long; at most {limit}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid text (it holds a lone surrogate)"
    if _CONTROL.search(value):
        return "holds a control character (a newline, a tab ...)"
    return None


def _show(value: object) -> str:
    """A value as an error message quotes it: ``repr``, cut to 60 characters (a hostile value may be huge)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_usd(value: object, *, what: str) -> Decimal:
    """A positive amount of USD from a decimal string (or a ``Decimal``); ``ValueError`` says why not."""
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        if len(value) > 64:
            raise ValueError(f"{_show(value)} is too long to be an amount of USD")
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{_show(value)} is not a decimal number of USD") from None
    else:
        raise ValueError(f'{_show(value)} is not a decimal string; write it quoted, like "500" '
                         "(floats lose precision)")
    if not amount.is_finite():
        raise ValueError(f"{_show(value)} is not a finite amount")
    if amount <= 0:
        raise ValueError(f"{_show(value)} is not positive; {what} must be more than 0")
    if amount > MAX_USD:
        raise ValueError(f"{_show(value)} is more than {MAX_USD:,} USD; a typo?")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES and amount != amount.quantize(
            Decimal(1).scaleb(-MAX_DECIMAL_PLACES)):
        raise ValueError(f"{_show(value)} has more than {MAX_DECIMAL_PLACES} decimal places")
    return amount + 0  # normalises -0 and context-rounds nothing (at most 23 digits)


def parse_alert(value: object) -> Decimal:
    """An alert threshold as a fraction of the limit, from ``"80%"`` (or a ``Decimal`` fraction)."""
    if isinstance(value, Decimal) and value.is_finite():
        fraction = value
    elif isinstance(value, str) and (found := _PERCENT.fullmatch(value.strip())):
        fraction = Decimal(found.group(1)) / 100
    else:
        raise ValueError(f'{_show(value)} is not a percentage; write it like "80%"')
    if not 0 < fraction <= MAX_ALERT:
        raise ValueError(f"{_show(value)} is out of range; thresholds are above 0% and at most {MAX_ALERT * 100:.0f}%")
    return fraction


@dataclass(frozen=True, slots=True)
class Budget:
    """One spend limit: what it matches, over which period, how much, and what happens past it.

    ``match`` maps attribution tags (``meter.attribute(team=...)``), ``deployment`` or ``model`` to the
    value a call must have; every pair must hold; ``{}`` matches every call. ``alert_at`` are fractions
    of the limit, ascending (written ``["50%", "80%"]``). ``enforce="soft"`` only alerts; ``"hard"``
    refuses a call whose worst case would take the spend past the limit. ``on_db_down`` is what a hard
    budget does when its shared store is unreachable (the integration step). ``unpriced_usd`` is what a
    call that cannot be priced is counted at (see ``docs/budgets.md``, "Unpriced calls").

    Building one checks every field (the same checks as a budgets file) and raises
    ``BudgetFileError`` naming each problem.
    """

    name: str
    period: str
    limit_usd: Decimal
    match: Mapping[str, str] = field(default_factory=dict, hash=False)
    alert_at: tuple[Decimal, ...] = DEFAULT_ALERT_AT
    enforce: Enforce = "soft"
    on_db_down: OnDbDown = "open"
    unpriced_usd: Decimal | None = None
    window: Period = field(init=False, repr=False, compare=False, hash=False)
    """The parsed ``period``."""

    def __post_init__(self) -> None:
        problems = _normalise(self)
        if problems:
            raise BudgetFileError([Problem("Budget(...)", _entry(self.name, None), name, text)
                                   for name, text in problems])

    @property
    def hard(self) -> bool:
        return self.enforce == "hard"

    def matches(self, attributes: Mapping[str, str], deployment: str | None, model: str | None) -> bool:
        """Does a call with these tags, deployment and model fall under this budget?"""
        for key, value in self.match.items():
            if key == "deployment":
                if deployment != value:
                    return False
            elif key == "model":
                if model != value:
                    return False
            elif attributes.get(key) != value:
                return False
        return True


def _entry(name: object, index: int | None) -> str:
    """How a problem names the budget: by name when it has a usable one, else by position (1-based)."""
    if isinstance(name, str) and _text_problem(name, MAX_NAME) is None:
        return f"budget {name!r}"
    return f"budget #{index + 1}" if index is not None else "budget (unnamed)"


def _normalise(budget: Budget) -> list[tuple[str, str]]:
    """Check every field, set the normalised values; (field, problem) for each one that is wrong."""
    problems: list[tuple[str, str]] = []
    put = object.__setattr__

    if not isinstance(budget.name, str):
        problems.append(("name", f"{_show(budget.name)} is not a string"))
    elif (why := _text_problem(budget.name, MAX_NAME)) is not None:
        problems.append(("name", why))

    try:
        put(budget, "window", parse_period(budget.period))
    except ValueError as exc:
        problems.append(("period", str(exc)))

    try:
        put(budget, "limit_usd", parse_usd(budget.limit_usd, what="a limit"))
    except ValueError as exc:
        problems.append(("limit_usd", str(exc)))

    match = budget.match
    if not isinstance(match, Mapping):
        problems.append(("match", f"{_show(match)} is not a table of tag = \"value\" (write {{}} for every call)"))
    elif len(match) > MAX_MATCH_KEYS:
        problems.append(("match", f"has {len(match)} keys; at most {MAX_MATCH_KEYS}"))
    else:
        clean: dict[str, str] = {}
        for key, value in match.items():
            if not isinstance(key, str) or (why := _text_problem(key, MAX_NAME)) is not None:
                problems.append(("match", f"key {_show(key)} " + (why if isinstance(key, str) else "is not a string")))
            elif not isinstance(value, str):
                problems.append(("match", f"{key} = {_show(value)} is not a string (tags are text: write it "
                                          "quoted)"))
            elif (why := _text_problem(value, MAX_MATCH_VALUE)) is not None:
                problems.append(("match", f"the value of {key!r} {why}"))
            else:
                clean[key] = value
        put(budget, "match", MappingProxyType(clean))

    alerts = budget.alert_at
    if isinstance(alerts, (str, bytes)) or not isinstance(alerts, (list, tuple)):
        problems.append(("alert_at", f'{_show(alerts)} is not a list of percentages like ["50%", "80%"]'))
    elif len(alerts) > MAX_ALERTS:
        problems.append(("alert_at", f"has {len(alerts)} thresholds; at most {MAX_ALERTS}"))
    else:
        fractions: list[Decimal] = []
        for item in alerts:
            try:
                fraction = parse_alert(item)
            except ValueError as exc:
                problems.append(("alert_at", str(exc)))
                continue
            if fraction in fractions:
                problems.append(("alert_at", f"{_show(item)} is listed twice"))
                continue
            fractions.append(fraction)
        put(budget, "alert_at", tuple(sorted(fractions)))

    if budget.enforce not in ("soft", "hard"):
        problems.append(("enforce", f'{_show(budget.enforce)} is neither "soft" (alert only) nor "hard" '
                                    "(refuse calls past the limit)"))
    if budget.on_db_down not in ("open", "closed"):
        problems.append(("on_db_down", f'{_show(budget.on_db_down)} is neither "open" (let calls through) nor '
                                       '"closed" (refuse them)'))
    if budget.unpriced_usd is not None:
        try:
            put(budget, "unpriced_usd", parse_usd(budget.unpriced_usd, what="unpriced_usd"))
        except ValueError as exc:
            problems.append(("unpriced_usd", str(exc)))
    return problems


def budget_from_mapping(raw: Mapping[str, Any], file: str, index: int) -> tuple[Budget | None, list[Problem]]:
    """A ``Budget`` from one entry (a ``[[budget]]`` table or a dict), or every problem that stops it.

    A missing required field is reported and stood in for, so the entry's other fields are still
    checked: one run lists everything wrong with it.
    """
    entry = _entry(raw.get("name"), index)
    problems = [Problem(file, entry, _show(key).strip("'") if not isinstance(key, str) else key[:60],
                        f"unknown field; expected one of {', '.join(FIELDS)}")
                for key in raw if key not in FIELDS]
    missing = sorted(REQUIRED - set(raw))
    problems += [Problem(file, entry, key, "missing (required)") for key in missing]
    given = {key: raw[key] for key in FIELDS if key in raw}
    stand_ins = {"name": "-", "period": "month", "limit_usd": Decimal(1)}
    try:
        budget = Budget(**{**{key: stand_ins[key] for key in missing}, **given})
    except BudgetFileError as exc:
        return None, problems + [Problem(file, entry, p.field, p.problem) for p in exc.problems]
    return (None, problems) if problems else (budget, [])
