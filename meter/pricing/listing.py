"""What the price listings (``meter pricing list``, ``show``, ``diff``) say about region groups and entries.

Two questions a listing must answer and the rows alone do not:

- **Which regions is a group?** The generated table names a group of regions that share a price
  ``r-<hash of the list>`` (``r-783045b6``): stable, so entry ids and the ledger's ``row_ids`` stay
  valid, and meaningless to a reader. ``region_labels`` names each group by its regions instead:
  ``swedencentral+switzerlandnorth``, ``canadaeast +8 more``, ``eastus +6 more incl. westus2``
  (a member only it has, where two groups would read the same). A group a person named
  (``us-gov``, ``dz-apac``) keeps its name.
- **When does an entry price a call?** Two entries of the same model, type and region can both
  run "to open": a later table layer (the Retail-generated one over the hand-kept history) takes
  over from its first day, and the older entry then prices nothing after it. ``entry_spans``
  works out, per region, the days each entry is the one ``PriceBook.find_row`` picks, and which
  entry takes over on the others.

Pure functions over a ``PriceBook``: nothing here prices a call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from meter.pricing.book import PriceBook
from meter.pricing.model import PriceRow

GENERATED_GROUP = re.compile(r"r-[0-9a-f]{8}")
"""The name ``meter.pricing.generate`` gives a group of regions: a hash of its region list."""


def region_groups(rows: Iterable[PriceRow]) -> dict[str, tuple[str, ...]]:
    """Group name -> its regions, for every row whose ``region`` names a group (not one region)."""
    return {r.region: tuple(sorted(r.regions)) for r in rows if r.region and r.regions != (r.region,)}


def region_labels(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """A readable name per group: its regions (``northeurope+westeurope``), or for more than two its first
    one and how many more (``canadaeast +8 more``), with a member only it has when two would read the same
    (``eastus +6 more incl. westus2``). A name a person gave (anything but ``r-<hash>``) is kept."""
    generated = {name: regions for name, regions in groups.items() if GENERATED_GROUP.fullmatch(name)}
    labels = {name: name for name in groups if name not in generated}
    base = {name: "+".join(regions) if len(regions) <= 2 else f"{regions[0]} +{len(regions) - 1} more"
            for name, regions in generated.items()}
    for name, regions in generated.items():
        alike = [set(generated[o]) for o in generated if o != name and base[o] == base[name]]
        label = base[name]
        if alike:
            own = [r for r in regions if not any(r in other for other in alike)]
            lacks = sorted(r for r in set().union(*alike) - set(regions) if all(r in other for other in alike))
            label += f" incl. {own[0]}" if own else f" excl. {lacks[0]}" if lacks else f" ({name})"
        labels[name] = label
    return labels


def region_label(region: str | None, labels: dict[str, str]) -> str:
    """A row's region as listings show it: the group's label, or the region itself."""
    return labels.get(region or "", region or "")


@dataclass(frozen=True)
class Span:
    """Days ``[start, end)`` of one entry in some regions: it applies, or ``instead`` applies."""

    start: date
    end: date | None
    instead: PriceRow | None
    """The row that prices these days instead (``None``: the entry itself does)."""


@dataclass(frozen=True)
class EntrySpans:
    """Where and when one entry is the one that prices a call."""

    spans: tuple[tuple[tuple[str, ...], tuple[Span, ...]], ...]
    """(regions, spans over the entry's dates) for each set of regions that reads the same; regions
    ``("",)`` for an entry priced the same everywhere."""

    @property
    def always(self) -> bool:
        """True when the entry prices every day of its range, in every region it names."""
        return all(s.instead is None for _, spans in self.spans for s in spans)

    def replaced_by(self) -> list[PriceRow]:
        """The rows that price some of the entry's days instead, once each, in date order."""
        seen: dict[str, PriceRow] = {}
        for _, spans in self.spans:
            for s in spans:
                if s.instead is not None:
                    seen.setdefault(s.instead.entry_id, s.instead)
        return sorted(seen.values(), key=lambda r: (r.effective_from, r.entry_id))


def entry_spans(book: PriceBook, entry: Sequence[PriceRow]) -> EntrySpans:
    """Per region of ``entry`` (its rows: one per kind), the days it applies and what applies instead."""
    first = entry[0]
    rivals = [r for r in book.rows(first.model) if r.deployment_type == first.deployment_type
              and r.kind == first.kind and r.above_input_tokens == first.above_input_tokens]
    by_spans: dict[tuple[Span, ...], list[str]] = {}
    for region in first.regions:
        bounds = {first.effective_from, *(d for r in rivals if region in r.regions
                                         for d in (r.effective_from, r.effective_until) if d is not None)}
        days = sorted(d for d in bounds if d >= first.effective_from
                      and (first.effective_until is None or d < first.effective_until))
        spans: list[Span] = []
        for i, day in enumerate(days):
            end = days[i + 1] if i + 1 < len(days) else first.effective_until
            row = book.find_row(first.model, first.deployment_type, region, first.kind, first.above_input_tokens, day)
            instead = None if row is None or row.entry_id == first.entry_id else row
            if spans and _id(spans[-1].instead) == _id(instead):
                spans[-1] = Span(spans[-1].start, end, instead)  # the same as the day before: one span
            else:
                spans.append(Span(day, end, instead))
        by_spans.setdefault(tuple(spans), []).append(region)
    return EntrySpans(tuple((tuple(regions), spans) for spans, regions in by_spans.items()))


def _id(row: PriceRow | None) -> str | None:
    return None if row is None else row.id
