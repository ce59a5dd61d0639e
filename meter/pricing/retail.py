"""Azure Retail Prices data, as saved from the API or as a condensed snapshot, read into items.

Two shapes are read:

* the API's own answer (``{"Items": [...], "NextPageLink": ...}``; one item per
  meter, region and price), or a list of such pages;
* a condensed snapshot (``{"fetched_at": ..., "items": [...]}``), where one item
  carries the ``regions`` that share its price (as bundled by the MIT-licensed
  ``azure-genai-prices`` package, and as this project checks in its excerpt).

Either way the result is one ``RetailItem`` per meter, region and price, with
money as ``Decimal`` (JSON numbers are parsed as decimals, never floats), and
the day the data was read from Azure where the file says (``fetched_at``): a
meter's price holds from its start to that day. It only reads; it never
fetches, so prices never change silently at run time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from meter.pricing.deployment_types import normalize_region
from meter.pricing.errors import PricingFileError, Problem
from meter.pricing.meters import MeterKey, UnmappedMeter, parse_meter
from meter.pricing.model import PRICE_KINDS

OPENAI_PRODUCTS = frozenset({
    "Azure OpenAI", "Azure OpenAI Embedding", "Azure OpenAI GPT5", "Azure OpenAI GPT6", "Azure OpenAI Media",
    "Azure OpenAI OSS Models", "Azure OpenAI PP FT GPT4s", "Azure OpenAI Reasoning", "Azure OpenAI Image Video",
})
"""The Retail products that hold Azure OpenAI meters (``productName``)."""


_COUNT = re.compile(r"(\d+(?:\.\d+)?)?\s*([km])?\s*(?:tokens?|calls?|images?|characters?|sessions?|units?)?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)?\s*(second|minute|hour)s?")
_SECONDS = {"second": 1, "minute": 60, "hour": 3600}
_KINDS = {kind.name: kind for kind in PRICE_KINDS}


def unit_size(unit: str) -> tuple[Decimal, str] | None:
    """What one unit of measure holds: ``("1K")`` -> (1000, "count"), ``"100"`` -> (100, "count"), ``"1 Hour"`` ->
    (3600, "seconds"); ``None`` for a rate (``1/Hour``, ``1/Day``, ``1/Month``: hours of a deployment, days of
    storage) or anything else."""
    text = unit.strip().lower()
    if not text or "/" in text:
        return None
    duration = _DURATION.fullmatch(text)
    if duration is not None:
        return Decimal(duration[1] or 1) * _SECONDS[duration[2]], "seconds"
    count = _COUNT.fullmatch(text)
    if count is None or (count[1] is None and count[2] is None):
        return None
    return Decimal(count[1] or 1) * {"k": 1000, "m": 1_000_000, None: 1}[count[2]], "count"


@dataclass(frozen=True, slots=True)
class RetailItem:
    """One meter's price in one region (``region`` is ``""`` where the data names none)."""

    meter_name: str
    product: str
    region: str
    unit: str
    retail_price: Decimal
    start: date
    item_type: str = "Consumption"
    tier_minimum_units: Decimal = Decimal(0)

    @property
    def per_million(self) -> Decimal | None:
        """USD per 1M tokens, or ``None`` when the unit is not a token unit (hours, images ...)."""
        unit = self.unit.strip().lower().replace(" ", "")
        if unit in ("1k", "1ktokens"):
            return self.retail_price * 1000
        if unit in ("1m", "1mtokens"):
            return self.retail_price
        return None

    @property
    def is_token_price(self) -> bool:
        """A pay-as-you-go price per token (not a reservation, not a volume tier, not another unit)."""
        return self.is_consumption and self.per_million is not None

    @property
    def is_consumption(self) -> bool:
        """A pay-as-you-go price (not a reservation, not a volume tier), in any unit."""
        return self.item_type == "Consumption" and self.tier_minimum_units == 0

    def price_for(self, kind: str) -> Decimal | None:
        """The price in the tables' terms for the price column ``kind`` (``PriceKind.per`` of its ``unit``): USD per
        1M tokens from a ``1K`` meter, per 1,000 calls, per session, per minute (60 seconds) from a ``1 Hour`` meter,
        per image from a ``100`` (images) meter; ``None`` when the unit of measure does not count what the column
        counts."""
        column = _KINDS.get(kind)
        size = unit_size(self.unit)
        if column is None or size is None or size[0] <= 0:
            return None
        amount, dimension = size
        if (dimension == "seconds") != (column.unit == "seconds"):
            return None
        return self.retail_price / amount * column.per


@dataclass(frozen=True, slots=True)
class RetailData:
    """The items of one saved answer, and the day they were fetched (``None`` when the file does not say)."""

    items: list[RetailItem]
    fetched: date | None
    pages: int = 1
    """API answer pages read (a snapshot counts as one)."""
    linked_pages: int = 0
    """Pages that link to a next page (``NextPageLink``): when every page does, the last one is missing."""

    @property
    def incomplete(self) -> bool:
        """Every page read points to a further page: the answer was not saved to its end."""
        return self.linked_pages > 0 and self.linked_pages >= self.pages


