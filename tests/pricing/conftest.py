"""Fixtures for the pricing tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The project is not installed in the test venv: make the repository importable.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from meter.pricing import PriceBook  # noqa: E402

_BOOK = PriceBook.load()


@pytest.fixture
def book() -> PriceBook:
    """A fresh book per test (shares the parsed tables), so counters and warnings start empty."""
    return PriceBook(_BOOK.tables)
