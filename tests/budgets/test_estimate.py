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

[[price]]
model = "dall-e-3"
deployment_type = "GlobalStandard"
effective_from = 2026-01-01
image_standard = "0.04"
image_standard_wide = "0.08"
image_hd = "0.08"
image_hd_wide = "0.12"
source = "test"

[[price]]
model = "gpt-image-1"
deployment_type = "GlobalStandard"
effective_from = 2026-01-01
input = "5"
output = "40"
image_input = "10"
image_output = "40"
source = "test"

[[price]]
model = "tts-1-hd"
deployment_type = "GlobalStandard"
effective_from = 2026-01-01
speech_characters = "30"
source = "test"

[[price]]
model = "gpt-4o-mini-tts"
deployment_type = "GlobalStandard"
effective_from = 2026-01-01
input = "0.6"
output = "12"
audio_output = "12"
source = "test"

[[price]]
model = "whisper"
deployment_type = "GlobalStandard"
effective_from = 2026-01-01
audio_minute = "0.006"
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


def test_a_call_of_an_api_without_a_rule_is_unpriced(book: PriceBook) -> None:
    case = worst_case({"input": "x"}, api="realtime", model="gpt-5", price_book=book, at=AT)
    assert case.unpriced == "no worst-case rule for realtime calls" and case.usd == 0 and not case.spent_before


@pytest.mark.parametrize(("quality", "size", "variant", "each"), [
    (None, None, "image_standard", "0.04"), ("standard", "1024x1024", "image_standard", "0.04"),
    ("hd", "1024x1024", "image_hd", "0.08"), ("standard", "1792x1024", "image_standard_wide", "0.08"),
    ("HD", "1024x1792", "image_hd_wide", "0.12"),
])
def test_dall_e_3_is_n_images_at_the_price_of_their_quality_and_size(book: PriceBook, quality: Any, size: Any,
                                                                      variant: str, each: str) -> None:
    body: dict[str, Any] = {"model": "dall-e-3", "prompt": "a cat", "n": 3}
    body.update({k: v for k, v in (("quality", quality), ("size", size)) if v is not None})
    case = worst_case(body, api="images", model="dall-e-3", price_book=book, at=AT)
    assert case.units == {variant: 3} and case.priced and case.usd == 3 * Decimal(each)
    assert case.input_tokens == 0 and case.output_from == "n images"
    one = worst_case({"prompt": "a cat"}, api="images", model="dall-e-3", price_book=book, at=AT)
    assert one.usd == Decimal("0.04"), "n defaults to 1"


def test_a_dall_e_3_worst_case_is_what_the_finished_call_is_priced_at(book: PriceBook) -> None:
    from meter.core.request import parse_body
    from meter.core.units import units_of

    raw = b'{"model": "dall-e-3", "prompt": "a cat", "quality": "hd", "size": "1792x1024", "n": 2}'
    info, parsed = parse_body(raw)
    units = units_of("images", True, False, None, 2, info.input_characters, info.image_variant)
    assert units is not None
    billed = book.cost_of(None, model="dall-e-3", at=AT, units=units.price_units())
    case = worst_case(parsed, api="images", model="dall-e-3", price_book=book, at=AT)
    assert billed.total == case.usd == Decimal("0.24")


@pytest.mark.parametrize(("quality", "size", "tokens"), [
    ("low", "1024x1024", 272), ("medium", "1024x1536", 1584), ("high", "1536x1024", 6208),
    ("high", "1024x1024", 4160), ("low", "auto", 408), ("medium", None, 1584),
    ("auto", "1024x1024", 4160), (None, None, 6240), ("standard", "1536x1024", 6208), ("hd", "4096x4096", 6240),
])
def test_gpt_image_1_output_is_bounded_by_the_per_image_tokens_of_its_quality_and_size(
        book: PriceBook, quality: Any, size: Any, tokens: int) -> None:
    prompt = "p" * 400
    body: dict[str, Any] = {"model": "gpt-image-1", "prompt": prompt, "n": 2}
    body.update({k: v for k, v in (("quality", quality), ("size", size)) if v is not None})
    case = worst_case(body, api="images", model="gpt-image-1", price_book=book, at=AT)
    assert (case.input_tokens, case.output_tokens) == (100, 2 * tokens) and case.priced
    assert case.usd == Decimal(100) * 5 / 10**6 + Decimal(2 * tokens) * 40 / 10**6


