"""The built-in tables against Azure's own Retail Prices data, meter by meter.

Every Azure OpenAI item of the checked-in excerpt (pricing/azure-retail/) is either
a token meter whose price the tables hold within 0.5 % on the meter's start date
and on the day the data was fetched, or explained in the reviewed exceptions
file. Nothing is skipped silently: an unexplained meter, row or model fails, and
so does an exception that no longer explains anything.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from pricing_helpers import write_table

from meter.pricing import PriceBook
from meter.pricing.check import CheckResult, check
from meter.pricing.generate import read_meters, render
from meter.pricing.retail import RetailData, load_retail, meter_prices, openai_items

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "pricing" / "azure-retail" / "2026-08-11-azure-openai.json"
EXCEPTIONS = ROOT / "pricing" / "azure-retail" / "exceptions.toml"
GENERATED = ROOT / "pricing" / "20-azure-retail.toml"


@cache
def _data() -> RetailData:
    return load_retail(DATA)


@cache
def _result() -> CheckResult:
    data = _data()
    return check(PriceBook.load(), openai_items(data.items), at=data.fetched)


@cache
def _exceptions() -> dict[str, object]:
    return tomllib.loads(EXCEPTIONS.read_text(encoding="utf-8"))


def _list(name: str) -> list[dict[str, object]]:
    value = _exceptions().get(name, [])
    assert isinstance(value, list)
    return value


def _show(lines: list[str], limit: int = 25) -> str:
    more = f"\n  ... and {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n  " + "\n  ".join(lines[:limit]) + more


def test_the_excerpt_is_the_snapshot_it_names() -> None:
    data = _data()
    assert data.fetched == date(2026, 8, 11)
    assert len(data.items) > 15_000  # one item per meter and region
    assert {i.product for i in data.items} <= {
        "Azure OpenAI", "Azure OpenAI GPT5", "Azure OpenAI Media", "Azure OpenAI Reasoning",
        "Azure OpenAI PP FT GPT4s", "Azure OpenAI OSS Models", "Azure OpenAI Embedding", "Azure OpenAI Free Meter",
    }


def test_every_item_is_a_token_price_or_a_reviewed_unit() -> None:
    reviewed = {str(u["unit"]) for u in _list("unit")}
    seen = {i.unit for i in _data().items if not i.is_token_price and i.per_million is None}
    assert seen - reviewed == set(), "units not reviewed in exceptions.toml"
    assert reviewed - seen == set(), "stale [[unit]] entries"
    assert all(u.get("reason") for u in _list("unit"))


def test_every_unmapped_meter_is_in_a_reviewed_category() -> None:
    by_category: dict[str, set[str]] = defaultdict(set)
    for name, category, _ in _result().unmapped:
        by_category[category].add(name)
    reviewed = {str(c["name"]): c for c in _list("category")}
    assert set(by_category) - set(reviewed) == set(), "categories not reviewed in exceptions.toml"
    assert set(reviewed) - set(by_category) == set(), "stale [[category]] entries"
    for name, entry in reviewed.items():
        assert entry.get("reason"), name
        if "meters" in entry:  # small categories are reviewed meter by meter
            assert set(entry["meters"]) == by_category[name], name  # type: ignore[arg-type]


def test_every_meter_agrees_or_is_a_reviewed_disagreement() -> None:
    reviewed = {(str(d["model"]), d["row_from"]): d for d in _list("disagreement")}
    assert all(d.get("reason") for d in reviewed.values())
    explained: set[tuple[str, object]] = set()
    unexplained: list[str] = []
    for finding in _result().differ:
        assert finding.row is not None
        key = (finding.row.model, finding.row.effective_from)
        if key in reviewed:
            explained.add(key)
        else:
            unexplained.append(finding.what)
    assert not unexplained, f"{len(unexplained)} meters disagree with the tables:" + _show(unexplained)
    assert set(reviewed) - explained == set(), "stale [[disagreement]] entries"


def test_no_meter_is_missing_from_the_tables() -> None:
    missing = [f.what for f in _result().missing]
    assert not missing, f"{len(missing)} Azure meters have no row:" + _show(missing)


def test_no_row_prices_what_azure_does_not_sell() -> None:
    invented = [n.what for n in _result().no_meter]
    assert not invented, f"{len(invented)} rows have no Azure meter behind them:" + _show(invented)


def test_models_without_a_meter_are_reviewed() -> None:
    reviewed = {str(u["model"]) for u in _list("unmetered")}
    assert set(_result().unmetered_models) == reviewed
    assert all(u.get("reason") for u in _list("unmetered"))


def test_every_mapped_meter_was_compared() -> None:
    result = _result()
    token_items = [i for i in openai_items(_data().items) if i.is_token_price]
    read = [i for i in openai_items(_data().items) if meter_prices(i) is not None]
    assert result.agree + len(result.differ) + len(result.missing) + len(result.unmapped) == len(read) == \
        result.compared
    assert {i.unit for i in read} - {i.unit for i in token_items} == {"1", "100", "1 Hour"}  # sessions, images, hours
    assert result.agree > 14_000


def test_the_generated_table_is_exactly_what_the_generator_writes() -> None:
    """20-azure-retail.toml is generated, never edited: regenerating it from the excerpt gives the same bytes."""
    table = tomllib.loads(GENERATED.read_text(encoding="utf-8"))["table"]
    text = render(
        read_meters(openai_items(_data().items)),
        version=table["version"],
        published=table["published"],
        snapshot=DATA.name,
        source=f"Azure Retail Prices API meters, https://prices.azure.com/api/retail/prices ({DATA.name})",
    )
    assert text == GENERATED.read_text(encoding="utf-8")


@pytest.mark.parametrize(("factor", "agrees"), [("1.004", True), ("1.006", False), ("0.994", False)])
def test_the_check_catches_a_row_off_by_more_than_half_a_percent(tmp_path: Path, factor: str, agrees: bool) -> None:
    """A user row for gpt-4.1-mini Global input (0.4 per 1M at Azure) moved by ``factor``."""
    price = Decimal("0.4") * Decimal(factor)
    path = write_table(tmp_path, f"""
