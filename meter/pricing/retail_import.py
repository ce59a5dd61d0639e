"""Turn a saved Azure Retail Prices answer into a user price table: the rows the tables lack.

``meter pricing check`` says which meters the tables lack or hold at another
price; this writes exactly those as a table to layer on top of the built-ins
(``Meter(price_tables=...)``, ``PriceBook.load(path)`` or ``--table``), so that
checking again comes out clean. For every (model, deployment type, context tier, kind) with a finding the whole
key is written from the data, every region of it, so a Global or Data Zone row
never carries one region's price to the others. Rows the tables changed after
the data's meters started (a change the data does not show yet) are kept, not
overwritten with the older price, and reported. ``everything=True`` writes every
mapped meter instead.

The meter names are read by the one parser, ``meter.pricing.meters``, and the rows are
laid out by the same code that generates the built-in table, so an imported row
has the same model id, deployment type and region as the built-in row it
replaces. It only converts; it never fetches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from meter.pricing.book import PriceBook
from meter.pricing.check import CheckResult, Finding, check
from meter.pricing.generate import entries, read_meters, render
from meter.pricing.meters import UnmappedMeter
from meter.pricing.retail import RetailData, RetailItem, meter_prices, openai_items

_Key = tuple[str, str, int, str]
"""(model, deployment type, tier, kind)."""


@dataclass
class ImportResult:
    """The table text, the findings it answers, and what it left out."""

    toml: str
    entries: int
    written: list[str] = field(default_factory=list)
    """One line per key written, with why (missing, or the price the tables hold)."""
    kept: list[str] = field(default_factory=list)
    """Keys not written because the tables hold a change newer than the data."""
    unmapped: dict[str, int] = field(default_factory=dict)
    """Meters the parser does not map, counted by category."""

    def report(self) -> str:
        lines = [f"wrote {self.entries} price entries" + (f" for {len(self.written)} prices:" if self.written else "")]
        lines.extend(f"  {line}" for line in self.written)
        if self.kept:
            lines.append(f"kept {len(self.kept)} newer built-in prices (the data predates them):")
            lines.extend(f"  {line}" for line in self.kept)
        if self.unmapped:
            lines.append("not mapped: " + ", ".join(f"{cat} {n}" for cat, n in sorted(self.unmapped.items())))
        return "\n".join(lines)


def _key(finding: Finding) -> _Key:
    return (finding.key.model, finding.key.deployment_type, finding.key.above_input_tokens, finding.key.kind)


def _money(value: Decimal | None) -> str:
    return "none" if value is None else format(value.normalize(), "f")


def _describe(key: _Key) -> str:
    model, dtype, tier, kind = key
    return f"{model} {dtype} {kind}" + (f" above {tier} input tokens" if tier else "")


def wanted_keys(result: CheckResult) -> tuple[dict[_Key, str], dict[_Key, str]]:
    """Keys to write (with why) and keys to keep (the tables' row is newer than the meter)."""
    write: dict[_Key, str] = {}
    keep: dict[_Key, str] = {}
    for finding in result.missing:
        write.setdefault(_key(finding), "missing")
    for finding in result.differ:
        assert finding.row is not None
        key = _key(finding)
        if finding.row.effective_from > finding.start:
            keep.setdefault(key, f"table {_money(finding.table_price)} from {finding.row.effective_from} "
                                 f"({finding.row.id}), meter {_money(finding.meter_price)} from {finding.start}")
        else:
            write.setdefault(key, f"table {_money(finding.table_price)} ({finding.row.id}), "
                                  f"meter {_money(finding.meter_price)} from {finding.start}")
    for key in keep:
        write.pop(key, None)
    return write, keep


def _item_keys(item: RetailItem) -> list[_Key]:
    """The keys one item prices (its kind, and the kinds its meter bills too); none for a meter not read."""
    found = meter_prices(item)
    if found is None or isinstance(found, UnmappedMeter):
        return []
    key, prices = found
    return [(key.model, key.deployment_type, key.above_input_tokens, kind) for kind in prices]


def import_retail(
    book: PriceBook,
    data: RetailData,
    *,
    version: str,
    published: date,
    source_name: str,
    at: date | None = None,
    everything: bool = False,
) -> ImportResult:
    """The user table for ``data`` on top of ``book`` (see the module docstring)."""
    items = [i for i in openai_items(data.items) if i.is_consumption]
    result = check(book, items, at=at or data.fetched)
    if everything:
        write = {k: "all" for i in items for k in _item_keys(i)}
        keep: dict[_Key, str] = {}
    else:
        write, keep = wanted_keys(result)
    selected = [i for i in items if any(k in write for k in _item_keys(i))]
    read = read_meters(selected)
    text = render(
        read,
        version=version,
        published=published,
        snapshot=source_name,
        source=f"Azure Retail Prices API, https://prices.azure.com/api/retail/prices ({source_name})",
        header=[
            "Imported from Azure Retail Prices data by `meter pricing import-azure-retail`.",
            "The prices the built-in tables lack or hold at another price; layer this table on top of",
            "them (Meter(price_tables=...) or --table). Every price is a meter's own; `note` names the meters.",
        ],
    )
    return ImportResult(
        toml=text,
        entries=len(entries(read)[0]),
        written=[f"{_describe(k)}: {why}" for k, why in sorted(write.items()) if not everything],
        kept=[f"{_describe(k)}: {why}" for k, why in sorted(keep.items())],
        unmapped=result.unmapped_by_category(),
    )
