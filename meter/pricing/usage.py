"""What ``pricing`` needs from a usage object, and how its counts split into price buckets.

``pricing`` must not import ``meter``, so usage is duck-typed through a Protocol;
``meter.Usage`` satisfies it, and so does any object with the same int attributes.
"""

from __future__ import annotations

import operator
from typing import Protocol

from meter.pricing.model import PRICE_KINDS, UNIT_KINDS

_COUNTED = tuple(kind for kind in PRICE_KINDS if kind.name not in UNIT_KINDS)
"""The price kinds a usage object counts (the others are a call's units: ``PriceBook.cost_of(units=...)``)."""


class UsageLike(Protocol):
    """Token counts of one call: the two every call has, and any of the attributes ``PRICE_KINDS`` counts by.

    Subsets, not addends: ``cached_input_tokens``, ``cache_write_input_tokens`` and
    ``audio_input_tokens`` are parts of ``input_tokens``; ``reasoning_output_tokens``
    and ``audio_output_tokens`` are parts of ``output_tokens``; ``cached_audio_input_tokens``
    is a part of both the cached and the audio input. The other counts are read by name
    (``PriceKind.counted_by``; absent is 0), so this protocol does not list them again.
    """

    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...


def _descendants(name: str, within: dict[str, tuple[str, ...]]) -> frozenset[str]:
    found: set[str] = set()
    todo = list(within[name])
    while todo:
        kind = todo.pop()
        if kind not in found:
            found.add(kind)
            todo.extend(within[kind])
    return frozenset(found)


def _plan() -> tuple[tuple[str, ...], tuple[tuple[int, tuple[int, ...]], ...], tuple[tuple[int, tuple[int, ...]], ...]]:
    """From ``_COUNTED``, by position in it: the attribute counting each kind; the caps (kind, the kinds
    it lies within), wholes first; and each kind with every kind within it, parts first."""
    within = {kind.name: kind.within for kind in _COUNTED}
    index = {kind.name: i for i, kind in enumerate(_COUNTED)}
    below = {name: _descendants(name, within) for name in within}
    wholes_first = sorted(within, key=lambda name: sum(name in below[other] for other in within))
    caps = tuple((index[name], tuple(index[p] for p in within if name in within[p])) for name in wholes_first)
    parts_first = tuple((index[name], tuple(sorted(index[b] for b in below[name]))) for name in reversed(wholes_first))
    return tuple(kind.counted_by for kind in _COUNTED), caps, parts_first


_ATTRIBUTES, _CAPS, _PARTS_FIRST = _plan()
_CAP_PAIRS = tuple((i, parent) for i, parents in _CAPS for parent in parents)
_SUBTRACT = tuple((i, parts) for i, parts in _PARTS_FIRST if parts)
_counts = operator.attrgetter(*_ATTRIBUTES)


def _read(usage: UsageLike) -> list[int]:
    try:
        return [value or 0 for value in _counts(usage)]
    except AttributeError:  # a usage object of the caller's own, without the rarer counts
        return [getattr(usage, attribute, 0) or 0 for attribute in _ATTRIBUTES]


def token_buckets(usage: UsageLike) -> dict[str, int]:
    """Mutually exclusive token counts per price kind (only the non-zero ones).

    Each token is billed exactly once (``PRICE_KINDS``): a kind's bucket is its count less the
    buckets of every kind within it, so text input is what is left of the input after cached,
    cache-write and audio tokens, cached audio (a part of both the cached and the audio counts) is
    its own bucket and in neither of theirs, and text output is the output less the audio output.
    Reasoning tokens are no price kind: they stay inside output, billed at the output rate, never
    added a second time. A count above a count it lies within is first capped by it (meter caps
    usage before it prices it; this keeps any other usage object from being billed for more
    tokens than it reports), and no bucket is negative.
    """
    counts = _read(usage)
    for i, parent in _CAP_PAIRS:
        if counts[i] > counts[parent]:
            counts[i] = counts[parent]
    buckets = counts[:]
    for i, parts in _SUBTRACT:
        left = buckets[i]
        for part in parts:
            left -= buckets[part]
        buckets[i] = left if left > 0 else 0
    return {name: n for name, n in zip(_NAMES, buckets, strict=True) if n}


_NAMES = tuple(kind.name for kind in _COUNTED)
