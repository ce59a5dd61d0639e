"""What the pricing commands share: loading the tables named on the command line, and printing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from pricing.book import PriceBook
from pricing.errors import PricingFileError


def load_book(args: argparse.Namespace) -> PriceBook | None:
    try:
        return PriceBook.load(*args.table)
    except PricingFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def money(value: Decimal | None) -> str:
    if value is None:
        return "unknown"
    return format(value.normalize(), "f") if value else "0"


def text_table(rows: Iterable[list[str]], header: list[str]) -> str:
    """Left-aligned text columns."""
    all_rows = [header, *rows]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in all_rows)


def now() -> datetime:
    return datetime.now(UTC)
