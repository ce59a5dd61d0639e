"""User tables layered on the built-ins: negotiated prices, private models, corrections."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pricing_helpers import FakeUsage, utc, write_table

from meter.pricing import PriceBook

M = 1_000_000

NEGOTIATED = """
[[price]]
model = "gpt-4.1"
deployment_type = "GlobalStandard"
effective_from = 2026-01-01
input = "1.5"
source = "Enterprise agreement 2026, appendix B"

[[price]]
model = "acme-private"
deployment_type = "DataZoneStandard"
effective_from = 2026-01-01
input = "0.3"
output = "0.9"
source = "internal"

[[alias]]
name = "acme"
model = "acme-private"
"""


def test_user_rows_win_where_they_apply(tmp_path: Path) -> None:
    book = PriceBook.load(write_table(tmp_path, NEGOTIATED))
    assert book.version == "2026-12-01.1+2026-12-07.1+user-1"
    cost = book.cost_of(FakeUsage(M, 0, 0, M), model="gpt-4.1", at=utc(2026, 2, 1))
    # input from the user table (1.5), output still the list price (8)
    assert cost.total == Decimal("9.5")
    assert cost.row_ids == ("gpt-4.1:GlobalStandard@2026-01-01/input", "gpt-4.1:GlobalStandard@2025-04-01/output")
    assert cost.table_version == "user-1+2026-12-07.1"
    before = book.cost_of(FakeUsage(M, 0, 0, M), model="gpt-4.1", at=utc(2025, 12, 31))
    assert before.total == Decimal("10")


def test_private_model_and_alias(tmp_path: Path) -> None:
    book = PriceBook.load(write_table(tmp_path, NEGOTIATED))
    cost = book.cost_of(FakeUsage(M, 0, 0, M), model="acme", deployment_type="DataZoneStandard", at=utc(2026, 2, 1))
    assert cost.model == "acme-private"
    assert cost.total == Decimal("1.2")
    assert cost.table_version == "user-1"


def test_user_correction_of_a_builtin_row(tmp_path: Path) -> None:
    body = """
[[correction]]
corrects = "gpt-4.1-mini:GlobalStandard@2025-04-01"
recorded_at = 2026-03-01
input = "0.35"
source = "invoice 2026-02"
"""
    book = PriceBook.load(write_table(tmp_path, body))
    usage = FakeUsage(M, 0, 0, 0)
    assert book.cost_of(usage, model="gpt-4.1-mini", at=utc(2026, 1, 1)).total == Decimal("0.35")
    assert book.cost_of(usage, model="gpt-4.1-mini", at=utc(2026, 1, 1), believed_at=utc(2026, 2, 1)).total == Decimal(
        "0.4"
    )


def test_without_builtins(tmp_path: Path) -> None:
    book = PriceBook.load(write_table(tmp_path, NEGOTIATED), include_builtin=False)
    assert book.models() == ["acme-private", "gpt-4.1"]
    assert book.cost_of(FakeUsage(1, 0, 0, 1), model="gpt-4.1", at=utc(2026, 2, 1)).basis == "unknown"


def test_builtin_corrections_do_not_touch_a_user_row_with_the_same_id(tmp_path: Path) -> None:
    body = """
[[price]]
model = "gpt-5-chat"
deployment_type = "GlobalStandard"
effective_from = 2025-08-07
input = "1"
source = "contract"
"""
    book = PriceBook.load(write_table(tmp_path, body))
    cost = book.cost_of(FakeUsage(M, 0, 0, 0), model="gpt-5-chat", at=utc(2026, 1, 1))
    assert cost.total == Decimal("1")
    assert cost.table_version == "user-1"
