"""Usage extraction from every documented shape."""

from __future__ import annotations

import dataclasses

import pytest

from meter.core.record import Usage
from meter.core.usage import SubsetExceeded, cap_subsets, from_chat, from_responses


def test_chat_full_details() -> None:
    u = from_chat({
        "completion_tokens": 203, "prompt_tokens": 3662, "total_tokens": 3865,
        "prompt_tokens_details": {"cached_tokens": 2944, "audio_tokens": 5, "cache_write_tokens": 11},
        "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 3},
    })
    assert u == Usage(input_tokens=3662, cached_input_tokens=2944, cache_write_input_tokens=11,
                      output_tokens=203, reasoning_output_tokens=192, audio_input_tokens=5,
                      audio_output_tokens=3, total_tokens=3865)
    assert u.uncached_input_tokens == 3662 - 2944 - 11


def test_chat_old_shape_and_missing_total() -> None:
    assert from_chat({"completion_tokens": 24, "prompt_tokens": 15, "total_tokens": 39}) == Usage(
        input_tokens=15, output_tokens=24, total_tokens=39)
    assert from_chat({"completion_tokens": 2, "prompt_tokens": 3}) == Usage(
        input_tokens=3, output_tokens=2, total_tokens=5)


def test_deepseek_top_level_reasoning_and_null_details() -> None:
    u = from_chat({"prompt_tokens": 19, "total_tokens": 1739, "completion_tokens": 1720,
                   "prompt_tokens_details": None, "reasoning_tokens": 7})
    assert u is not None and u.reasoning_output_tokens == 7 and u.cached_input_tokens == 0


def test_garbage_main_counts_are_unknown_never_zero() -> None:
    assert from_chat({"prompt_tokens": "12", "completion_tokens": -3, "total_tokens": True}) is None
    assert from_chat({"prompt_tokens": 12, "completion_tokens": -3}) is None
    assert from_chat({"prompt_tokens": 12.0, "completion_tokens": 3}) is None
    assert from_chat({"prompt_tokens": 10**12, "completion_tokens": 3}) is None
    assert from_chat({}) is None
    assert from_responses({"input_tokens": 5, "output_tokens": "7"}) is None
    assert from_chat(None) is None
    assert from_responses([1, 2]) is None


def test_garbage_details_count_as_absent() -> None:
    u = from_chat({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": True,
                   "prompt_tokens_details": {"cached_tokens": -1}, "completion_tokens_details": "x"})
    assert u == Usage(input_tokens=12, output_tokens=3, total_tokens=15)
    assert from_chat({"prompt_tokens": 12, "total_tokens": 12}) == Usage(input_tokens=12, total_tokens=12)


def test_responses_shape() -> None:
    u = from_responses({"input_tokens": 1220, "output_tokens": 100, "total_tokens": 1320,
                        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 1217},
                        "output_tokens_details": {"reasoning_tokens": 54}})
    assert u == Usage(input_tokens=1220, cache_write_input_tokens=1217, output_tokens=100,
                      reasoning_output_tokens=54, total_tokens=1320)


def test_cached_audio_is_read_where_the_service_splits_cached_tokens() -> None:
    """``cached_tokens_details.audio_tokens`` (realtime-class models): a part of both the cached and the
    audio input counts, so it is capped by both and never adds tokens."""
    chat = from_chat({
        "prompt_tokens": 1000, "completion_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 300, "audio_tokens": 600,
                                  "cached_tokens_details": {"text_tokens": 100, "audio_tokens": 200}},
    })
    assert chat is not None and (chat.cached_input_tokens, chat.audio_input_tokens, chat.cached_audio_input_tokens) \
        == (300, 600, 200)
    resp = from_responses({
        "input_tokens": 1000, "output_tokens": 10,
        "input_tokens_details": {"cached_tokens": 300, "audio_tokens": 100,
                                 "cached_tokens_details": {"audio_tokens": 250}},
    })
    # Read as reported, then capped by the audio count where every usage is capped (the hub's cap_subsets,
    # counted as a usage_subset_capped fault): it is never billed above the counts it is a part of.
    assert resp is not None and resp.cached_audio_input_tokens == 250
    assert cap_subsets(resp).cached_audio_input_tokens == 100
    plain = from_chat({"prompt_tokens": 5, "completion_tokens": 1})
    assert plain is not None and plain.cached_audio_input_tokens == 0
    garbage = from_chat({"prompt_tokens": 5, "completion_tokens": 1,
                         "prompt_tokens_details": {"cached_tokens_details": "x", "cached_tokens": 2}})
    assert garbage is not None and garbage.cached_audio_input_tokens == 0


def test_cached_audio_is_priced_at_its_own_rate() -> None:
    """gpt-4o-realtime-preview-2024-10-01 Global: cached audio 20, cached text 2.5, audio 100 per 1M
    (meters 'gpt4o realtime cached audio inp glbl' 0.02, 'cached text' 0.0025, 'audio inp' 0.1 per 1K)."""
    from datetime import date
    from decimal import Decimal

    from meter.pricing import PriceBook

    usage = from_chat({
        "prompt_tokens": 1000, "completion_tokens": 0,
        "prompt_tokens_details": {"cached_tokens": 300, "audio_tokens": 600,
                                  "cached_tokens_details": {"audio_tokens": 200}},
    })
    cost = PriceBook.load().cost_of(usage, model="gpt-4o-realtime-preview-2024-10-01", at=date(2026, 11, 1))
    # text in 1000 - 300 - 400 = 300 x 5; cached text 100 x 2.5; audio 400 x 100; cached audio 200 x 20
    assert cost.tokens == {"input": 300, "cached_input": 100, "audio_input": 400, "cached_audio_input": 200}
    assert cost.total == Decimal("0.0015") + Decimal("0.00025") + Decimal("0.04") + Decimal("0.004")


