"""Fixtures for the pricing tests."""

from __future__ import annotations

import pytest

from pricing import PriceBook

_BOOK = PriceBook.load()


@pytest.fixture
def book() -> PriceBook:
    """A fresh book per test (shares the parsed tables), so counters and warnings start empty."""
    return PriceBook(_BOOK.tables)
