"""Which model's rows price a served model name."""

from __future__ import annotations

import pytest
from pricing_helpers import utc

from meter.pricing import PriceBook


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("o3-2025-04-16", "o3"),
        ("GPT-4.1", "gpt-4.1"),
        (" gpt-5.5 ", "gpt-5.5"),
        ("gpt-5.6-luna-2026-07-09", "gpt-5.6-luna"),  # a dated snapshot not listed anywhere
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("gpt-4o-2024-11-20", "gpt-4o-2024-11-20"),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18"),
        ("gpt-4o", "gpt-4o-2024-11-20"),  # the alias today
        ("ada", "text-embedding-ada-002"),
        ("azure/gpt-4.1", "gpt-4.1"),
        # not priced: unknown rather than a wrong family price
        ("gpt-4o-2025-01-01", None),  # gpt-4o versions differ in price: no family fallback
        ("gpt-4o-realtime-preview", None),  # two versions at different prices
        ("gpt-35-turbo", None),  # Azure's answer names no version; 0613, 1106 and 0125 differ in price
        ("gpt-3.5-turbo", None),
        ("gpt-4", None),  # 0613 (30 / 60) and turbo-2024-04-09 (10 / 30) are both served as gpt-4
        # legacy versions Azure still meters, named in full (Azure or OpenAI spelling)
        ("gpt-35-turbo-0125", "gpt-3.5-turbo-0125"),
        ("gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106"),
        ("gpt-35-turbo-16k", "gpt-3.5-turbo-16k-0613"),  # the only 16k-only version
        ("gpt-4-32k", "gpt-4-32k-0613"),
        ("gpt-4-turbo", "gpt-4-turbo-2024-04-09"),
        ("o1-preview-2024-09-12", "o1-preview"),  # meters 'o1 preview' since 2024-10-01
        ("chat-latest", "chat-latest-2026-05-28"),  # the alias today
        ("my-deployment", None),
        ("", None),
    ],
)
def test_resolve_model(book: PriceBook, name: str, expected: str | None) -> None:
    assert book.resolve_model(name, at=utc(2026, 11, 1)) == expected


def test_gpt4o_alias_is_dated(book: PriceBook) -> None:
    assert book.resolve_model("gpt-4o", at=utc(2025, 1, 15)) == "gpt-4o-2024-05-13"
    assert book.resolve_model("gpt-4o", at=utc(2025, 3, 1)) == "gpt-4o-2024-11-20"


def test_resolution_is_cached_but_stays_correct(book: PriceBook) -> None:
    for _ in range(3):
        assert book.resolve_model("gpt-5-nano-2025-08-07") == "gpt-5-nano"
        assert book.resolve_model("nope") is None
    assert book.resolve_model("gpt-4o", at=utc(2025, 1, 15)) == "gpt-4o-2024-05-13"
    assert book.resolve_model("gpt-4o", at=utc(2026, 1, 15)) == "gpt-4o-2024-11-20"
