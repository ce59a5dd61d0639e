"""Usage extraction: the service's usage objects -> ``meter.Usage``.

Tolerant by design: every details object is optional, keys may come in any
order, and non-OpenAI models behind Azure use their own shapes (DeepSeek puts
``reasoning_tokens`` at the top level). A detail that is not a non-negative int
counts as absent, never as an error. But the main counts are never made up: a
usage object without a valid input count, or whose input or output count is
negative, fractional, a string or past ``MAX_TOKENS``, gives ``None`` (unknown)
rather than a zero or an absurd number that would be priced.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from meter.core.record import Usage

MAX_TOKENS = 10**9
"""More tokens than this in one call is not a count (the largest context windows hold ~2 million)."""


def _valid(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_TOKENS  # bool is not an int here


def _int(obj: Any, key: str) -> int:
    if type(obj) is not dict:
        return 0
    value = obj.get(key)
    return value if type(value) is int and 0 <= value <= MAX_TOKENS else 0  # inline: 8 calls per record


def _counts(usage: dict[str, Any], input_key: str, output_key: str) -> bool:
    """The main counts are usable: the input count valid, the output count valid or absent."""
    return _valid(usage.get(input_key)) and (output_key not in usage or _valid(usage[output_key]))


def _has_int(obj: Any, key: str) -> bool:
    return isinstance(obj, dict) and _valid(obj.get(key))


def _cached_audio(details: Any) -> int:
    """``cached_tokens_details.audio_tokens`` (realtime-class models), capped by the cached and audio counts
    it is a part of, so a wrong detail can never bill more tokens than were reported."""
    if type(details) is not dict:
        return 0
    cached_audio = _int(details.get("cached_tokens_details"), "audio_tokens")
    return min(cached_audio, _int(details, "cached_tokens"), _int(details, "audio_tokens"))


def from_chat(usage: Any) -> Usage | None:
    """Chat Completions and embeddings usage (``prompt_tokens`` / ``completion_tokens``)."""
    if not isinstance(usage, dict) or not _counts(usage, "prompt_tokens", "completion_tokens"):
        return None
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    input_tokens = _int(usage, "prompt_tokens")
    output_tokens = _int(usage, "completion_tokens")
    reasoning = _int(completion, "reasoning_tokens") or _int(usage, "reasoning_tokens")
    total = _int(usage, "total_tokens") if _has_int(usage, "total_tokens") else input_tokens + output_tokens
    return Usage(
        input_tokens=input_tokens,
        cached_input_tokens=_int(prompt, "cached_tokens"),
        cache_write_input_tokens=_int(prompt, "cache_write_tokens"),
        output_tokens=output_tokens,
        reasoning_output_tokens=reasoning,
        audio_input_tokens=_int(prompt, "audio_tokens"),
        audio_output_tokens=_int(completion, "audio_tokens"),
        total_tokens=total,
        cached_audio_input_tokens=_cached_audio(prompt),
    )


def from_responses(usage: Any) -> Usage | None:
    """Responses API usage (``input_tokens`` / ``output_tokens``)."""
    if not isinstance(usage, dict) or not _counts(usage, "input_tokens", "output_tokens"):
        return None
    details_in = usage.get("input_tokens_details")
    details_out = usage.get("output_tokens_details")
    input_tokens = _int(usage, "input_tokens")
    output_tokens = _int(usage, "output_tokens")
    total = _int(usage, "total_tokens") if _has_int(usage, "total_tokens") else input_tokens + output_tokens
    return Usage(
        input_tokens=input_tokens,
        cached_input_tokens=_int(details_in, "cached_tokens"),
        cache_write_input_tokens=_int(details_in, "cache_write_tokens"),
        output_tokens=output_tokens,
        reasoning_output_tokens=_int(details_out, "reasoning_tokens"),
        audio_input_tokens=_int(details_in, "audio_tokens"),
        audio_output_tokens=_int(details_out, "audio_tokens"),
        total_tokens=total,
        cached_audio_input_tokens=_cached_audio(details_in),
    )


def cap_subsets(usage: Usage) -> Usage:
    """``usage`` with every subset capped by what it is a subset of; the same object when none exceeds.

    A service that reports more cached tokens than prompt tokens (prompt 10, cached 1e9) would
    otherwise be billed for the billion: the subset is priced at its own rate, never netted
    against its total. Caps, in this order: cached input by input; cache-write input by the
    input the cached part left (together they are at most the input); reasoning by output;
    audio input by input; audio output by output; cached audio by the capped cached and audio
    input counts. The caller tells (``is not``) and counts the fault (``usage_subset_capped``):
    the record is priced and kept with the capped counts, and the fault says they were changed.
    """
    total_in, total_out = usage.input_tokens, usage.output_tokens
    cached, write = usage.cached_input_tokens, usage.cache_write_input_tokens
    audio_in, cached_audio = usage.audio_input_tokens, usage.cached_audio_input_tokens
    if (cached + write <= total_in and audio_in <= total_in and cached_audio <= cached and cached_audio <= audio_in
            and usage.reasoning_output_tokens <= total_out and usage.audio_output_tokens <= total_out):
        return usage  # the usual case: one comparison per subset
    cached = min(cached, total_in)
    write = min(write, total_in - cached)
    audio_in = min(audio_in, total_in)
    return dataclasses.replace(
        usage,
        cached_input_tokens=cached,
        cache_write_input_tokens=write,
        reasoning_output_tokens=min(usage.reasoning_output_tokens, total_out),
        audio_input_tokens=audio_in,
        audio_output_tokens=min(usage.audio_output_tokens, total_out),
        cached_audio_input_tokens=min(cached_audio, cached, audio_in),
    )


class SubsetExceeded(ValueError):
    """A usage subset exceeded its total and was capped (the ``usage_subset_capped`` fault)."""

    def __init__(self, reported: Usage, capped: Usage) -> None:
        fields = [f"{name} {getattr(reported, name)} -> {getattr(capped, name)}" for name in _SUBSETS
                  if getattr(reported, name) != getattr(capped, name)]
        super().__init__(f"usage subsets over their totals (input {reported.input_tokens}, output "
                         f"{reported.output_tokens}) capped: {', '.join(fields)}")


_SUBSETS = ("cached_input_tokens", "cache_write_input_tokens", "reasoning_output_tokens", "audio_input_tokens",
            "audio_output_tokens", "cached_audio_input_tokens")
