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
    after cached, cache-write and audio tokens (clamped at 0); text output is the
    output minus audio output. Reasoning tokens stay inside output and are billed
    at the output rate, never added a second time.
    """
    text_input = max(
        0,
        usage.input_tokens - usage.cached_input_tokens - usage.cache_write_input_tokens - usage.audio_input_tokens,
    )
    text_output = max(0, usage.output_tokens - usage.audio_output_tokens)
    counts = {
        "input": text_input,
        "cached_input": usage.cached_input_tokens,
        "cache_write": usage.cache_write_input_tokens,
        "output": text_output,
        "audio_input": usage.audio_input_tokens,
        "audio_output": usage.audio_output_tokens,
    }
    return {kind: n for kind, n in counts.items() if n > 0}