def load_retail(path: str | Path) -> RetailData:
    """Every item of a saved Retail Prices answer (or snapshot); ``PricingFileError`` if it is neither."""
    file = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as exc:
        raise PricingFileError([Problem(file, "(file)", "-", f"cannot read file: {exc.strerror or exc}")]) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PricingFileError([Problem(file, "(file)", "-", f"not valid JSON: {exc}")]) from exc
    except RecursionError as exc:
        problem = Problem(file, "(file)", "-", "nested too deeply to be a Retail Prices answer")
        raise PricingFileError([problem]) from exc
    pages = data if isinstance(data, list) else [data]
    if not pages:
        raise PricingFileError([Problem(file, "(file)", "Items", "an empty list: no Retail Prices answer pages")])
    fetched = _fetched(file, data)
    items: list[RetailItem] = []
    linked = 0
    for page_no, page in enumerate(pages):
        raw = page.get("Items", page.get("items")) if isinstance(page, dict) else None
        if not isinstance(raw, list):
            where = f"page {page_no}" if isinstance(data, list) else "(file)"
            raise PricingFileError([Problem(file, where, "Items",
                                            "not a Retail Prices API answer: no Items list")])
        if page.get("NextPageLink"):
            linked += 1
        for index, item in enumerate(raw):
            where = f"Items[{index}]" if len(pages) == 1 else f"page {page_no} Items[{index}]"
            items.extend(_items(file, where, item))
    return RetailData(items, fetched, len(pages), linked)


def combine(parts: Iterable[RetailData]) -> RetailData:
    """Several saved files (pages of one answer, or answers of several queries) as one.

    The fetch day is the earliest of the files' (every meter's price held at least until then), or
    ``None`` when a file does not say.
    """
    parts = list(parts)
    days = [p.fetched for p in parts]
    return RetailData(
        [item for p in parts for item in p.items],
        None if any(d is None for d in days) or not days else min(d for d in days if d is not None),
        sum(p.pages for p in parts),
        sum(p.linked_pages for p in parts),
    )


def _fetched(file: str, data: Any) -> date | None:
    """``fetched_at`` of a snapshot (an ISO date or date-time), if it has one."""
    value = data.get("fetched_at") if isinstance(data, dict) else None
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise PricingFileError([Problem(file, "(file)", "fetched_at", f"{value!r} is not a date")]) from exc


def _items(file: str, entry: str, item: Any) -> Iterator[RetailItem]:
    if not isinstance(item, dict):
        raise PricingFileError([Problem(file, entry, "-", "must be an object")])

    def text(key: str, required: bool = True) -> str:
        value = item.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise PricingFileError([Problem(file, entry, key, f"missing or not a string: {value!r}")])
        return value

    price = _number(file, entry, item, "retailPrice", None)
    tier = _number(file, entry, item, "tierMinimumUnits", 0)
    start_text = text("effectiveStartDate")
    try:
        start = date.fromisoformat(start_text[:10])
    except ValueError as exc:
        raise PricingFileError([Problem(file, entry, "effectiveStartDate", "not a date")]) from exc
    regions = item.get("regions")
    if regions is None:
        regions = [item.get("armRegionName") or ""]
    if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        raise PricingFileError([Problem(file, entry, "regions", "must be a list of region names")])
    for region in regions:
        yield RetailItem(
            meter_name=text("meterName"),
            product=text("productName"),
            region="" if region.lower() in ("", "global") else normalize_region(region),
            unit=text("unitOfMeasure"),
            retail_price=price,
            start=start,
            item_type=text("type", required=False) or "Consumption",
            tier_minimum_units=tier,
        )


def _number(file: str, entry: str, item: dict[str, Any], key: str, default: int | None) -> Decimal:
    """A non-negative finite number (JSON numbers arrive as Decimal or int; text and booleans are refused)."""
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise PricingFileError([Problem(file, entry, key, f"missing or not a number: {value!r}")])
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise PricingFileError([Problem(file, entry, key, f"{number} is not a price (must be a number >= 0)")])
    return number


def openai_items(items: Iterable[RetailItem]) -> list[RetailItem]:
    """The items of the Azure OpenAI products."""
    return [i for i in items if i.product in OPENAI_PRODUCTS]


def meter_prices(item: RetailItem) -> tuple[MeterKey, dict[str, Decimal]] | UnmappedMeter | None:
    """What one Retail item prices: its key and a price per column (the key's kind and ``also``), in the tables'
    terms (``RetailItem.price_for``). ``UnmappedMeter`` for a token meter the parser does not read (listed by the
    generator and the check); ``None`` for an item that is not a pay-as-you-go price, or not a token meter and not
    one the parser reads (hours of a deployment, days of storage: reviewed in ``exceptions.toml``)."""
    if not item.is_consumption:
        return None
    try:
        key = parse_meter(item.meter_name, item.product)
    except UnmappedMeter as exc:
        return exc if item.per_million is not None else None
    prices = {}
    for kind in (key.kind, *key.also):
        price = item.price_for(kind)
        if price is None:
            return UnmappedMeter(f"unit {item.unit!r} does not count what {kind} is priced in", "unit")
        prices[kind] = price
    return key, prices
