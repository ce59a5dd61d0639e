"""A call's worst case from its request, priced exactly with a price table of known prices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meter.budgets import DEFAULT_MAX_OUTPUT_TOKENS, MODEL_MAX_OUTPUT_TOKENS, max_output_tokens_of, worst_case
from meter.core.request import estimate_input_tokens
from meter.pricing import PriceBook

AT = datetime(2026, 6, 1, 12, tzinfo=UTC)
TABLE = """
[table]
version = "budget-test-1"
published = 2026-01-01

[[model]]
id = "built-in-tools"

[[price]]
model = "gpt-5"
deployment_type = "GlobalStandard"
effective_from = 2026-01-01
input = "1.25"
output = "10.00"
source = "test"

[[price]]
model = "text-embedding-3-small"
deployment_type = "GlobalStandard"
effective_from = 2026-01-01
input = "0.02"
source = "test"

[[price]]
model = "built-in-tools"
deployment_type = "GlobalStandard"
effective_from = 2026-01-01
file_search = "2.50"
code_interpreter = "0.03"
source = "test"
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    path: Path = tmp_path_factory.mktemp("prices") / "test.toml"
    path.write_text(TABLE, encoding="utf-8")
    return PriceBook.load(path, include_builtin=False)


def test_a_responses_request_with_max_output_tokens_is_priced_exactly(book: PriceBook) -> None:
    body = {"model": "gpt-5", "input": "x" * 400, "max_output_tokens": 1000}
    assert estimate_input_tokens(body) == 100
    case = worst_case(body, api="responses", model="gpt-5", price_book=book, at=AT)
    assert (case.input_tokens, case.output_tokens, case.output_from) == (100, 1000, "max_output_tokens")
    assert case.usd == Decimal("0.010125") and case.priced  # 100 x 1.25/1M + 1000 x 10/1M
    assert case.cost is not None and case.cost.estimated and case.cost.total == case.usd


def test_chat_takes_the_larger_limit_times_n_choices(book: PriceBook) -> None:
    body = {"messages": [{"role": "user", "content": "y" * 37}], "max_tokens": 50, "max_completion_tokens": 200,
            "n": 3}
    case = worst_case(body, api="chat", model="gpt-5", price_book=book, at=AT)
    assert case.input_tokens == (37 + 3) // 4 + 3  # the estimate's own rule: 4 characters a token, 3 per item
    assert (case.output_tokens, case.output_from) == (600, "max_completion_tokens")
    assert case.usd == Decimal(case.input_tokens) * Decimal("1.25") / 10**6 + Decimal(600) * 10 / 10**6


def test_without_a_limit_the_model_maximum_bounds_the_output(book: PriceBook) -> None:
    case = worst_case({"input": "hi"}, api="responses", model="gpt-5", price_book=book, at=AT)
    assert (case.output_tokens, case.output_from) == (128_000, "model maximum")
    assert case.usd == Decimal(1) * Decimal("1.25") / 10**6 + Decimal("1.28")


@pytest.mark.parametrize("bad", [0, -5, True, "1000", 12.5, None])
def test_a_limit_that_is_not_a_positive_whole_number_is_ignored(book: PriceBook, bad: Any) -> None:
    case = worst_case({"input": "hi", "max_output_tokens": bad}, api="responses", model="gpt-5", price_book=book)
    assert case.output_from == "model maximum"


def test_huge_numbers_in_a_request_are_capped(book: PriceBook) -> None:
    case = worst_case({"input": "hi", "max_output_tokens": 10**30, "max_tool_calls": 10**30,
                       "tools": [{"type": "file_search"}]}, api="responses", model="gpt-5", price_book=book, at=AT)
    assert case.output_tokens == 10**9 and case.tool_calls == {"file_search_calls": 10**9}
    assert case.usd == Decimal("1.25") / 10**6 + Decimal(10**4) + Decimal("2.5") * 10**6


def test_an_unknown_model_gets_the_default_bound_and_is_unpriced_never_zero(book: PriceBook) -> None:
    case = worst_case({"input": "hi"}, api="responses", model="gpt-9-turbo", price_book=book, at=AT)
    assert (case.output_tokens, case.output_from) == (DEFAULT_MAX_OUTPUT_TOKENS, "default")
    assert not case.priced and case.unpriced is not None and "gpt-9-turbo" in case.unpriced
    assert max(MODEL_MAX_OUTPUT_TOKENS.values()) == DEFAULT_MAX_OUTPUT_TOKENS


