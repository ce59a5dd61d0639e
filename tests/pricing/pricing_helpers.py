"""Helpers shared by the pricing tests (imported by name: tests/pricing is on sys.path)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "azure-retail"


@dataclass(frozen=True)
class FakeUsage:
    """Duck-typed usage: pricing must work without meter.Usage."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    cached_audio_input_tokens: int = 0
    total_tokens: int = 0


def utc(year: int, month: int, day: int) -> datetime:
    """Noon UTC on a day: far from any date boundary."""
    return datetime(year, month, day, 12, 0, tzinfo=UTC)


def write_table(tmp_path: Path, body: str, name: str = "user.toml") -> Path:
    """A user table file with a valid header followed by ``body``."""
    path = tmp_path / name
    path.write_text('[table]\nversion = "user-1"\npublished = 2026-01-01\n\n' + body, encoding="utf-8")
    return path
