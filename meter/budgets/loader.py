"""``load_budgets``: budgets from a ``budgets.toml`` file or from ``Meter(budgets=[...])``.

The only module of the package that reads anything (the file). The format::

    [[budget]]
    name = "search-monthly"
    match = { team = "search" }          # attribution tags, deployment, model; {} = every call
    period = "month"                     # day | week | month (UTC calendar) | rolling "24h", "7d"
    limit_usd = "500"                    # a decimal string
    alert_at = ["50%", "80%", "100%"]
    enforce = "soft"                     # soft (default): alert only | hard: refuse calls past the limit
    on_db_down = "open"                  # open (default) | closed: what a hard budget does without its store
    unpriced_usd = "0.05"                # optional: what a call that cannot be priced counts as

Every problem of a file is collected and raised as one ``BudgetFileError``; a file with any
problem applies nothing.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from meter.budgets.errors import BudgetFileError, Problem
from meter.budgets.model import Budget, budget_from_mapping

MAX_FILE_BYTES = 16 * 1024 * 1024
"""A budgets file larger than this is refused (10,000 budgets take about 1.5 MB)."""
MAX_BUDGETS = 100_000

BudgetSource = str | os.PathLike[str] | Sequence[Mapping[str, Any] | Budget]


def load_budgets(source: BudgetSource | None, *, origin: str | None = None) -> tuple[Budget, ...]:
    """Budgets from a TOML file path, or from a list of dicts / ``Budget`` objects, in order.

    ``origin`` names a list in error messages (default ``Meter(budgets=[...])``). ``None`` or an empty
    list is no budgets. Raises ``BudgetFileError`` listing every problem, each one line naming the
    file, the budget (by name, else ``#position``) and the field.
    """
    if source is None:
        return ()
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = str(path)
        return _from_entries(_read(path, name), name)
    if isinstance(source, (bytes, Mapping)) or not isinstance(source, Sequence):
        raise BudgetFileError([Problem(origin or "budgets", "(all)", "-",
                                       f"{type(source).__name__} is neither a budgets file path nor a list of "
                                       "budgets")])
    return _from_entries(list(source), origin or "Meter(budgets=[...])")


def _read(path: Path, name: str) -> list[Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise BudgetFileError([Problem(name, "(file)", "-", f"cannot read file: {exc.strerror or exc}")]) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise BudgetFileError([Problem(name, "(file)", "-", f"larger than {MAX_FILE_BYTES} bytes")])
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BudgetFileError([Problem(name, "(file)", "-", f"not UTF-8 text: {exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise BudgetFileError([Problem(name, "(file)", "-", f"not valid TOML: {exc}")]) from exc
    except RecursionError as exc:
        raise BudgetFileError([Problem(name, "(file)", "-", "nested too deeply to be a budgets file")]) from exc
    problems = [Problem(name, "(file)", key[:60], "unknown section; a budgets file holds only [[budget]] entries")
                for key in data if key != "budget"]
    entries = data.get("budget", [])
    if not isinstance(entries, list):
        problems.append(Problem(name, "(file)", "budget", "must be an array of tables, written [[budget]]"))
        entries = []
    if problems:
        raise BudgetFileError(problems)
    return entries


def _from_entries(entries: list[Any], file: str) -> tuple[Budget, ...]:
    if len(entries) > MAX_BUDGETS:
        raise BudgetFileError([Problem(file, "(file)", "budget", f"{len(entries)} budgets; at most {MAX_BUDGETS}")])
    problems: list[Problem] = []
    budgets: list[Budget] = []
    first_of: dict[str, int] = {}
    for index, raw in enumerate(entries):
        if isinstance(raw, Budget):
            budget: Budget | None = raw
        elif isinstance(raw, Mapping):
            budget, found = budget_from_mapping(raw, file, index)
            problems += found
        else:
            problems.append(Problem(file, f"budget #{index + 1}", "-",
                                    f"{type(raw).__name__} is not a table of fields (or a meter.budgets.Budget)"))
            continue
        if budget is None:
            continue
        if budget.name in first_of:
            problems.append(Problem(file, f"budget {budget.name!r}", "name",
                                    f"duplicate name (budget #{first_of[budget.name] + 1} has it too); names must "
                                    "be unique"))
            continue
        first_of[budget.name] = index
        budgets.append(budget)
    if problems:
        raise BudgetFileError(problems)
    return tuple(budgets)
