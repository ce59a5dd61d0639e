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

import operator
from typing import Any

from meter.core.record import USAGE_KINDS, Usage

MAX_TOKENS = 10**9
"""More tokens than this in one call is not a count (the largest context windows hold ~2 million)."""


def _valid(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_TOKENS  # bool is not an int here


_Reader = tuple[tuple[str, tuple[tuple[str, ...], ...], bool], ...]
"""Per kind: its name, where this API reports it, and whether it is a main count."""


def _reader(api: str) -> _Reader:
    """The kinds a usage object reports (the tool calls are counted from the output items instead)."""
    return tuple((k.name, k.chat if api == "chat" else k.responses, k.primary) for k in USAGE_KINDS
                 if k.counted_from == "usage")


_CHAT, _RESPONSES = _reader("chat"), _reader("responses")
_REQUIRED = next(k.name for k in USAGE_KINDS if k.primary)
"""The first main count (input): a usage object without a valid one is unknown usage."""


def _read(usage: Any, reader: _Reader) -> Usage | None:
    """Every kind of the catalogue read from one usage object (see the module docstring)."""
    if type(usage) is not dict:
        return None
    counts: dict[str, int] = {}
    for name, paths, primary in reader:
        for path in paths:
            value: Any = usage
            for key in path:  # _at, inlined: this runs for every kind of every call
                value = value.get(key) if type(value) is dict else None
            if value is None:
                continue
            if _valid(value):
                counts[name] = value
                break
            if primary:  # a main count that is there but not a count: the usage is unknown
                return None
    if _REQUIRED not in counts:
        return None
    if "total_tokens" not in counts:
        counts["total_tokens"] = counts[_REQUIRED] + counts.get("output_tokens", 0)
    return Usage(**counts)


def from_chat(usage: Any) -> Usage | None:
    """Chat Completions and embeddings usage (``prompt_tokens`` / ``completion_tokens``)."""
    return _read(usage, _CHAT)


def from_responses(usage: Any) -> Usage | None:
    """Responses API usage (``input_tokens`` / ``output_tokens``)."""
    return _read(usage, _RESPONSES)


_PAIRS = tuple((k.name, parent) for k in USAGE_KINDS for parent in k.subset_of)
"""(part, whole) for every ``subset_of`` of the catalogue, parts after their wholes (declaration order)."""
_parts = operator.attrgetter(*(part for part, _ in _PAIRS))
_wholes = operator.attrgetter(*(whole for _, whole in _PAIRS))


def _billing() -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, int]],
                        tuple[tuple[str, tuple[tuple[str, int], ...]], ...]]:
    """The billing partition the catalogue implies (the kinds with a price column, each billed for its own
    part: its count less the parts of the priced kinds within it): each priced kind's priced direct parts;
    each one's own part as a sum of counts with signs; and, per whole, its parts' own parts summed."""
    priced = [k.name for k in USAGE_KINDS if k.price_kind]
    children = {name: tuple(k.name for k in USAGE_KINDS if name in k.subset_of and k.price_kind) for name in priced}
    below: dict[str, set[str]] = {}
    for name in reversed(priced):  # parts first: the catalogue declares wholes before their parts
        below[name] = set(children[name]).union(*(below[c] for c in children[name]))
    own: dict[str, dict[str, int]] = {}
    for name in reversed(priced):
        terms = {name: 1}
        for part in below[name]:
            for kind, sign in own[part].items():
                terms[kind] = terms.get(kind, 0) - sign
        own[name] = {kind: sign for kind, sign in terms.items() if sign}
    fits = []
    for name in priced:
        if below[name]:
            total: dict[str, int] = {}
            for part in below[name]:
                for kind, sign in own[part].items():
                    total[kind] = total.get(kind, 0) + sign
            fits.append((name, tuple((kind, sign) for kind, sign in total.items() if sign)))
    return children, own, tuple(fits)


_CHILDREN, _OWN, _FITS = _billing()
_NAMES = tuple(k.name for k in USAGE_KINDS)
_all_counts = operator.attrgetter(*_NAMES)
_JOINT = tuple((_NAMES.index(whole), tuple((_NAMES.index(kind), sign) for kind, sign in terms))
               for whole, terms in _FITS if len(terms) > 1)
"""The fits that are more than a pairwise cap (a whole's parts together), by position in ``_NAMES``."""


def _fits(usage: Usage) -> bool:
    counts = _all_counts(usage)
    for whole, terms in _JOINT:
        total = 0
        for i, sign in terms:
            total += sign * counts[i]
        if total > counts[whole]:
            return False
    return True


def cap_subsets(usage: Usage) -> Usage:
    """``usage`` with every subset capped by what it is a subset of; the same object when none exceeds.

    A service that reports more cached tokens than prompt tokens (prompt 10, cached 1e9) would
    otherwise be billed for the billion: the subset is priced at its own rate, never netted
    against its total. Two rules, from the catalogue: each part is capped by each whole it belongs
    to (in declaration order, so a part of a part sees its whole capped first); and the parts a
    whole is billed in fit in it (cached, cache-write and uncached audio input together at most the
    input), the parts declared last giving way first. The caller tells (``is not``) and counts the
    fault (``usage_subset_capped``): the record is priced and kept with the capped counts.
    """
    if all(map(operator.le, _parts(usage), _wholes(usage))) and _fits(usage):
        return usage  # the usual case: one comparison per subset, one sum per whole
    counts = {k.name: getattr(usage, k.name) for k in USAGE_KINDS}
    for part, whole in _PAIRS:
        counts[part] = min(counts[part], counts[whole])
    for whole, terms in _FITS:
        excess = sum(sign * counts[kind] for kind, sign in terms) - counts[whole]
        for part in reversed(_CHILDREN[whole]):
            if excess <= 0:
                break
            take = min(excess, sum(sign * counts[kind] for kind, sign in _OWN[part].items()))
            counts[part] -= take
            excess -= take
    return Usage(**counts)


class SubsetExceeded(ValueError):
    """A usage subset exceeded its total and was capped (the ``usage_subset_capped`` fault)."""

    def __init__(self, reported: Usage, capped: Usage) -> None:
        fields = [f"{name} {getattr(reported, name)} -> {getattr(capped, name)}" for name in _SUBSETS
                  if getattr(reported, name) != getattr(capped, name)]
        super().__init__(f"usage subsets over their totals (input {reported.input_tokens}, output "
                         f"{reported.output_tokens}) capped: {', '.join(fields)}")


_SUBSETS = tuple(dict.fromkeys(part for part, _ in _PAIRS))
