"""Which budgets a call is charged to: every one it matches (overlaps are charged to each).

A budget's ``match`` is a set of ``key = value`` pairs a call must all have: attribution tags, the
``deployment`` and the ``model`` (the last two name the call itself, whatever its tags say). With
10,000 budgets, one per team, a call must not be compared with each: budgets are indexed by one of
their pairs, so a call looks at the budgets indexed by its own tags only, and the cost of a lookup
grows with the call's tags, not with the number of budgets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from meter.budgets.model import Budget


class BudgetSet:
    """Budgets, in their configured order, indexed for ``budgets_for``. Immutable once built."""

    __slots__ = ("_everything", "_index", "_position", "budgets")

    def __init__(self, budgets: Iterable[Budget]) -> None:
        self.budgets: tuple[Budget, ...] = tuple(budgets)
        self._position = {id(b): i for i, b in enumerate(self.budgets)}
        self._everything: tuple[Budget, ...] = tuple(b for b in self.budgets if not b.match)
        index: dict[tuple[str, str], list[Budget]] = {}
        for budget in self.budgets:
            if budget.match:
                key = min(budget.match)  # any one pair will do; the smallest key keeps it deterministic
                index.setdefault((key, budget.match[key]), []).append(budget)
        self._index: dict[tuple[str, str], tuple[Budget, ...]] = {k: tuple(v) for k, v in index.items()}

    def __len__(self) -> int:
        return len(self.budgets)

    def budgets_for(self, attributes: Mapping[str, str], deployment: str | None = None,
                    model: str | None = None) -> tuple[Budget, ...]:
        """Every budget the call matches, in configured order (``()`` when none)."""
        if not self._index:
            return self._everything
        found: list[Budget] = list(self._everything)
        index = self._index
        for key, value in attributes.items():
            if key == "deployment" or key == "model":  # these keys name the call, not its tags
                continue
            candidates = index.get((key, value)) if isinstance(value, str) else None
            if candidates:
                found.extend(b for b in candidates if b.matches(attributes, deployment, model))
        for key, fact in (("deployment", deployment), ("model", model)):
            if fact is not None and (candidates := index.get((key, fact))):
                found.extend(b for b in candidates if b.matches(attributes, deployment, model))
        if len(found) > 1:
            found.sort(key=lambda b: self._position[id(b)])
        return tuple(found)


def budgets_for(budgets: BudgetSet | Sequence[Budget], attributes: Mapping[str, str], deployment: str | None = None,
                model: str | None = None) -> tuple[Budget, ...]:
    """Every budget of ``budgets`` the call matches, in order. A ``BudgetSet`` answers from its index; a plain
    sequence is scanned (fine for a handful; build a ``BudgetSet`` once for many)."""
    if isinstance(budgets, BudgetSet):
        return budgets.budgets_for(attributes, deployment, model)
    return tuple(b for b in budgets if b.matches(attributes, deployment, model))
