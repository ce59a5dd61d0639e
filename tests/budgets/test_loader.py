"""Budgets files and ``Meter(budgets=[...])`` lists: every problem one line naming file, budget and field;
a file with a problem applies nothing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meter.budgets import Budget, BudgetFileError, load_budgets

GOOD = """
[[budget]]
name = "search-monthly"
match = { team = "search" }
period = "month"
limit_usd = "500"
alert_at = ["50%", "80%", "100%"]
enforce = "soft"

[[budget]]
name = "everything-daily"
match = {}
period = "day"
limit_usd = "20.50"
enforce = "hard"
on_db_down = "closed"
unpriced_usd = "0.05"

[[budget]]
name = "gpt5-rolling"
match = { deployment = "chat-prod", model = "gpt-5", feature = "autocomplete" }
period = "24h"
limit_usd = "3"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(source: Any) -> list[str]:
    with pytest.raises(BudgetFileError) as caught:
        load_budgets(source)
    return [str(p) for p in caught.value.problems]


def test_the_issue_shape_loads(tmp_path: Path) -> None:
    budgets = load_budgets(write(tmp_path, GOOD))
    assert [b.name for b in budgets] == ["search-monthly", "everything-daily", "gpt5-rolling"]
    search, everything, rolling = budgets
    assert dict(search.match) == {"team": "search"} and search.period == "month"
    assert search.limit_usd == Decimal("500") and search.alert_at == (Decimal("0.5"), Decimal("0.8"), Decimal(1))
    assert search.enforce == "soft" and search.on_db_down == "open" and search.unpriced_usd is None
    assert dict(everything.match) == {} and everything.hard and everything.on_db_down == "closed"
    assert everything.unpriced_usd == Decimal("0.05") and everything.limit_usd == Decimal("20.50")
    assert everything.alert_at == (Decimal(1),), "the default: one alert, at 100%"
    assert rolling.window.kind == "rolling" and rolling.window.length is not None
    assert rolling.window.length.total_seconds() == 86_400


def test_a_list_of_dicts_and_budget_objects_loads_the_same() -> None:
    made = Budget(name="made", period="week", limit_usd=Decimal("5"))
    budgets = load_budgets([{"name": "a", "period": "day", "limit_usd": "1", "match": {"team": "x"}}, made])
    assert [b.name for b in budgets] == ["a", "made"] and budgets[1] is made
    assert load_budgets([]) == () and load_budgets(None) == ()


def test_an_empty_file_is_no_budgets(tmp_path: Path) -> None:
    assert load_budgets(write(tmp_path, "# nothing yet\n")) == ()


def entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "b", "period": "month", "limit_usd": "10"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(("fields", "field", "says"), [
    ({"name": None}, "name", "missing (required)"),
    ({"name": ""}, "name", "must not be empty"),
    ({"name": 7}, "name", "is not a string"),
    ({"name": "x" * 201}, "name", "at most 200"),
    ({"name": "a\nb"}, "name", "control character"),
    ({"period": None}, "period", "missing (required)"),
    ({"period": "fortnight"}, "period", "is not a period"),
    ({"period": "0h"}, "period", "is not a period"),
    ({"period": "367d"}, "period", "longer than the longest rolling window"),
    ({"period": 24}, "period", "is not a period"),
    ({"limit_usd": None}, "limit_usd", "missing (required)"),
    ({"limit_usd": 500.0}, "limit_usd", "is not a decimal string"),
    ({"limit_usd": 500}, "limit_usd", "write it quoted"),
    ({"limit_usd": True}, "limit_usd", "is not a decimal string"),
    ({"limit_usd": "0"}, "limit_usd", "is not positive"),
    ({"limit_usd": "-5"}, "limit_usd", "is not positive"),
    ({"limit_usd": "five"}, "limit_usd", "is not a decimal number"),
    ({"limit_usd": "NaN"}, "limit_usd", "not a finite amount"),
    ({"limit_usd": "Infinity"}, "limit_usd", "not a finite amount"),
    ({"limit_usd": "1e13"}, "limit_usd", "a typo?"),
    ({"limit_usd": "0.00000000001"}, "limit_usd", "more than 10 decimal places"),
    ({"match": "team=search"}, "match", "is not a table"),
    ({"match": {"team": 5}}, "match", "is not a string"),
    ({"match": {"": "x"}}, "match", "must not be empty"),
    ({"match": {f"k{i}": "v" for i in range(33)}}, "match", "at most 32"),
    ({"alert_at": "80%"}, "alert_at", "is not a list"),
    ({"alert_at": ["0%"]}, "alert_at", "out of range"),
    ({"alert_at": ["1001%"]}, "alert_at", "out of range"),
    ({"alert_at": ["-5%"]}, "alert_at", "is not a percentage"),
    ({"alert_at": [0.8]}, "alert_at", "is not a percentage"),
    ({"alert_at": ["eighty"]}, "alert_at", "is not a percentage"),
    ({"alert_at": ["80%", "80.0%"]}, "alert_at", "listed twice"),
    ({"enforce": "strict"}, "enforce", 'neither "soft"'),
    ({"on_db_down": "maybe"}, "on_db_down", 'neither "open"'),
    ({"unpriced_usd": "0"}, "unpriced_usd", "is not positive"),
    ({"unpriced_usd": 0.05}, "unpriced_usd", "is not a decimal string"),
    ({"limits_usd": "5"}, "limits_usd", "unknown field; expected one of name, match, period"),
])
def test_each_field_problem_is_one_line_naming_file_budget_and_field(tmp_path: Path, fields: dict[str, Any],
                                                                     field: str, says: str) -> None:
    raw = entry(**fields)
    lines = problems_of([raw])
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith("Meter(budgets=[...]): budget "), line
    assert f"field {field!r}: " in line and says in line, line
    assert "\n" not in line and "Traceback" not in line
    label = "budget 'b'" if isinstance(raw.get("name"), str) and raw["name"] == "b" else "budget #1"
    assert f": {label}: " in line, line


def test_a_file_lists_every_problem_at_once_and_applies_none(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + """
[[budget]]
name = "search-monthly"
period = "month"
limit_usd = "1"

[[budget]]
period = "weekly"
limit_usd = 3.5
colour = "red"
""")
    with pytest.raises(BudgetFileError) as caught:
        load_budgets(path)
    lines = [str(p) for p in caught.value.problems]
    assert lines == [
        f"{path}: budget 'search-monthly': field 'name': duplicate name (budget #1 has it too); names must be unique",
        f"{path}: budget #5: field 'colour': unknown field; expected one of name, match, period, limit_usd, alert_at, "
        "enforce, on_db_down, unpriced_usd",
        f"{path}: budget #5: field 'name': missing (required)",
        f"{path}: budget #5: field 'period': 'weekly' is not a period; write one of \"day\", \"week\", \"month\" (UTC "
        "calendar) or a rolling window like \"24h\" or \"7d\"",
        f"{path}: budget #5: field 'limit_usd': 3.5 is not a decimal string; write it quoted, like \"500\" (floats "
        "lose precision)",
    ]
    assert str(caught.value).startswith("5 problems:\n")


@pytest.mark.parametrize(("text", "says"), [
    ("[[budget]\nname = 1", "not valid TOML"),
    ("[budget]\nname = \"x\"", "must be an array of tables, written [[budget]]"),
    ("[[budgets]]\nname = \"x\"", "unknown section; a budgets file holds only [[budget]] entries"),
    ('[[budget]]\nname = "\\uD800"\nperiod = "day"\nlimit_usd = "1"', "not valid TOML"),
])
def test_a_broken_file_is_one_line(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, text)
    (line,) = problems_of(path)
    assert line.startswith(f"{path}: (file): ") and says in line, line


