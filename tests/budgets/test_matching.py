"""Which budgets a call is charged to: every one it matches, overlaps included, in configured order."""

from __future__ import annotations

import time

from meter.budgets import BudgetSet, budgets_for, load_budgets

BUDGETS = load_budgets([
    {"name": "all", "period": "month", "limit_usd": "1000"},
    {"name": "search", "match": {"team": "search"}, "period": "month", "limit_usd": "500"},
    {"name": "search-auto", "match": {"team": "search", "feature": "autocomplete"}, "period": "day",
     "limit_usd": "10"},
    {"name": "prod-deployment", "match": {"deployment": "chat-prod"}, "period": "day", "limit_usd": "50"},
    {"name": "gpt5", "match": {"model": "gpt-5"}, "period": "week", "limit_usd": "70"},
    {"name": "search-on-prod", "match": {"team": "search", "deployment": "chat-prod"}, "period": "month",
     "limit_usd": "80"},
])


def names(found: tuple[object, ...]) -> list[str]:
    return [b.name for b in found]  # type: ignore[attr-defined]


def test_overlapping_budgets_are_all_charged_in_configured_order() -> None:
    indexed = BudgetSet(BUDGETS)
    call = ({"team": "search", "feature": "autocomplete"}, "chat-prod", "gpt-5")
    expected = ["all", "search", "search-auto", "prod-deployment", "gpt5", "search-on-prod"]
    assert names(indexed.budgets_for(*call)) == expected
    assert names(budgets_for(BUDGETS, *call)) == expected, "the plain scan agrees with the index"


def test_every_pair_must_hold() -> None:
    indexed = BudgetSet(BUDGETS)
    assert names(indexed.budgets_for({"team": "search"}, "other", "gpt-4o")) == ["all", "search"]
    assert names(indexed.budgets_for({"feature": "autocomplete"}, "chat-prod", None)) == ["all", "prod-deployment"]
    assert names(indexed.budgets_for({}, None, None)) == ["all"]
    assert names(indexed.budgets_for({"team": "Search"}, None, None)) == ["all"], "values are case-sensitive"


def test_deployment_and_model_name_the_call_not_its_tags() -> None:
    """A tag called ``deployment`` does not make a call match a deployment's budget, nor stop it matching."""
    indexed = BudgetSet(BUDGETS)
    assert names(indexed.budgets_for({"deployment": "chat-prod", "model": "gpt-5"}, "dev", "gpt-4o")) == ["all"]
    assert names(indexed.budgets_for({"deployment": "dev"}, "chat-prod", None)) == ["all", "prod-deployment"]
    assert names(budgets_for(BUDGETS, {"deployment": "chat-prod"}, "dev", None)) == ["all"]


def test_hostile_attribute_values_match_nothing_and_break_nothing() -> None:
    indexed = BudgetSet(BUDGETS)
    hostile = {"team": "\ud800", "feature": "x" * 1_000_000, "\udfff": "search", "n": 10**100}
    assert names(indexed.budgets_for(hostile, "\ud83d", "\x00")) == ["all"]  # type: ignore[arg-type]
    assert names(budgets_for(BUDGETS, hostile, "\ud83d", "\x00")) == ["all"]  # type: ignore[arg-type]


def test_a_lookup_does_not_grow_with_the_number_of_budgets() -> None:
    """10,000 team budgets: a call looks at the budgets of its own tags only (the scan would compare it with
    each); measured: the indexed lookup stays within a few microseconds."""
    many = BudgetSet(load_budgets([{"name": f"team-{i}", "match": {"team": f"t{i}"}, "period": "month",
                                    "limit_usd": "1"} for i in range(10_000)]))
    assert names(many.budgets_for({"team": "t9999", "feature": "f"}, "d", "m")) == ["team-9999"]
    assert many.budgets_for({"team": "nobody"}, "d", "m") == ()
    started = time.perf_counter()
    for i in range(10_000):
        many.budgets_for({"team": f"t{i}", "feature": "f"}, "d", "m")
    per_call = (time.perf_counter() - started) / 10_000
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} µs per lookup"
