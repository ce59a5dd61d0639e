"""The one error type of the budgets package: a budget file (or ``Meter(budgets=[...])``) is wrong.

It follows ``meter.pricing.errors``: every problem names the file, the budget (by name, or by its
position when it has no usable name) and the field, in one line; all problems of a file are
collected and reported together, and nothing of a file with a problem is applied.
"""

from __future__ import annotations

from meter.pricing.errors import Problem

__all__ = ["BudgetFileError", "Problem"]


class BudgetFileError(ValueError):
    """Budgets could not be loaded; ``problems`` lists why (``meter.pricing.Problem``, one line each)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        lines = [str(p) for p in self.problems]
        if len(lines) == 1:
            message = lines[0]
        else:
            message = f"{len(lines)} problems:\n" + "\n".join(f"  {line}" for line in lines)
        super().__init__(message)
