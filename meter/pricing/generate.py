"""Generate the built-in price rows from Azure's Retail Prices data: prices are read, never typed.

    python -m meter.pricing.generate pricing/azure-retail/2026-08-11-azure-openai.json \\
        --out pricing/20-azure-retail.toml --version 2026-12-07.1 --published 2026-12-07

Every price meter of the Azure OpenAI products is read with the one meter-name
parser (``meter.pricing.meters``): the token meters, and the built-in tools' fees,
whisper's hours and dall-e-3's images, each price converted to what its column is
per (``PriceKind.per``: 1M tokens, 1,000 calls, a session, a minute, an image);
token meters it does not map are listed with their reason, never written. For
each model, deployment type and context tier the
regions are grouped by the prices they share: Global and Data Zone get one row
for the price most regions have (the US and EU regions) and region-scoped rows
for the regions priced apart (US Government, the APAC data zone); Regional
Standard gets a row per group of regions. Each row starts on its meters'
``effectiveStartDate`` and names its meters in ``note``; ``source`` names the
snapshot. Nothing is multiplied: every number is the meter's own.

The output is deterministic (sorted), so a regenerated file differs only where
the data does.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from meter.pricing.deployment_types import DEPLOYMENT_TYPES, is_regional
from meter.pricing.errors import PricingFileError
from meter.pricing.meters import UnmappedMeter
from meter.pricing.model import KINDS
from meter.pricing.retail import RetailItem, load_retail, meter_prices, openai_items

#: Region sets that recur across models, named for people reading the table.
KNOWN_GROUPS: dict[str, frozenset[str]] = {
    "us-gov": frozenset({"usgovarizona", "usgovvirginia"}),
    "dz-apac": frozenset({"australiaeast", "centralindia", "eastasia", "japaneast", "japanwest", "jioindiawest",
                          "koreacentral", "southeastasia", "southindia"}),
}


@dataclass
class Read:
    """The meters of a Retail answer, read: prices by key and region, and what was left out and why."""

    prices: dict[tuple[str, str, int], dict[str, dict[str, tuple[Decimal, date, str]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict)))
    """(model, deployment type, tier) -> region -> kind -> (price in the tables' terms: USD per 1M tokens, per
    1,000 calls, per minute ..., start, meter name)."""
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    """(meter name, category, reason) of every token item not turned into a price."""
    conflicts: list[str] = field(default_factory=list)
    items: int = 0
    mapped: int = 0


def read_meters(items: Iterable[RetailItem]) -> Read:
    """Parse every price meter (``retail.meter_prices``: tokens, tool calls, sessions, seconds, images); two meters
    for one key and region keep the later one (and say so)."""
    read = Read()
    for item in items:
        found = meter_prices(item)
        if found is None:
            continue
        read.items += 1
        if isinstance(found, UnmappedMeter):
            read.skipped.append((item.meter_name, found.category, str(found)))
            continue
        key, prices = found
        slot = read.prices[(key.model, key.deployment_type, key.above_input_tokens)][item.region]
        for kind, price in prices.items():
            old = slot.get(kind)
            if old is not None and old[0] != price:
                read.conflicts.append(f"{key.model} {key.deployment_type} {kind} in {item.region or 'any region'}: "
                                      f"{old[2]!r} {old[0]} vs {item.meter_name!r} {price}; kept the later")
                if old[1] > item.start:
                    continue
            if old is None or old[1] <= item.start:
                slot[kind] = (price, item.start, item.meter_name)
        read.mapped += 1
    return read


@dataclass(frozen=True)
class Entry:
    model: str
    deployment_type: str
    tier: int
    region: str | None
    start: date
    prices: tuple[tuple[str, Decimal], ...]
    meters: tuple[str, ...]


def _group_name(regions: frozenset[str]) -> str:
    for name, known in KNOWN_GROUPS.items():
        if regions == known:
            return name
    digest = hashlib.sha1(",".join(sorted(regions)).encode()).hexdigest()[:8]
    return f"r-{digest}"


def entries(read: Read) -> tuple[list[Entry], dict[str, frozenset[str]]]:
    """The [[price]] entries and the region groups they use."""
    out: list[Entry] = []
    groups: dict[str, frozenset[str]] = {}
    for (model, dtype, tier), by_region in read.prices.items():
        if is_regional(dtype):
            scoped = _regional_groups(by_region)
        else:
            base, scoped = _base_and_exceptions(by_region)
            out.extend(_entries(model, dtype, tier, None, base, by_region))
        for regions, prices in scoped:
            region = next(iter(regions)) if len(regions) == 1 else _group_name(regions)
            if len(regions) > 1:
                groups[region] = regions
            out.extend(_entries(model, dtype, tier, region, {k: (p, regions) for k, p in prices.items()},
                                by_region))
    out.sort(key=lambda e: (e.model, DEPLOYMENT_TYPES.index(e.deployment_type), e.region or "", e.tier, e.start))
    return out, groups


_Prices = dict[str, dict[str, tuple[Decimal, date, str]]]


def _regional_groups(by_region: _Prices) -> list[tuple[frozenset[str], dict[str, Decimal]]]:
    """Regional Standard: regions grouped by their whole set of prices (a kind a region lacks stays unknown)."""
    signature: dict[tuple[tuple[str, Decimal], ...], set[str]] = defaultdict(set)
    for region, kinds in by_region.items():
        if region:
            signature[tuple(sorted((k, v[0]) for k, v in kinds.items()))].add(region)
    return [(frozenset(regions), dict(prices)) for prices, regions in signature.items()]


def _base_and_exceptions(
    by_region: _Prices,
) -> tuple[dict[str, tuple[Decimal, frozenset[str]]], list[tuple[frozenset[str], dict[str, Decimal]]]]:
    """Global and Data Zone: per kind, the price most regions have is the row for every region; the
    regions priced apart for a kind get region-scoped rows for that kind only. A region without a
    meter for a kind takes the common price (Global and Data Zone are not bound to one region)."""
    base: dict[str, tuple[Decimal, frozenset[str]]] = {}
    kinds = {k for prices in by_region.values() for k in prices}
    for kind in kinds:
        count: dict[Decimal, set[str]] = defaultdict(set)
        for region, prices in by_region.items():
            if kind in prices:
                count[prices[kind][0]].add(region)
        price, regions = max(count.items(), key=lambda pr: (len(pr[1]), "eastus2" in pr[1], -pr[0]))
        base[kind] = (price, frozenset(regions))
    deviations: dict[tuple[tuple[str, Decimal], ...], set[str]] = defaultdict(set)
    for region, prices in by_region.items():
        apart = tuple(sorted((k, v[0]) for k, v in prices.items() if v[0] != base[k][0]))
        if apart and region:
            deviations[apart].add(region)
    return base, [(frozenset(regions), dict(prices)) for prices, regions in deviations.items()]


def _entries(model: str, dtype: str, tier: int, region: str | None,
             prices: dict[str, tuple[Decimal, frozenset[str]]], by_region: _Prices) -> list[Entry]:
    """One entry per start date: kinds metered from different dates get their own entries."""
    starts: dict[date, list[str]] = defaultdict(list)
    for kind, (_, regions) in prices.items():
        starts[min(by_region[r][kind][1] for r in regions if kind in by_region[r])].append(kind)
    out = []
    for start, kinds in sorted(starts.items()):
        meters = sorted({by_region[r][k][2] for k in kinds for r in prices[k][1] if k in by_region[r]})
        out.append(Entry(model, dtype, tier, region, start,
                         tuple((k, prices[k][0]) for k in KINDS if k in kinds), tuple(meters)))
    return out


def _decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(read: Read, *, version: str, published: date, snapshot: str, source: str,
           header: Sequence[str] | None = None) -> str:
    """The table as TOML text; ``header`` replaces the comment lines at the top."""
    rows, groups = entries(read)
    if header is None:
        header = [
            f"GENERATED by `python -m meter.pricing.generate` from {snapshot}: do not edit by hand.",
            "Every price is an Azure Retail Prices meter's own; `note` names the meters of each entry.",
            "Regenerate from newer Retail data, or correct it in 30-azure-openai-changes.toml.",
        ]
    lines = [
        *(f"# {line}" for line in header),
        "",
        "[table]",
        f"version = {_quote(version)}",
        f"published = {published.isoformat()}",
        'currency = "USD"',
        f"description = {_quote('Azure OpenAI list prices generated from Azure Retail Prices data ' + snapshot)}",
        "",
        "[sources]",
        f"retail = {_quote(source)}",
        "",
        "[region_groups]",
    ]
    for name in sorted(groups):
        regions = ", ".join(_quote(r) for r in sorted(groups[name]))
        lines.append(f"{name} = [{regions}]")
    lines.append("")
    for entry in rows:
        lines.append("[[price]]")
        lines.append(f"model = {_quote(entry.model)}")
        lines.append(f"deployment_type = {_quote(entry.deployment_type)}")
        if entry.region:
            lines.append(f"region = {_quote(entry.region)}")
        if entry.tier:
            lines.append(f"above_input_tokens = {entry.tier}")
        lines.append(f"effective_from = {entry.start.isoformat()}")
        for kind in KINDS:
            for k, price in entry.prices:
                if k == kind:
                    lines.append(f"{kind} = {_quote(_decimal(price))}")
        lines.append('source = "retail"')
        lines.append(f"note = {_quote('meters: ' + '; '.join(entry.meters))}")
        lines.append("")
    return "\n".join(lines)


def report(read: Read) -> str:
    """What was read and what was not, by category."""
    by_category: dict[str, set[str]] = defaultdict(set)
    for name, category, _ in read.skipped:
        by_category[category].add(name)
    lines = [f"{read.mapped} of {read.items} token and unit prices mapped to "
             f"{len(read.prices)} (model, deployment type, tier) keys"]
    for category in sorted(by_category):
        lines.append(f"not mapped, {category}: {len(by_category[category])} meters")
    lines.extend(f"conflict: {c}" for c in read.conflicts)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meter.pricing.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("retail", metavar="RETAIL.json", help="a saved Retail Prices answer or snapshot")
    parser.add_argument("--out", required=True, metavar="TABLE.toml")
    parser.add_argument("--version", required=True, help="table version, e.g. 2026-12-01.1")
    parser.add_argument("--published", type=date.fromisoformat, default=date.today())
    args = parser.parse_args(argv)
    try:
        items = openai_items(load_retail(args.retail).items)
    except PricingFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    snapshot = Path(args.retail).name
    read = read_meters(items)
    text = render(read, version=args.version, published=args.published, snapshot=snapshot,
                  source=f"Azure Retail Prices API meters, https://prices.azure.com/api/retail/prices ({snapshot})")
    Path(args.out).write_text(text, encoding="utf-8")
    print(report(read), file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
