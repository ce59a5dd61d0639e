"""Golden costs of real recorded Azure calls (conformance corpus), priced by hand.

The usages are copied from /work/shared/conformance/cases/*/expected.json so this
test never reads outside the repository. All priced GlobalStandard on 2026-11-01.
Expected totals are written out literally: tokens x USD-per-1M / 1,000,000.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from pricing_helpers import FakeUsage, utc

from meter.pricing import PriceBook

AT = utc(2026, 11, 1)

GOLDEN = [
    # case 02: 16 x 0.4 + 22 x 1.6 = 6.4 + 35.2 = 41.6 per 1M
    ("02", "gpt-4.1-mini-2025-04-14", FakeUsage(16, 0, 0, 22, 0, total_tokens=38), "gpt-4.1-mini", "0.0000416"),
    # case 03: 11 x 0.05 + 203 x 0.4 (192 reasoning inside the 203) = 0.55 + 81.2 = 81.75 per 1M
    ("03", "gpt-5-nano-2025-08-07", FakeUsage(11, 0, 0, 203, 192, total_tokens=214), "gpt-5-nano", "0.00008175"),
    # case 04: (3662-2944) x 0.25 + 2944 x 0.025 + 863 x 2 = 179.5 + 73.6 + 1726 = 1979.1 per 1M
    (
        "04",
        "gpt-5-mini-2025-08-07",
        FakeUsage(3662, 2944, 0, 863, 512, total_tokens=4525),
        "gpt-5-mini",
        "0.0019791",
    ),
    # case 07: Azure's 2024 streamed answer names gpt-4-32k (only version 0613; meters
    # 'gpt-4-32K-Inp-glbl' 0.06 and 'gpt-4-32K-Outp-glbl' 0.12 per 1K):
    # 24 x 60 + 2 x 120 = 1440 + 240 = 1680 per 1M
    ("07", "gpt-4-32k", FakeUsage(24, 0, 0, 2, 0, total_tokens=26), "gpt-4-32k-0613", "0.00168"),
    # case 08: 15 x 0.25 + 12 x 2 = 3.75 + 24 = 27.75 per 1M
    ("08", "gpt-5-mini-2025-08-07", FakeUsage(15, 0, 0, 12, 0, total_tokens=27), "gpt-5-mini", "0.00002775"),
    # case 17: 8 x 0.13 = 1.04 per 1M
    ("17", "text-embedding-3-large", FakeUsage(8, 0, 0, 0, 0, total_tokens=8), "text-embedding-3-large", "0.00000104"),
    # case 18: 18 x 5 + 16 x 30 = 90 + 480 = 570 per 1M
    ("18", "gpt-5.5", FakeUsage(18, 0, 0, 16, 9, total_tokens=34), "gpt-5.5", "0.00057"),
    # cases 19 and 21: 16 x 0.15 + 11 x 0.6 = 2.4 + 6.6 = 9 per 1M
    ("19", "gpt-4o-mini", FakeUsage(16, 0, 0, 11, 0, total_tokens=27), "gpt-4o-mini-2024-07-18", "0.000009"),
    ("21", "gpt-4o-mini", FakeUsage(16, 0, 0, 11, 0, total_tokens=27), "gpt-4o-mini-2024-07-18", "0.000009"),
    # case 25: (2143-1280) x 0.25 + 1280 x 0.025 + 919 x 2 = 215.75 + 32 + 1838 = 2085.75 per 1M
    ("25", "gpt-5-mini", FakeUsage(2143, 1280, 0, 919, 576, total_tokens=3062), "gpt-5-mini", "0.00208575"),
]


@pytest.mark.parametrize(("case", "model", "usage", "resolved", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_cost(book: PriceBook, case: str, model: str, usage: FakeUsage, resolved: str, expected: str) -> None:
    cost = book.cost_of(usage, model=model, deployment_type="GlobalStandard", at=AT)
    assert cost.basis == "list"
    assert cost.model == resolved
    assert cost.total == Decimal(expected)
    assert isinstance(cost.total, Decimal)
    assert cost.currency == "USD"
    assert cost.table_version == "2026-12-07.1"


def test_golden_case_02_breakdown(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(16, 0, 0, 22, 0, total_tokens=38), model="gpt-4.1-mini-2025-04-14", at=AT)
    assert cost.amounts == {"input": Decimal("0.0000064"), "output": Decimal("0.0000352")}
    assert cost.row_ids == (
        "gpt-4.1-mini:GlobalStandard@2025-04-01/input",
        "gpt-4.1-mini:GlobalStandard@2025-04-01/output",
    )


def test_golden_case_01_gpt35_turbo_is_unknown(book: PriceBook) -> None:
    """Azure's 2024 answer names gpt-35-turbo without a version. Azure bills its versions differently
    (0301/0613 at 1.5 / 2, 1106 at 1 / 2, 0125 at 0.5 / 1.5 per 1M), and the answer does not say
    which one served it: unknown, not a guess and not 0. The deployment map names the version."""
    cost = book.cost_of(FakeUsage(15, 0, 0, 24, 0, total_tokens=39), model="gpt-35-turbo", at=AT)
    assert cost.basis == "unknown"
    assert cost.total is None


def test_golden_case_01_with_the_version_named(book: PriceBook) -> None:
    """Named by the deployment map, version 0125 is priced from its meters ('gpt-35-turbo16K-0125
    Inp-glbl' 0.0005 and 'Outp-glbl' 0.0015 per 1K): 15 x 0.5 + 24 x 1.5 = 7.5 + 36 = 43.5 per 1M."""
    cost = book.cost_of(FakeUsage(15, 0, 0, 24, 0, total_tokens=39), model="gpt-35-turbo-0125", at=AT)
    assert (cost.basis, cost.model, cost.total) == ("list", "gpt-3.5-turbo-0125", Decimal("0.0000435"))