# -- subsets capped by their totals (issue 20, item 5) -----------------------------------------------------


def test_usage_whose_subsets_fit_is_the_same_object() -> None:
    fine = from_chat({
        "completion_tokens": 203, "prompt_tokens": 3662, "total_tokens": 3865,
        "prompt_tokens_details": {"cached_tokens": 2944, "audio_tokens": 5, "cache_write_tokens": 11},
        "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 3},
    })
    assert fine is not None and cap_subsets(fine) is fine
    # Every subset at its limit, and the parts the input is billed in (cached 4, of which audio 4; cache
    # write 6) filling it exactly: nothing exceeds.
    edge = Usage(input_tokens=10, cached_input_tokens=4, cache_write_input_tokens=6, output_tokens=5,
                 reasoning_output_tokens=5, audio_input_tokens=4, audio_output_tokens=5, cached_audio_input_tokens=4)
    assert cap_subsets(edge) is edge
    # Audio 10 beside cache write 6 would bill 6 input tokens twice (text input cannot go below 0): the
    # parts declared last give way first.
    over = dataclasses.replace(edge, audio_input_tokens=10)
    assert cap_subsets(over) == edge
    assert cap_subsets(Usage()) == Usage()


@pytest.mark.parametrize(("usage", "capped"), [
    # The cases: prompt 10 with cached 1e9 was billed $75; cache-write 1e9 $150.
    (Usage(input_tokens=10, cached_input_tokens=10**9, output_tokens=2, total_tokens=12),
     Usage(input_tokens=10, cached_input_tokens=10, output_tokens=2, total_tokens=12)),
    (Usage(input_tokens=10, cache_write_input_tokens=10**9, output_tokens=2, total_tokens=12),
     Usage(input_tokens=10, cache_write_input_tokens=10, output_tokens=2, total_tokens=12)),
    # Each fits alone, not together: cache-write gets what the cached part left.
    (Usage(input_tokens=10, cached_input_tokens=7, cache_write_input_tokens=7),
     Usage(input_tokens=10, cached_input_tokens=7, cache_write_input_tokens=3)),
    (Usage(input_tokens=10, output_tokens=3, reasoning_output_tokens=50),
     Usage(input_tokens=10, output_tokens=3, reasoning_output_tokens=3)),
    (Usage(input_tokens=10, audio_input_tokens=11, output_tokens=3, audio_output_tokens=4),
     Usage(input_tokens=10, audio_input_tokens=10, output_tokens=3, audio_output_tokens=3)),
    # Cached audio: a part of both the cached and the audio counts, as capped.
    (Usage(input_tokens=10, cached_input_tokens=50, audio_input_tokens=8, cached_audio_input_tokens=9),
     Usage(input_tokens=10, cached_input_tokens=10, audio_input_tokens=8, cached_audio_input_tokens=8)),
    (Usage(input_tokens=0, cached_input_tokens=5, output_tokens=0, reasoning_output_tokens=5),
     Usage()),
], ids=["cached", "cache-write", "cached+write", "reasoning", "audio", "cached-audio", "zero-totals"])
def test_a_subset_over_its_total_is_capped_and_the_totals_stay(usage: Usage, capped: Usage) -> None:
    out = cap_subsets(usage)
    assert out == capped and out is not usage
    assert (out.input_tokens, out.output_tokens, out.total_tokens) == (
        usage.input_tokens, usage.output_tokens, usage.total_tokens)
    assert out.cached_input_tokens + out.cache_write_input_tokens <= out.input_tokens
    assert cap_subsets(out) is out  # capped once is final
    fault = SubsetExceeded(usage, out)
    assert "capped" in str(fault) and isinstance(fault, ValueError)


def test_the_capped_usage_is_what_is_priced() -> None:
    """Priced after the cap: cached tokens cost at most the whole prompt at the cached rate."""
    from meter.pricing import PriceBook

    book = PriceBook.load()
    reported = from_chat({"prompt_tokens": 10, "completion_tokens": 2,
                          "prompt_tokens_details": {"cached_tokens": 10**9}})
    assert reported is not None
    before = book.cost_of(reported, model="gpt-4o-mini").total
    after = book.cost_of(cap_subsets(reported), model="gpt-4o-mini").total
    assert before is not None and after is not None
    # Capped where meter prices a call, and by the price book on its own too (before: $75.0000012).
    assert before == after == book.cost_of(Usage(input_tokens=10, cached_input_tokens=10, output_tokens=2,
                                                 total_tokens=12), model="gpt-4o-mini").total
    uncached = book.cost_of(Usage(input_tokens=10, output_tokens=2, total_tokens=12), model="gpt-4o-mini").total
    assert uncached is not None and after < uncached
