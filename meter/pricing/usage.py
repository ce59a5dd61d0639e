"""What ``pricing`` needs from a usage object, and how its counts split into price buckets.

``pricing`` must not import ``meter``, so usage is duck-typed through a Protocol;
``meter.Usage`` satisfies it, and so does any object with the same int attributes.
"""

from __future__ import annotations

from typing import Protocol


class UsageLike(Protocol):
    """Token counts of one call.

    Subsets, not addends: ``cached_input_tokens``, ``cache_write_input_tokens`` and
    ``audio_input_tokens`` are parts of ``input_tokens``; ``reasoning_output_tokens``
    and ``audio_output_tokens`` are parts of ``output_tokens``.
    """

    @property
    def input_tokens(self) -> int: ...
    @property
    def cached_input_tokens(self) -> int: ...
    @property
    def cache_write_input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def reasoning_output_tokens(self) -> int: ...
    @property
    def audio_input_tokens(self) -> int: ...
    @property
    def audio_output_tokens(self) -> int: ...
    @property
    def total_tokens(self) -> int: ...


def token_buckets(usage: UsageLike) -> dict[str, int]:
    """Mutually exclusive token counts per price kind (only the non-zero ones).

    Each token is billed exactly once: text input is what is left of the input
    after cached, cache-write and (uncached) audio tokens (clamped at 0); text
    output is the output minus audio output. Cached audio (``cached_audio_input_tokens``,
    a part of both the cached and the audio counts, optional on the usage object)
    is its own bucket. Reasoning tokens stay inside output and are billed at the
    output rate, never added a second time.
    """
    cached_audio = min(getattr(usage, "cached_audio_input_tokens", 0) or 0, usage.cached_input_tokens,
                       usage.audio_input_tokens)
    uncached_audio = usage.audio_input_tokens - cached_audio
    text_input = max(
        0,
        usage.input_tokens - usage.cached_input_tokens - usage.cache_write_input_tokens - uncached_audio,
    )
    text_output = max(0, usage.output_tokens - usage.audio_output_tokens)
    counts = {
        "input": text_input,
        "cached_input": usage.cached_input_tokens - cached_audio,
        "cache_write": usage.cache_write_input_tokens,
        "output": text_output,
        "audio_input": uncached_audio,
        "cached_audio_input": cached_audio,
        "audio_output": usage.audio_output_tokens,
    }
    return {kind: n for kind, n in counts.items() if n > 0}
