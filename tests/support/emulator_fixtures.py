"""Fixtures shared by every suite that needs the emulator: one per test module, reset before each test.

Import them into a ``conftest.py`` (``from tests.support.emulator_fixtures import emu, fresh_emulator_log``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meter.apps.emulator import Emulator

API_KEY = "emulator-key"
API_VERSION = "2024-10-21"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_emulator_log(request: pytest.FixtureRequest) -> None:
    """Each test sees only its own ledger entries and faults."""
    if "emu" in request.fixturenames:
        running: Emulator = request.getfixturevalue("emu")
        running.usage_log.clear()
        running.state.faults.clear()
