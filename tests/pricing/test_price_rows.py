"""Every built-in row is reachable and priced through the public API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from meter.pricing import PriceBook
from meter.pricing.model import PER, PRICE_KINDS, UNIT_KINDS, PriceRow

_ROWS = PriceBook.load().rows()


def _tokens(row: PriceRow) -> int:
    return 1_000_000 if row.above_input_tokens else 200_000


def _usage_for(row: PriceRow) -> SimpleNamespace:
    """Tokens in the row's bucket: 1M over a long-context tier, 200k (under every tier) otherwise. The count
    the row's kind is counted by, and every count it lies within, hold them (``PRICE_KINDS``); a row of the
    output side gets input enough to reach its long-context tier."""
    big = _tokens(row)
    kinds = {kind.name: kind for kind in PRICE_KINDS}
    counts = {kind.counted_by: 0 for kind in PRICE_KINDS if kind.name not in UNIT_KINDS}
    todo = [row.kind]
    while todo:
        name = todo.pop()
        counts[kinds[name].counted_by] = big
        todo.extend(whole.name for whole in PRICE_KINDS if name in whole.within)
    if not counts["input_tokens"]:
        counts["input_tokens"] = row.above_input_tokens + 1 if row.above_input_tokens else 0
    return SimpleNamespace(total_tokens=0, **counts)


def test_the_builtin_table_is_not_tiny() -> None:
    assert len(_ROWS) > 500


def _layer(book: PriceBook, row: PriceRow) -> int:
    """Position of the row's table in the book: a later table overrides an earlier one."""
    return [t.file for t in book.tables].index(row.file)


@pytest.mark.parametrize("row", _ROWS, ids=[r.id + ("@" + r.regions[0] if r.regions[0] else "") for r in _ROWS])
def test_every_row_prices(book: PriceBook, row: PriceRow) -> None:
    """Every row is used somewhere: in at least one of its regions, on its first day.

    A later table may override a row in some regions of its group (the generated
    Retail rows start where the meter starts), but a row no call can reach is dead
    data and fails here.
    """
    believed = max(row.effective_from, row.recorded_at or date.min)
    reached = []
    by_units = row.kind in UNIT_KINDS  # seconds, characters, images: a call's units, not a usage
    for region in row.regions:
        cost = book.cost_of(
            None if by_units else _usage_for(row),
            model=row.model,
            deployment_type=row.deployment_type,
            region=region or None,
            at=row.effective_from,
            believed_at=believed,
            units={row.kind: _tokens(row)} if by_units else None,
        )
        if row.id in cost.row_ids:
            reached.append(region)
            assert cost.model == row.model
            assert cost.amounts[row.kind] == row.usd_per_1m * _tokens(row) / PER[row.kind]  # 1M tokens, 1K calls
            assert cost.basis == "list", cost.reason
            assert isinstance(cost.total, Decimal)
            assert all(isinstance(a, Decimal) for a in cost.amounts.values())
    assert reached, f"{row.id} is overridden in every region it names"


@pytest.mark.parametrize("row", [r for r in _ROWS if len(r.regions) > 1], ids=lambda r: r.id)
def test_region_groups_cover_every_member(book: PriceBook, row: PriceRow) -> None:
    """Each member region of a group row is priced by the row or by a row of a later table."""
    for region in row.regions:
        applied = book.find_row(row.model, row.deployment_type, region, row.kind, row.above_input_tokens,
                                row.effective_from)
        assert applied is not None, region
        assert applied.id == row.id or _layer(book, applied) > _layer(book, row), (region, applied.id)
