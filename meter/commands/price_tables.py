"""What the two pricing command modules share: the price book a command line names, and its default time."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from meter.pricing import PriceBook, PricingFileError
from meter.textout import say_error


def load_book(args: argparse.Namespace) -> PriceBook | None:
    """The built-in tables and the ``--table`` files over them; ``None`` (the problems said) when one is bad."""
    try:
        return PriceBook.load(*args.table)
    except PricingFileError as exc:
        say_error(exc)
        return None


def now() -> datetime:
    """When a command prices by default (no ``--at``): now, in UTC."""
    return datetime.now(UTC)
