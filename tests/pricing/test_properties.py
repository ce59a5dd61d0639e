"""Properties that hold for any usage: parts add up, nothing is billed twice, nothing is negative."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from pricing_helpers import FakeUsage

from meter.pricing import PriceBook
from meter.pricing.usage import token_buckets

BOOK = PriceBook.load()
counts = st.integers(min_value=0, max_value=2_000_000)


@st.composite
def usages(draw: st.DrawFn) -> FakeUsage:
    input_tokens = draw(counts)
    cached = draw(st.integers(0, input_tokens))
    write = draw(st.integers(0, input_tokens - cached))
    output = draw(counts)
    return FakeUsage(
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        cache_write_input_tokens=write,
        output_tokens=output,
        reasoning_output_tokens=draw(st.integers(0, output)),
        total_tokens=input_tokens + output,
    )


@settings(max_examples=200, deadline=None)
@given(usage=usages(), model=st.sampled_from(["gpt-5.6", "gpt-5.4", "gpt-4.1", "o3", "gpt-5-mini", "gpt-4o"]))
def test_parts_add_up(usage: FakeUsage, model: str) -> None:
    # 2026-08-11, the Retail snapshot's date: every sampled model has Azure meters then (gpt-5.6's
    # start 2026-07-01).
    cost = BOOK.cost_of(usage, model=model, at=date(2026, 8, 11))
    assert sum(token_buckets(usage).values()) == usage.input_tokens + usage.output_tokens
    assert cost.basis == "list"
    assert cost.total == sum((a for a in cost.amounts.values() if a is not None), Decimal(0))
    assert cost.total is not None and cost.total >= 0


@settings(max_examples=100, deadline=None)
@given(usage=usages(), extra_reasoning=st.integers(0, 1000))
def test_reasoning_count_never_changes_the_cost(usage: FakeUsage, extra_reasoning: int) -> None:
    more = FakeUsage(
        usage.input_tokens,
        usage.cached_input_tokens,
        usage.cache_write_input_tokens,
        usage.output_tokens + extra_reasoning,
        usage.reasoning_output_tokens + extra_reasoning,
    )
    base = BOOK.cost_of(usage, model="gpt-5", at=date(2026, 1, 1)).total
    bigger = BOOK.cost_of(more, model="gpt-5", at=date(2026, 1, 1)).total
    assert base is not None and bigger is not None
    assert bigger - base == Decimal(extra_reasoning) * 10 / 1_000_000  # only the extra output, at 10/1M
