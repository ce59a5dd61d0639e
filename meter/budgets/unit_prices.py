"""The unit prices of worst cases, asked of the ``PriceBook`` once per key: a worst case is then a few products.

``PriceBook.cost_of`` builds a whole ``Cost`` for every call it prices (the pricing call, the buckets,
the row ids); the reservation of a call needs only the amounts. They depend on nothing but the model
name, the deployment type, the region, the UTC day, the long-context tier (the largest
``above_input_tokens`` of the model's rows that the input passes, as the book picks it) and the price
columns used: so the first worst case of a key is priced by ``cost_of`` itself and its unit prices kept,
and the next ones multiply the same counts by the same units (``count x unit / per``, the book's own
product): the same Decimals, exactly. A ``PriceBook`` never changes once built, so nothing goes stale;
the entries are bounded (cleared when full, as the days go by). Pure: no I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from weakref import WeakKeyDictionary

from meter.pricing import Cost, PriceBook
from meter.pricing.model import PER
from meter.pricing.usage import UsageLike, token_buckets

MAX_ENTRIES = 4096
"""Keys kept per price book; more clear the cache (it refills from the book on demand)."""

_Units = tuple[tuple[str, Decimal | None], ...]
"""Each price column used, in the book's order, with its unit price (``None``: it has no price)."""


class UnitPrices:
    """Worst-case amounts for one ``PriceBook``, priced as ``cost_of`` prices them."""

    def __init__(self, book: PriceBook) -> None:
        self.book = book
        self._entries: dict[tuple[object, ...], tuple[_Units, str | None]] = {}
        self._models: dict[tuple[str | None, date], tuple[int, ...]] = {}
        self._resolved: dict[tuple[str, date], str | None] = {}
        self.lookups = 0
        """How many keys were asked of the book (a test and the figures read it)."""

    def priced(self, usage: UsageLike | None, units: Mapping[str, int] | None, *, model: str | None,
               deployment_type: str | None, region: str | None, at: datetime | None) -> tuple[Decimal, str | None]:
        """The priced part of the amounts ``cost_of`` would give, and why the rest is not priced (``None``: all is)."""
        if at is None:  # "now" is read inside the book: price it there, uncached
            return _summed(self._cost(usage, units, model, deployment_type, region, at))
        moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        day = moment.date()
        quantities: dict[str, int | Decimal] = dict(token_buckets(usage)) if usage is not None else {}
        for kind, quantity in (units or {}).items():
            if quantity:
                quantities[kind] = quantity
        tier = 0
        if usage is not None:
            for threshold in self._thresholds(model, day):
                if usage.input_tokens > threshold:
                    tier = threshold
                    break
        key = (model, deployment_type, region, day, tier, tuple(quantities))
        entry = self._entries.get(key)
        if entry is None:
            cost = self._cost(usage, units, model, deployment_type, region, at)
            found = tuple((kind, None if amount is None else cost.unit_prices.get(kind, Decimal(0)))
                          for kind, amount in cost.amounts.items())
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (found, _summed(cost)[1])
            return _summed(cost)
        found, reason = entry
        total = Decimal(0)
        for kind, unit in found:
            if unit is not None:
                total += quantities[kind] * unit / PER[kind]
        return total, reason

    def _cost(self, usage: UsageLike | None, units: Mapping[str, int] | None, model: str | None,
              deployment_type: str | None, region: str | None, at: datetime | None) -> Cost:
        self.lookups += 1
        return self.book.cost_of(usage, model=model, deployment_type=deployment_type, region=region, at=at,
                                 estimated=True, units=units or None)

    def resolve(self, model: str, at: datetime | None) -> str | None:
        """``PriceBook.resolve_model``, kept per (name, UTC day)."""
        if at is None:
            return self.book.resolve_model(model, at)
        key = (model, (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)).date())
        try:
            return self._resolved[key]
        except KeyError:
            pass
        found = self.book.resolve_model(model, key[1])
        if len(self._resolved) >= MAX_ENTRIES:
            self._resolved.clear()
        self._resolved[key] = found
        return found

    def _thresholds(self, model: str | None, day: date) -> tuple[int, ...]:
        """The long-context thresholds of the model ``model`` resolves to on ``day``, largest first."""
        key = (model, day)
        found = self._models.get(key)
        if found is None:
            resolved = self.book.resolve_model(model, day) if model else None
            rows = self.book.rows(resolved) if resolved else []
            found = tuple(sorted({row.above_input_tokens for row in rows if row.above_input_tokens}, reverse=True))
            if len(self._models) >= MAX_ENTRIES:
                self._models.clear()
            self._models[key] = found
        return found


def _summed(cost: Cost) -> tuple[Decimal, str | None]:
    """The priced part of a cost, and the reason it is not whole (``"no price"`` when the book gave none)."""
    priced = sum((amount for amount in cost.amounts.values() if amount is not None), Decimal(0))
    if cost.total is not None:
        return priced, None
    return priced, cost.reason or "no price"


_BOOKS: WeakKeyDictionary[PriceBook, UnitPrices] = WeakKeyDictionary()
_LOCK = threading.Lock()


def unit_prices(book: PriceBook) -> UnitPrices:
    """The one ``UnitPrices`` of ``book`` (made on first use; it goes with the book)."""
    found = _BOOKS.get(book)
    if found is None:
        with _LOCK:
            found = _BOOKS.get(book)
            if found is None:
                found = _BOOKS[book] = UnitPrices(book)
    return found
