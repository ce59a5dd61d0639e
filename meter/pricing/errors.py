"""The one error type of the package: a pricing or deployment-map file is wrong.

Every problem names the file, the entry, the field and what is wrong with it, so
whoever edits a table by hand can fix it without reading this code. All problems
of a file are collected and reported together rather than one per run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one field of one entry of a file."""

    file: str
    entry: str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.entry}: field {self.field!r}: {self.problem}"


class FileProblems(ValueError):
    """A file meter reads could not be loaded: every ``Problem`` of it at once, one line each (one problem:
    just its line). The base of ``PricingFileError`` and ``meter.budgets.BudgetFileError``."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        lines = [str(p) for p in self.problems]
        if len(lines) == 1:
            message = lines[0]
        else:
            message = f"{len(lines)} problems:\n" + "\n".join(f"  {line}" for line in lines)
        super().__init__(message)


class PricingFileError(FileProblems):
    """A price table or deployment map could not be loaded; ``problems`` lists why."""
