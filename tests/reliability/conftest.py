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


FIGURES: dict[str, object] = {}
"""Numbers the suite measured (cases run, load held, bombs tried, records lost...), printed at the end
and written to ``.reliability-figures.json``: the source of the figures in docs/reliability.md."""


@pytest.fixture
def figures() -> dict[str, object]:
    return FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    import json
    from pathlib import Path

    terminalreporter.section("reliability figures")
    for key in sorted(FIGURES):
        terminalreporter.write_line(f"{key}: {FIGURES[key]}")
    path = Path(__file__).resolve().parents[2] / ".reliability-figures.json"
    path.write_text(json.dumps(FIGURES, indent=2, sort_keys=True, default=str) + "\n")
