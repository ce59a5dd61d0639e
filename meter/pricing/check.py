"""Compare price tables with Azure's Retail Prices data: which rows disagree, which meters the tables lack.

Used by the cross-check test (against the checked-in excerpt) and by
``meter pricing check FILE.json`` (against an answer the user saved). Every
meter the meter parser maps (token meters, and the tools' fees, whisper's hours
and dall-e-3's images, each in its column's terms: ``retail.meter_prices``) says:
this model, deployment type, region, kind and tier cost this much from the
meter's start date until the day the data was fetched. So the row the tables
would use is looked up on both days and each
must agree with the meter within ``TOLERANCE``; where no row applies, the meter
is missing from the tables. Rows in force on the data's day that no meter
stands behind (a region Azure does not sell the model in, a kind it does not
bill) are listed too, for the models and regions the data has meters for: a price for
something Azure does not sell is an invention.
Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from meter.pricing.book import PriceBook
from meter.pricing.meters import MeterKey, UnmappedMeter
from meter.pricing.model import PRICE_KINDS, PriceRow
from meter.pricing.retail import RetailItem, meter_prices

PRICE_KIND = {kind.name: kind for kind in PRICE_KINDS}

TOLERANCE = Decimal("0.005")
"""Relative difference (0.5 %) under which a table price agrees with a meter."""


@dataclass(frozen=True)
class Finding:
    """One meter (in one region) whose price the tables do not hold on ``day``."""

    meter: str
    region: str
    key: MeterKey
    meter_price: Decimal
    start: date
    day: date
    row: PriceRow | None
    table_price: Decimal | None

    @property
    def what(self) -> str:
        where = f" in {self.region}" if self.region else ""
        tier = f" above {self.key.above_input_tokens} input tokens" if self.key.above_input_tokens else ""
        head = f"{self.key.model} {self.key.deployment_type}{where} {self.key.kind}{tier}"
        if self.row is None:
            return f"{head}: no row on {self.day}; meter {self.meter!r} says {self.meter_price} from {self.start}"
        later = (f" (the row starts {self.row.effective_from}, after the meter: a change this data does not show)"
                 if self.row.effective_from > self.start else "")
        return (f"{head} on {self.day}: table {self.table_price} ({self.row.id}), meter {self.meter!r} "
                f"{self.meter_price} from {self.start}{later}")


@dataclass(frozen=True)
class NoMeter:
    """A row that prices calls where Azure has no meter: a kind it does not bill, or regions it does not
    sell the model in (``regions``: where the row applies without a meter; ``("",)`` for a row with one
    price everywhere)."""

    row: PriceRow
    regions: tuple[str, ...]

    @property
    def what(self) -> str:
        where = f" in {', '.join(self.regions)}" if self.regions != ("",) else ""
        return f"{self.row.id}{where}: {self.row.usd_per_1m} {PRICE_KIND[self.row.kind].per_label}, no Azure meter"


@dataclass
class CheckResult:
    day: date
    """The data's day: rows in force then are checked for a meter behind them."""
    agree: int = 0
    differ: list[Finding] = field(default_factory=list)
    missing: list[Finding] = field(default_factory=list)
    unmapped: list[tuple[str, str, str]] = field(default_factory=list)
    """(meter name, category, reason) of token meters the parser does not map."""
    compared: int = 0
    """The price meters (meter x region) read: agree + differ + missing + unmapped."""
    no_meter: list[NoMeter] = field(default_factory=list)
    """Rows in force on ``day`` for a metered model, where no meter stands behind them."""
    unmetered_models: list[str] = field(default_factory=list)
    """Models the tables price on ``day`` that the data has no meter for at all (hand-written rows)."""

    def unmapped_by_category(self) -> dict[str, int]:
        """How many token prices the parser left out, per category."""
        out: dict[str, int] = {}
        for _, category, _ in self.unmapped:
            out[category] = out.get(category, 0) + 1
        return dict(sorted(out.items()))

    @property
    def clean(self) -> bool:
        """Nothing disagrees, nothing is missing, nothing is priced without a meter."""
        return not (self.differ or self.missing or self.no_meter)


def _close(a: Decimal, b: Decimal) -> bool:
    if a == b:
        return True
    scale = max(abs(a), abs(b))
    return scale > 0 and abs(a - b) / scale <= TOLERANCE


def check(book: PriceBook, items: Iterable[RetailItem], at: date | None = None) -> CheckResult:
    """Every token meter of ``items`` against ``book``.

    ``at`` is the day the data was fetched (default: the newest meter start, the
    earliest day the data can be from): each meter is compared on its start and
    on that day, and rows in force that day are searched for meters.
    """
    read = [(item, meter_prices(item)) for item in items]
    priced = [(item, found) for item, found in read if found is not None]
    day = at or max((i.start for i, _ in priced), default=date.min)
    result = CheckResult(day, compared=len(priced))
    metered: dict[tuple[str, str, int, str], set[str]] = defaultdict(set)
    for item, found in priced:
        if isinstance(found, UnmappedMeter):
            result.unmapped.append((item.meter_name, found.category, str(found)))
            continue
        key, prices = found
        ok = True
        for kind, price in prices.items():
            metered[(key.model, key.deployment_type, key.above_input_tokens, kind)].add(item.region)
            kind_key = replace(key, kind=kind)
            for when in sorted({item.start, max(item.start, day)}):
                row = book.find_row(key.model, key.deployment_type, item.region, kind, key.above_input_tokens, when)
                if row is None:
                    result.missing.append(Finding(item.meter_name, item.region, kind_key, price, item.start, when,
                                                  None, None))
                    ok = False
                    break
                table_price, _ = book.row_price(row)
                if not _close(table_price, price):
                    result.differ.append(
                        Finding(item.meter_name, item.region, kind_key, price, item.start, when, row, table_price))
                    ok = False
                    break
            if not ok:
                break
        if ok:
            result.agree += 1
    # Only what the data can speak for: models it has meters of, regions it has meters in (an answer
    # filtered to one region says nothing about the others).
    models = {m for (m, _, _, _) in metered}
    regions_seen = {r for regions in metered.values() for r in regions}
    unmetered: set[str] = set()
    flagged: dict[str, list[str]] = {}
    rows: dict[str, PriceRow] = {}
    for row, region in book.applied_rows(day):
        if row.model not in models:
            unmetered.add(row.model)
            continue
        regions = metered.get((row.model, row.deployment_type, row.above_input_tokens, row.kind))
        if region and region not in regions_seen:
            continue
        if regions is None or (region and region not in regions):
            flagged.setdefault(row.id, []).append(region)
            rows[row.id] = row
    result.no_meter = [NoMeter(rows[row_id], tuple(sorted(regions))) for row_id, regions in sorted(flagged.items())]
    result.unmetered_models = sorted(unmetered)
    return result
