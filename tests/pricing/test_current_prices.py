"""Prices current to the day (issue 22, item 5): Flex, GPT-6 Priority and Data Zone, the re-dated Sol
Priority meters, and the meter names that spell them.

Every price below is a row of pricing/30-azure-openai-changes.toml with its cited source; the meter names are
real ones, quoted from the public daily dump of Azure's Retail Prices API (guygregory/modelmeters.com,
monthly/full/2026-09-01.ndjson and 2026-10-01.ndjson; tests/fixtures/azure-retail/2026-flex-gpt6-captured.json)
or from a cost export (the ``- Preview`` suffix).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from pricing_helpers import FIXTURES, FakeUsage, utc

from meter.pricing import PriceBook
from meter.pricing.check import check
from meter.pricing.meters import LONG_CONTEXT_TOKENS, MeterKey, UnmappedMeter, parse_meter
from meter.pricing.retail import load_retail, openai_items

ROOT = Path(__file__).resolve().parents[2]
CAPTURED = FIXTURES / "2026-flex-gpt6-captured.json"
LONG = LONG_CONTEXT_TOKENS
K = 100_000


@cache
def _snapshot_names() -> frozenset[str]:
    data = json.loads((ROOT / "pricing" / "azure-retail" / "2026-08-11-azure-openai.json").read_text(encoding="utf-8"))
    return frozenset(item["meterName"] for item in data["items"])


# ---- meter names -------------------------------------------------------------------------------

NAMES = [
    # Flex: "Flex" or "Fl", always Global; the 5.6 Flex meters glue the model ("56sol") and shorten the tier
    ("56sol ShCo Cd Inp Fl Gl 1M Tokens", MeterKey("gpt-5.6-sol", "cached_input", "GlobalFlex")),
    ("56sol LoCo Cd Wr Fl Gl 1M Tokens", MeterKey("gpt-5.6-sol", "cache_write", "GlobalFlex", LONG)),
    ("56terra LoCo Cd Inp Fl Gl 1M Tokens", MeterKey("gpt-5.6-terra", "cached_input", "GlobalFlex", LONG)),
    ("56luna ShCo Opt Fl Gl 1M Tokens", MeterKey("gpt-5.6-luna", "output", "GlobalFlex")),
    # the 5.4 and 5.5 Flex meters drop the dot
    ("54 inp Flex Gl 1M Tokens", MeterKey("gpt-5.4", "input", "GlobalFlex")),
    ("54 longco opt Flex Gl 1M Tokens", MeterKey("gpt-5.4", "output", "GlobalFlex", LONG)),
    ("54 mini cd Inp Flex Gl 1M Tokens", MeterKey("gpt-5.4-mini", "cached_input", "GlobalFlex")),
    ("54 nano Inp Flex Gl 1M Tokens", MeterKey("gpt-5.4-nano", "input", "GlobalFlex")),
    ("54 pro longco inp Flex Gl 1M Tokens", MeterKey("gpt-5.4-pro", "input", "GlobalFlex", LONG)),
    ("55 ShortCo inp Flex Gl 1M Tokens", MeterKey("gpt-5.5", "input", "GlobalFlex")),
    # GPT-6 (product "Azure OpenAI GPT6")
    ("6-sol ShortCo Cd Inp Flex Gl 1M Tokens", MeterKey("gpt-6-sol", "cached_input", "GlobalFlex")),
    ("6-luna LongCo Cd Inp Flex Gl 1M Tokens", MeterKey("gpt-6-luna", "cached_input", "GlobalFlex", LONG)),
    ("6.1-sol ShortCo Inp Std DZ 1M Tokens", MeterKey("gpt-6.1-sol", "input", "DataZoneStandard")),
    ("6.1-sol LongCo Cd Wr Std DZ 1M Tokens", MeterKey("gpt-6.1-sol", "cache_write", "DataZoneStandard", LONG)),
    ("6.1-sol ShortCo Opt Std Gl 1M Tokens", MeterKey("gpt-6.1-sol", "output", "GlobalStandard")),
]


#: Names of the dump's condensed files (monthly/partial/2026-09-01.ndjson), not among the captured items.
PARTIAL_ONLY = frozenset({"56sol ShCo Cd Inp Fl Gl 1M Tokens"})


@cache
def _captured_names() -> frozenset[str]:
    return frozenset(item["meterName"] for item in json.loads(CAPTURED.read_text(encoding="utf-8"))["Items"])


@pytest.mark.parametrize(("name", "expected"), NAMES, ids=[n[0] for n in NAMES])
def test_flex_and_gpt6_meter_names(name: str, expected: MeterKey) -> None:
    assert name in _captured_names() | PARTIAL_ONLY  # a real name, not one made up for the test
    assert parse_meter(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "GPT 5 Chat Inpt Glbl 1M Tokens",
        "GPT 5 Chat cchd Inpt DZone 1M Tokens",
        "5.6 luna ShortCo Cd Wr PP Gl 1M Tokens",
    ],
)
def test_a_preview_suffix_names_the_same_meter(name: str) -> None:
    # Cost exports name a meter "... 1M Tokens - Preview" while its model is in preview (e.g. "GPT 5 Chat Inpt
    # Glbl 1M Tokens - Preview"): the same meter as the Retail name without the suffix.
    assert name in _snapshot_names()
    assert parse_meter(f"{name} - Preview") == parse_meter(name)
    assert parse_meter(f"{name} - preview") == parse_meter(name)


def test_flex_is_a_global_tier_and_one_mode_at_a_time() -> None:
    with pytest.raises(UnmappedMeter) as info:
        parse_meter("56sol ShCo Inp Fl DZ 1M Tokens")
    assert info.value.category == "no-deployment-type"
    with pytest.raises(UnmappedMeter, match="both Priority and Flex"):
        parse_meter("56sol ShCo Inp PP Fl Gl 1M Tokens")
    with pytest.raises(UnmappedMeter) as info:
        parse_meter("54 inp Flex rg 1M Tokens")
    assert info.value.category == "no-deployment-type"


# ---- the captured meters against the tables ------------------------------------------------------


def test_the_captured_flex_and_gpt6_meters_agree_with_the_tables(book: PriceBook) -> None:
    items = list(openai_items(load_retail(CAPTURED).items))
    result = check(book, items, at=date(2026, 12, 7))
    assert result.unmapped == []
    assert result.differ == []
    # the EU Data Zone group of gpt-6.1-sol is the one meter the tables do not hold (US Data Zone only)
    eu = ("6.1-sol LongCo Cd Inp Std DZ 1M Tokens", "swedencentral")
    assert [(f.meter, f.region) for f in result.missing] == [eu]
    assert result.agree == len(items) - 1 == 25


# ---- costs ----------------------------------------------------------------------------------------


def _total(book: PriceBook, model: str, usage: FakeUsage, dtype: str, at: date, region: str | None = None) -> Decimal:
    cost = book.cost_of(usage, model=model, deployment_type=dtype, region=region, at=utc(at.year, at.month, at.day))
    assert cost.total is not None, cost.reason
    assert cost.basis == "list"
    assert cost.deployment_type == dtype
    return cost.total


SHORT = FakeUsage(K, 0, 0, K)  # 100k in, 100k out: under the 272k tier
LONG_CALL = FakeUsage(3 * K, 0, 0, K)  # 300k in: every token at the long-context prices

COSTS = [
    # gpt-6-sol Global Priority: 4 / 20, above 272k 8 / 30 (meters '6-sol ... PP Gl')
    ("gpt-6-sol", "GlobalPriority", None, SHORT, date(2026, 10, 1), "2.4"),  # 0.4 + 2
    ("gpt-6-sol", "GlobalPriority", None, LONG_CALL, date(2026, 10, 1), "5.4"),  # 2.4 + 3
    # gpt-6 family Data Zone, US group: 6-sol 2.2 / 11, PP 4.4 / 22; 6.1-sol 2.2 / 11
    ("gpt-6-sol", "DataZoneStandard", "eastus", SHORT, date(2026, 10, 1), "1.32"),  # 0.22 + 1.1
    ("gpt-6-sol", "DataZonePriority", "eastus2", SHORT, date(2026, 10, 1), "2.64"),  # 0.44 + 2.2
    ("gpt-6-sol", "DataZonePriority", "westus3", LONG_CALL, date(2026, 10, 1), "5.94"),  # 2.64 + 3.3
    ("gpt-6.1-sol", "DataZoneStandard", "westus", SHORT, date(2026, 10, 2), "1.32"),  # 0.22 + 1.1
    # gpt-5.6-sol Priority after Azure re-dated the Sol meters (2026-09-01): 8 / 40, above 272k 16 / 60,
    # Data Zone 8.8 / 44
    ("gpt-5.6-sol", "GlobalPriority", None, LONG_CALL, date(2026, 9, 1), "10.8"),  # 4.8 + 6
    ("gpt-5.6-sol", "DataZonePriority", None, SHORT, date(2026, 9, 1), "5.28"),  # 0.88 + 4.4
    # Flex (GlobalFlex): Azure's Flex meters, half of Global Standard
    ("gpt-5.6-sol", "GlobalFlex", None, SHORT, date(2026, 9, 2), "1.75"),  # 0.25 + 1.5 (2.5 / 15)
    ("gpt-5.6-terra", "GlobalFlex", None, SHORT, date(2026, 9, 2), "0.7"),  # 0.1 + 0.6 (1 / 6)
    ("gpt-5.6-luna", "GlobalFlex", None, LONG_CALL, date(2026, 9, 2), "0.15"),  # 0.06 + 0.09 (0.2 / 0.9)
    ("gpt-5.4-nano", "GlobalFlex", None, SHORT, date(2026, 9, 2), "0.0725"),  # 0.01 + 0.0625 (0.1 / 0.625)
    ("gpt-5.4-pro", "GlobalFlex", None, LONG_CALL, date(2026, 9, 2), "22.5"),  # 9 + 13.5 (30 / 135)
    ("gpt-6-astra", "GlobalFlex", None, SHORT, date(2026, 10, 2), "3"),  # 0.5 + 2.5 (5 / 25)
    ("gpt-6.1-sol", "GlobalFlex", None, LONG_CALL, date(2026, 10, 2), "1.35"),  # 0.6 + 0.75 (2 / 7.5)
    # cached and cache-write tokens on Flex: 50k x 2.5 + 40k x 0.25 + 10k x 3.125 + 50k x 15 per 1M
    ("gpt-5.6-sol", "GlobalFlex", None, FakeUsage(K, 40_000, 10_000, 50_000), date(2026, 11, 1), "0.91625"),
]


@pytest.mark.parametrize(("model", "dtype", "region", "usage", "at", "expected"), COSTS,
                         ids=[f"{c[0]}-{c[1]}-{c[2] or 'any'}-{c[3].input_tokens}" for c in COSTS])
def test_current_prices(
    book: PriceBook, model: str, dtype: str, region: str | None, usage: FakeUsage, at: date, expected: str
) -> None:
    assert _total(book, model, usage, dtype, at, region) == Decimal(expected)


def test_sol_priority_follows_the_promotion(book: PriceBook) -> None:
    # Before 2026-09-01 the launch meters (10 / 60); from it the re-dated ones (8 / 40): the Standard
    # promotion (5 / 30 -> 4 / 20) no longer leaves Priority at its launch price.
    assert _total(book, "gpt-5.6-sol", SHORT, "GlobalPriority", date(2026, 8, 31)) == Decimal("7")  # 1 + 6
    assert _total(book, "gpt-5.6-sol", SHORT, "GlobalPriority", date(2026, 9, 1)) == Decimal("4.8")  # 0.8 + 4
    assert _total(book, "gpt-5.6-sol", SHORT, "DataZonePriority", date(2026, 8, 31)) == Decimal("7.7")  # 1.1 + 6.6
    # what meter believed before these rows were recorded (2026-12-07) stays reproducible
    believed = book.cost_of(SHORT, model="gpt-5.6-sol", deployment_type="GlobalPriority", at=utc(2026, 9, 1),
                            believed_at=date(2026, 12, 6))
    assert believed.total == Decimal("7")
    # the long-context Priority tier had no meter before the re-dating: unknown, not a guess
    before = book.cost_of(LONG_CALL, model="gpt-5.6-sol", deployment_type="GlobalPriority", at=utc(2026, 8, 31))
    assert before.total is None


def test_partial_meters_price_what_they_cover_and_no_more(book: PriceBook) -> None:
    at = utc(2026, 10, 2)
    # gpt-5.5 has Flex input meters but no Flex output meter: input alone is priced, a call with output is not
    assert _total(book, "gpt-5.5", FakeUsage(K), "GlobalFlex", date(2026, 10, 2)) == Decimal("0.25")
    with_output = book.cost_of(FakeUsage(K, 0, 0, K), model="gpt-5.5", deployment_type="GlobalFlex", at=at)
    assert with_output.total is None
    assert "no output price" in str(with_output.reason)
    # gpt-5.4 has no short-context cached-input Flex meter
    assert _total(book, "gpt-5.4", SHORT, "GlobalFlex", date(2026, 10, 2)) == Decimal("0.875")  # 0.125 + 0.75
    cached = book.cost_of(FakeUsage(K, K // 2, 0, K), model="gpt-5.4", deployment_type="GlobalFlex", at=at)
    assert cached.total is None
    # the gpt-6 Data Zone rows are the US group's: an EU Data Zone region stays unpriced
    eu = book.cost_of(SHORT, model="gpt-6-sol", deployment_type="DataZoneStandard", region="swedencentral", at=at)
    assert eu.total is None
