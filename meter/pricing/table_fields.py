"""The field checks of a price-table file: strings, dates, prices, sources, unknown fields.

Each check reports a problem with the file, the entry and the field, and returns
``None`` for a bad value, so the parser (``meter.pricing.table``) can go on and collect
every problem of a file at once instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from meter.pricing.errors import Problem
from meter.pricing.model import KINDS

MAX_PRICE = Decimal("1000000")
"""USD per 1M tokens above this is not a price but a typo (the dearest list price is a few hundred)."""
MIN_PRICE_EXPONENT = -12
"""Prices are kept to at most 12 decimal places (a millionth of a cent per 1M tokens and then some)."""


class FieldChecker:
    """The problems found so far in one file, and the checks that add to them."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.sources: dict[str, str] = {}
        """``[sources]`` short names, which a ``source`` field may use instead of the text."""

    def fail(self, entry: str, field_name: str, problem: str) -> None:
        self.problems.append(Problem(self.file, entry, field_name, problem))

    def _unknown_fields(self, entry: str, raw: Mapping[str, Any], allowed: frozenset[str]) -> None:
        for key in raw:
            if key not in allowed:
                self.fail(entry, key, f"unknown field; expected one of {', '.join(sorted(allowed))}")

    def _string(self, entry: str, raw: Mapping[str, Any], key: str, *, required: bool) -> str | None:
        value = raw.get(key)
        if value is None:
            if required:
                self.fail(entry, key, "missing (required)")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(entry, key, "must be a non-empty string")
            return None
        return value.strip()

    def _date(self, entry: str, raw: Mapping[str, Any], key: str, *, required: bool) -> date | None:
        value = raw.get(key)
        if value is None:
            if required:
                self.fail(entry, key, "missing (required); write a date like 2025-06-01")
            return None
        if isinstance(value, datetime):
            self.fail(entry, key, f"{value.isoformat()} is a date-time; write a plain date like 2025-06-01")
            return None
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(entry, key, f"{value!r} is not a date; write a date like 2025-06-01")
        return None

    def _price_value(self, entry: str, key: str, value: Any) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, str):
            self.fail(
                entry,
                key,
                f'{value!r} is not a decimal string; write it quoted, like "2.5" (floats lose precision)',
            )
            return None
        try:
            price = Decimal(value.strip())
        except InvalidOperation:
            self.fail(entry, key, f"{value!r} is not a decimal number (USD per 1M tokens)")
            return None
        if not price.is_finite():
            self.fail(entry, key, f"{value!r} is not a finite decimal number")
            return None
        if price < 0:
            self.fail(entry, key, f"{value!r} is negative; prices must be >= 0")
            return None
        if price > MAX_PRICE:
            self.fail(entry, key, f"{value!r} is more than {MAX_PRICE} USD per 1M tokens; a typo?")
            return None
        exponent = price.as_tuple().exponent
        if isinstance(exponent, int) and exponent < MIN_PRICE_EXPONENT and price != price.quantize(
                Decimal(1).scaleb(MIN_PRICE_EXPONENT)):
            self.fail(entry, key, f"{value!r} has more than {-MIN_PRICE_EXPONENT} decimal places")
            return None
        return price

    def _source(self, entry: str, raw: Mapping[str, Any]) -> str | None:
        value = self._string(entry, raw, "source", required=True)
        if value is None:
            return None
        return self.sources.get(value, value)

    def _kinds(self, entry: str, raw: Mapping[str, Any]) -> dict[str, Decimal]:
        prices: dict[str, Decimal] = {}
        present = [k for k in KINDS if k in raw]
        if not present:
            self.fail(entry, "input", f"no price given; set at least one of {', '.join(KINDS)}")
        for kind in present:
            price = self._price_value(entry, kind, raw[kind])
            if price is not None:
                prices[kind] = price
        return prices