def test_gpt_image_partial_images_add_100_tokens_each_and_dated_ids_take_their_family(book: PriceBook) -> None:
    body = {"prompt": "", "quality": "low", "size": "1024x1024", "stream": True, "partial_images": 2, "n": 3}
    case = worst_case(body, api="images", model="gpt-image-1", requested_model="gpt-image-1-2025-04-15",
                      price_book=book, at=AT)
    assert case.output_tokens == 3 * (272 + 200)
    no_stream = worst_case({**body, "stream": False}, api="images", model="gpt-image-1", price_book=book, at=AT)
    assert no_stream.output_tokens == 3 * 272, "partial images are only sent in a stream"
    assert max_images_tokens(book, "gpt-image-1-mini-2025-10-06") == 6240
    assert max_images_tokens(book, "gpt-image-1.5") == 6240


def max_images_tokens(book: PriceBook, model: str) -> int:
    return worst_case({"prompt": "x"}, api="images", model=model, price_book=book, at=AT).output_tokens


def test_an_image_model_without_a_published_token_table_is_unpriced_with_its_prompt_priced(book: PriceBook) -> None:
    case = worst_case({"prompt": "x" * 40}, api="images", model="gpt-image-2", price_book=book, at=AT)
    assert not case.priced and case.unpriced is not None
    assert "gpt-image-2's image output tokens per image are not published" in case.unpriced
    on_a_deployment = worst_case({"prompt": "x" * 40}, api="images", model="gpt-image-1",
                                 requested_model="gpt-image-2", price_book=book, at=AT)
    assert on_a_deployment.output_tokens == 6240, "the priced model decides before the name the request gave"


def test_an_image_edit_prices_its_output_and_says_its_input_images_are_not_bounded(book: PriceBook) -> None:
    body = {"prompt": "x" * 4, "images": [{"image_url": "https://example.com/a.png"}], "quality": "low",
            "size": "1024x1024"}
    case = worst_case(body, api="images", model="gpt-image-1", price_book=book, at=AT)
    assert (case.input_tokens, case.output_tokens) == (1, 272), "the prompt is estimated; the images are not"
    assert case.usd == Decimal(1) * 5 / 10**6 + Decimal(272) * 40 / 10**6
    assert case.unpriced == "the input images of an edit are not bounded by the request"
    upload = worst_case(None, api="images", model="gpt-image-1", price_book=book, at=AT)
    assert upload.usd == 0 and upload.unpriced is not None and "multipart" in upload.unpriced


def test_tts_is_priced_per_character_exactly_or_left_unpriced(book: PriceBook) -> None:
    text = "Hello, world. " * 10
    case = worst_case({"model": "tts-1-hd", "input": text, "voice": "alloy"}, api="speech", model="tts-1-hd",
                      price_book=book, at=AT)
    assert case.units == {"speech_characters": len(text)} and case.priced
    assert case.usd == Decimal(len(text)) * 30 / 10**6 and case.output_from == "characters of input"
    unpriced = worst_case({"input": text}, api="speech", model="tts-1", price_book=book, at=AT)
    assert unpriced.usd == 0 and unpriced.unpriced is not None and "tts-1" in unpriced.unpriced


def test_gpt_4o_mini_tts_prices_its_text_and_leaves_its_audio_unpriced(book: PriceBook) -> None:
    body = {"input": "x" * 400, "instructions": "y" * 40}
    case = worst_case(body, api="speech", model="gpt-4o-mini-tts", price_book=book, at=AT)
    assert case.input_tokens == 110 and case.usd == Decimal(110) * Decimal("0.6") / 10**6
    assert case.unpriced is not None and "audio output" in case.unpriced


@pytest.mark.parametrize("api", ["transcriptions", "translations"])
def test_audio_uploads_are_unpriced_because_their_length_is_not_in_the_request(book: PriceBook, api: str) -> None:
    case = worst_case(None, api=api, model="whisper", price_book=book, at=AT)
    assert case.usd == 0 and case.unpriced is not None and "length" in case.unpriced


@pytest.mark.parametrize(("api", "operation"), [("batch_output", "retrieve"), ("responses", "retrieve"),
                                                ("responses", "resume"), ("responses", "cancel")])