def test_a_missing_or_undecodable_file_is_one_line(tmp_path: Path) -> None:
    (line,) = problems_of(tmp_path / "nope.toml")
    assert "cannot read file" in line and "nope.toml" in line
    bad = tmp_path / "latin.toml"
    bad.write_bytes(b'[[budget]]\nname = "caf\xe9"\n')
    (line,) = problems_of(bad)
    assert "not UTF-8 text" in line


def test_hostile_values_in_a_file_are_refused_in_one_line_each(tmp_path: Path) -> None:
    """Huge numbers and huge strings: bounded messages, no traceback, nothing applied."""
    path = write(tmp_path, f"""
[[budget]]
name = "huge"
period = "{'9' * 40}d"
limit_usd = "{'9' * 5000}"
alert_at = ["{'9' * 30}%"]
match = {{ team = "{'x' * 5000}" }}

[[budget]]
name = "inf"
period = "day"
limit_usd = inf
unpriced_usd = 99999999999999999999999999
""")
    with pytest.raises(BudgetFileError) as caught:
        load_budgets(path)
    lines = [str(p) for p in caught.value.problems]
    assert [line.split(": field ")[1].split(":")[0] for line in lines] == [
        "'period'", "'limit_usd'", "'match'", "'alert_at'", "'limit_usd'", "'unpriced_usd'"]
    assert all(len(line) < 300 for line in lines), lines
    assert lines[1].endswith("... is too long to be an amount of USD"), "refused before it is parsed"


def test_hostile_values_from_python_are_refused(tmp_path: Path) -> None:
    """Lone surrogates cannot come from TOML, but can from ``Meter(budgets=[...])``: a name, a key or a value
    that is not valid text is refused (it could never be stored, logged or sent)."""
    lines = problems_of([
        {"name": "team-\ud800", "period": "day", "limit_usd": "1"},
        {"name": "ok", "period": "day", "limit_usd": "1", "match": {"team\udfff": "x"}},
        {"name": "ok2", "period": "day", "limit_usd": "1", "match": {"team": "\ud83d"}},
        {"name": "big", "period": "day", "limit_usd": Decimal("1e999999")},
        {"name": "tiny", "period": "day", "limit_usd": Decimal("1e-999999")},
        "not a table",
    ])
    assert len(lines) == 6, lines
    assert "budget #1: field 'name': is not valid text (it holds a lone surrogate)" in lines[0]
    assert "budget 'ok': field 'match': key 'team\\udfff' is not valid text" in lines[1]
    assert "budget 'ok2': field 'match': the value of 'team' is not valid text" in lines[2]
    assert "budget 'big': field 'limit_usd'" in lines[3] and "a typo?" in lines[3]
    assert "budget 'tiny': field 'limit_usd'" in lines[4] and "decimal places" in lines[4]
    assert "budget #6: field '-': str is not a table of fields" in lines[5]
    for line in lines:
        line.encode("utf-8")  # the messages themselves are printable text: a surrogate shows as its escape


def test_building_a_budget_directly_runs_the_same_checks() -> None:
    with pytest.raises(BudgetFileError) as caught:
        Budget(name="x", period="month", limit_usd=Decimal("-1"), enforce="hard")  # type: ignore[arg-type]
    assert str(caught.value) == "Budget(...): budget 'x': field 'limit_usd': Decimal('-1') is not positive; " \
                                "a limit must be more than 0"
    budget = Budget(name="x", period="7d", limit_usd="12.5", alert_at=("90%",))  # type: ignore[arg-type]
    assert budget.limit_usd == Decimal("12.5") and budget.alert_at == (Decimal("0.9"),)


def test_a_source_of_the_wrong_type_is_one_line() -> None:
    (line,) = problems_of({"name": "x"})
    assert "dict is neither a budgets file path nor a list of budgets" in line
