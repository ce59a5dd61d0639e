"""The one error type of the budgets package: a budget file (or ``Meter(budgets=[...])``) is wrong.

It follows ``meter.pricing.errors``: every problem names the file, the budget (by name, or by its
position when it has no usable name) and the field, in one line; all problems of a file are
collected and reported together, and nothing of a file with a problem is applied.
"""

from __future__ import annotations

from meter.pricing.errors import FileProblems, Problem

__all__ = ["BudgetFileError", "Problem"]


class BudgetFileError(FileProblems):
    """Budgets could not be loaded; ``problems`` lists why (``meter.pricing.Problem``, one line each)."""
