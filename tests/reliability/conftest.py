"""Shared by the reliability suite: the emulator, a fresh-subprocess runner, and the soak switch."""

from __future__ import annotations

import os

import pytest

from tests.support.emulator_fixtures import emu, fresh_emulator_log

__all__ = ["emu", "fresh_emulator_log", "soak"]

SOAK = os.environ.get("METER_SOAK") == "1"
"""``METER_SOAK=1`` runs the long versions (more cases, more load); CI runs the bounded ones."""


def soak(bounded: int, long: int) -> int:
    """A size for a test: ``bounded`` in CI, ``long`` with ``METER_SOAK=1``."""
    return long if SOAK else bounded


@pytest.fixture
def soak_size() -> bool:
    return SOAK