def test_a_call_spent_before_it_is_seen_has_a_worst_case_of_zero(book: PriceBook, api: str, operation: str) -> None:
    case = worst_case(None, api=api, model=None, price_book=book, at=AT, operation=operation)
    assert case.spent_before and case.priced and case.usd == 0 and case.output_from.startswith("spent before")
    create = worst_case(None, api="responses", model=None, price_book=book, at=AT)
    assert not create.spent_before and not create.priced


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


@pytest.fixture(scope="module")
def builtin() -> PriceBook:
    return PriceBook.load()


@pytest.mark.parametrize(("model", "deployment_type", "region", "chars"), [
    ("gpt-5.4", "GlobalStandard", None, 400), ("gpt-5.4", "GlobalStandard", None, 4 * 300_000),
    ("gpt-5.4", "GlobalPriority", None, 4 * 300_000), ("gpt-4o-mini", "DataZoneStandard", None, 40),
    ("gpt-4o", "Standard", "swedencentral", 40), ("gpt-4o", "Standard", None, 40),
    ("gpt-4o", "ProvisionedManaged", None, 40), ("gpt-4o", "NotAType", None, 40), ("my-private-model", None, None, 8),
])
def test_kept_unit_prices_price_every_worst_case_as_the_book_does(builtin: PriceBook, model: str,
                                                                  deployment_type: str | None, region: str | None,
                                                                  chars: int) -> None:
    from meter.budgets.unit_prices import unit_prices

    prices = unit_prices(builtin)
    body = {"input": "x" * chars, "max_output_tokens": 1000, "tools": [{"type": "file_search"}]}
    first = worst_case(body, api="responses", model=model, price_book=builtin, deployment_type=deployment_type,
                       region=region, at=AT)
    asked = prices.lookups
    again = worst_case({**body, "input": "y" * (chars + 4)}, api="responses", model=model, price_book=builtin,
                       deployment_type=deployment_type, region=region, at=AT)
    assert prices.lookups == asked, "the second worst case of a key is priced from the kept unit prices"
    for case in (first, again):
        cost = case.cost
        assert cost is not None
        assert case.usd == sum((a for a in cost.amounts.values() if a is not None), Decimal(0))
        assert case.unpriced == (None if cost.total is not None else cost.reason)
    assert again.input_tokens == first.input_tokens + 1
    assert again.usd > first.usd or first.usd == 0 or not first.priced, "one more input token, priced"


def test_the_long_context_tier_is_part_of_the_key(builtin: PriceBook) -> None:
    short = worst_case({"input": "x" * 400, "max_output_tokens": 10}, api="responses", model="gpt-5.4",
                       price_book=builtin, at=AT)
    long = worst_case({"input": "x" * 4 * 300_000, "max_output_tokens": 10}, api="responses", model="gpt-5.4",
                      price_book=builtin, at=AT)
    assert long.cost is not None and long.cost.long_context and short.cost is not None
    assert long.usd / long.input_tokens > short.usd / short.input_tokens


def test_a_worst_case_costs_a_few_microseconds_and_asks_the_book_once_per_key(builtin: PriceBook) -> None:
    import time

    from meter.budgets.unit_prices import unit_prices

    chat = {"messages": [{"role": "system", "content": "You are helpful." * 5},
                         {"role": "user", "content": "Summarise this text please " * 20}], "max_tokens": 1000}
    requests: list[tuple[str, dict[str, Any] | None, str | None, str]] = [
        ("chat", chat, "gpt-4o", "chat"), ("images", {"prompt": "a cat", "quality": "hd"}, "dall-e-3", "dall-e-3"),
        ("images", {"prompt": "a cat", "quality": "high"}, "gpt-image-1", "gpt-image-1"),
        ("batch_output", None, None, "a Batch output download")]
    prices = unit_prices(builtin)
    n = 5_000
    figures = []
    for api, body, model, name in requests:
        operation = "retrieve" if api == "batch_output" else "create"
        worst_case(body, api=api, model=model, price_book=builtin, deployment_type="GlobalStandard", at=AT,
                   operation=operation)
        asked = prices.lookups
        started = time.process_time()
        for _ in range(n):
            worst_case(body, api=api, model=model, price_book=builtin, deployment_type="GlobalStandard", at=AT,
                       operation=operation)
        figures.append(f"{name}: {(time.process_time() - started) / n * 1e6:.1f} µs")
        assert prices.lookups == asked, f"{name}: every worst case after the first is priced from kept unit prices"
    print("\nworst_case, pricing included (CPU time): " + "; ".join(figures))