def test_tools_count_once_each_unless_max_tool_calls_says_more(book: PriceBook) -> None:
    tools = [{"type": "file_search", "vector_store_ids": ["vs"]}, {"type": "code_interpreter"},
             {"type": "function", "name": "f"}]
    one = worst_case({"input": "", "max_output_tokens": 10, "tools": tools}, api="responses", model="gpt-5",
                     price_book=book, at=AT)
    assert one.tool_calls == {"file_search_calls": 1, "code_interpreter_sessions": 1}
    assert one.usd == Decimal(100) / 10**6 + Decimal("0.0025") + Decimal("0.03")
    three = worst_case({"input": "", "max_output_tokens": 10, "tools": tools, "max_tool_calls": 3},
                       api="responses", model="gpt-5", price_book=book, at=AT)
    assert three.tool_calls == {"file_search_calls": 3, "code_interpreter_sessions": 3}
    none = worst_case({"input": "", "max_output_tokens": 10, "tools": tools, "tool_choice": "none"},
                      api="responses", model="gpt-5", price_book=book, at=AT)
    assert none.tool_calls == {} and none.usd == Decimal(100) / 10**6


def test_a_tool_without_a_price_or_a_bound_leaves_the_call_unpriced(book: PriceBook) -> None:
    search = worst_case({"input": "", "max_output_tokens": 10, "tools": [{"type": "web_search_preview"}]},
                        api="responses", model="gpt-5", price_book=book, at=AT)
    assert search.tool_calls == {"web_search_calls": 1}
    assert search.unpriced is not None and "web_search" in search.unpriced
    assert search.usd == Decimal(100) / 10**6, "the priced part is kept: the budget adds its unpriced_usd to it"
    image = worst_case({"input": "", "max_output_tokens": 10, "tools": [{"type": "image_generation"}]},
                       api="responses", model="gpt-5", price_book=book, at=AT)
    assert image.unpriced == "the image_generation tool's cost is not bounded by the request"
    chat_search = worst_case({"messages": [], "max_tokens": 5, "web_search_options": {}}, api="chat",
                             model="gpt-5", price_book=book, at=AT)
    assert chat_search.tool_calls == {"web_search_calls": 1} and not chat_search.priced


def test_embeddings_have_no_output(book: PriceBook) -> None:
    case = worst_case({"input": ["a" * 8, "b" * 8]}, api="embeddings", model="text-embedding-3-small",
                      price_book=book, at=AT)
    assert (case.input_tokens, case.output_tokens, case.output_from) == ((16 + 3) // 4 + 3 * 2, 0, "none (embeddings)")
    assert case.usd == Decimal(10) * Decimal("0.02") / 10**6
    unknown = worst_case({"input": "x", "max_tokens": 99}, api="embeddings", model="my-embedder", price_book=book)
    assert unknown.output_tokens == 0, "an embedding model outside the table produces no output either"


def test_calls_without_a_rule_yet_are_unpriced(book: PriceBook) -> None:
    case = worst_case({"input": "speak"}, api="speech", model="tts", price_book=book, at=AT)
    assert case.unpriced == "no worst-case rule for speech calls yet" and case.usd == 0


def test_a_body_that_is_not_an_object_is_an_empty_request(book: PriceBook) -> None:
    case = worst_case(None, api="responses", model="gpt-5", price_book=book, at=AT)
    assert (case.input_tokens, case.output_from) == (0, "model maximum")


@pytest.mark.parametrize(("model", "maximum"), [
    ("gpt-5", 128_000), ("gpt-5-chat", 16_384), ("gpt-5-chat-2025-10-03", 16_384), ("gpt-4o-mini-2024-07-18", 16_384),
    ("gpt-4o-2024-11-20", 16_384), ("gpt-4o-2024-05-13", 4_096), ("GPT-4.1-nano-2025-04-14", 32_768),
    ("o1-mini", 65_536), ("o1-2024-12-17", 100_000), ("o3-mini-2025-01-31", 100_000),
    ("gpt-5.4-mini", None), ("gpt-55", None), ("o10", None), ("", None), (None, None),
])
def test_model_maxima_match_whole_ids_or_dated_prefixes(model: str | None, maximum: int | None) -> None:
    assert max_output_tokens_of(model) == maximum