[[price]]
model = "gpt-4.1-mini"
deployment_type = "GlobalStandard"
effective_from = 2025-04-01
input = "{price}"
source = "test"
""")
    data = _data()
    result = check(PriceBook.load(path), openai_items(data.items), at=data.fetched)
    ours = [f for f in result.differ if f.row is not None and f.row.file == str(path)]
    assert (not ours) is agrees
    if not agrees:
        assert all(f.key.kind == "input" and f.table_price == price for f in ours)
        assert {f.region for f in ours} >= {"eastus2", "swedencentral"}  # every region of the Global meter


def test_the_check_finds_a_row_for_a_region_azure_does_not_sell_in(tmp_path: Path) -> None:
    path = write_table(tmp_path, """
[[price]]
model = "gpt-4o-2024-11-20"
deployment_type = "Standard"
region = "westeurope"
effective_from = 2025-01-01
input = "2.75"
output = "11"
source = "test"
""")
    data = _data()
    result = check(PriceBook.load(path), openai_items(data.items), at=data.fetched)
    assert [n.what for n in result.no_meter] == [
        "gpt-4o-2024-11-20:Standard:westeurope@2025-01-01/input in westeurope: 2.75 per 1M, no Azure meter",
        "gpt-4o-2024-11-20:Standard:westeurope@2025-01-01/output in westeurope: 11 per 1M, no Azure meter",
    ]


def test_the_check_finds_every_meter_the_tables_lack() -> None:
    data = _data()
    result = check(PriceBook.load(include_builtin=False), openai_items(data.items), at=data.fetched)
    assert result.agree == 0 and result.differ == []
    assert len(result.missing) == _result().agree + len(_result().differ)
    assert any(f.key.model == "text-embedding-3-small" and f.row is None for f in result.missing)


def test_the_documented_generate_command_reproduces_the_table(tmp_path: Path) -> None:
    """docs/pricing.md's command, in a fresh process: same bytes as the checked-in file."""
    import subprocess
    import sys

    table = tomllib.loads(GENERATED.read_text(encoding="utf-8"))["table"]
    out = tmp_path / "20-azure-retail.toml"
    done = subprocess.run(
        [sys.executable, "-m", "meter.pricing.generate", str(DATA.relative_to(ROOT)), "--out", str(out),
         "--version", table["version"], "--published", table["published"].isoformat()],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == GENERATED.read_bytes()
    assert "token and unit prices mapped" in done.stderr
