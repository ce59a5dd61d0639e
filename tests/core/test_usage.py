"""Usage extraction from every documented shape."""

from __future__ import annotations

from meter.record import Usage
from meter.usage import from_chat, from_responses


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
