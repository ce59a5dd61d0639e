"""Importing a saved Azure Retail Prices API answer into this table format."""

from __future__ import annotations

import argparse
import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pricing_helpers import FIXTURES

from pricing import PriceBook, PricingFileError
from pricing import cli as pricing_cli
from pricing.retail_import import (
    ImportResult,
    MeterMeaning,
    UnmappedMeter,
    import_retail,
    load_retail_answer,
    parse_meter_name,
    per_million_factor,
)
from pricing.table import parse_table

SAMPLE = FIXTURES / "openai-sample.json"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt 4o 1120 Inp glbl", MeterMeaning("gpt-4o-2024-11-20", "input", "GlobalStandard")),
        ("gpt 4o 1120 cached Inp glbl", MeterMeaning("gpt-4o-2024-11-20", "cached_input", "GlobalStandard")),
        ("gpt-4o-0806-Outp-DZone", MeterMeaning("gpt-4o-2024-08-06", "output", "DataZoneStandard")),
        ("gpt 4.1 cached Inp Data Zone", MeterMeaning("gpt-4.1", "cached_input", "DataZoneStandard")),
        ("o3 0416 Batch Inp glbl", MeterMeaning("o3-2025-04-16", "input", "GlobalBatch")),
        ("GPT 5 Rsng Inp DZone", MeterMeaning("gpt-5", "input", "DataZoneStandard")),
        ("gpt 4o mini0718 BatchOutp DataZone", MeterMeaning("gpt-4o-mini-2024-07-18", "output", "DataZoneBatch")),
        ("gpt-4o-mini-0718-Input-global", MeterMeaning("gpt-4o-mini-2024-07-18", "input", "GlobalStandard")),
        ("gpt 4.1 nano Outp regional", MeterMeaning("gpt-4.1-nano", "output", "Standard")),
        ("gpt 4o 1120 Inp rgnl", MeterMeaning("gpt-4o-2024-11-20", "input", "Standard")),
        ("gpt 5 mini cached Inp dz", MeterMeaning("gpt-5-mini", "cached_input", "DataZoneStandard")),
        ("gpt 5.1 Inp glbl Priority", MeterMeaning("gpt-5.1", "input", "GlobalPriority")),
        ("gpt 5.6 cached write Inp glbl", MeterMeaning("gpt-5.6", "cache_write", "GlobalStandard")),
        ("gpt realtime aud Outp glbl", MeterMeaning("gpt-realtime", "audio_output", "GlobalStandard")),
        ("text embedding 3 large Inp glbl", MeterMeaning("text-embedding-3-large", "input", "GlobalStandard")),
    ],
)
def test_meter_names(name: str, expected: MeterMeaning) -> None:
    assert parse_meter_name(name) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Embedding Ada Inp", "no deployment scope"),
        ("gpt 4o 1120 glbl", "no token direction"),
        ("gpt 4o 0999 Inp glbl", "unknown version code 0999"),
        ("gpt image 1 Img Inp glbl", "image tokens"),
        ("gpt realtime aud cached Inp glbl", "cached audio input"),
        ("Inp glbl", "no model name"),
        ("gpt 4o Batch Inp regnl", "regional Batch"),
    ],
)
def test_unmappable_meter_names(name: str, reason: str) -> None:
    with pytest.raises(UnmappedMeter, match=reason):
        parse_meter_name(name)


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        ("1K", Decimal(1000)),
        ("1M", Decimal(1)),
        (" 1k ", Decimal(1000)),
        ("1 Hour", None),
        ("1/Hour", None),
        ("1/Day", None),
        ("100", None),
        ("1 Second", None),
    ],
)
def test_units(unit: str, factor: Decimal | None) -> None:
    assert per_million_factor(unit) == factor


def _sample_result() -> ImportResult:
    book = PriceBook.load()
    result = import_retail(
        load_retail_answer(SAMPLE),
        version="sample-1",
        published=date(2026, 11, 25),
        source_name="test",
        resolve_model=lambda name, day: book.resolve_model(name, at=day),
    )
    return result


def test_sample_import_rows() -> None:
    table = parse_table(tomllib.loads(_sample_result().toml), "imported.toml")
    prices = {(r.model, r.deployment_type, r.region, r.kind): r.usd_per_1m for r in table.rows}
    assert prices == {
        ("gpt-4o-2024-11-20", "GlobalStandard", None, "input"): Decimal("2.5"),  # 0.0025 per 1K
        ("gpt-4o-2024-11-20", "GlobalStandard", None, "cached_input"): Decimal("1.25"),
        ("gpt-4o-2024-11-20", "GlobalStandard", None, "output"): Decimal("10"),  # same meter in two regions
        ("gpt-4o-2024-11-20", "DataZoneStandard", None, "input"): Decimal("2.75"),
        ("gpt-4o-2024-08-06", "DataZoneStandard", None, "output"): Decimal("11"),
        ("gpt-4o-2024-11-20", "Standard", "eastus2", "input"): Decimal("2.75"),
        ("gpt-4o-2024-11-20", "Standard", "swedencentral", "input"): Decimal("3.025"),
        ("gpt-4o-mini-2024-07-18", "DataZoneBatch", None, "output"): Decimal("0.33"),
        ("gpt-4o-mini-2024-07-18", "GlobalStandard", None, "input"): Decimal("0.15"),
        ("gpt-4.1", "DataZoneStandard", None, "cached_input"): Decimal("0.55"),
        ("gpt-4.1-nano", "Standard", "eastus", "output"): Decimal("0.44"),
        ("o3", "GlobalBatch", None, "input"): Decimal("1"),  # 1M unit, o3-2025-04-16 -> o3
        ("gpt-5", "DataZoneStandard", None, "input"): Decimal("1.375"),
        ("gpt-5-mini", "DataZoneStandard", None, "cached_input"): Decimal("0.0275"),
        ("text-embedding-3-large", "GlobalStandard", None, "input"): Decimal("0.13"),
    }
    assert {r.effective_from for r in table.rows if r.model == "o3"} == {date(2025, 6, 1)}
    assert table.version == "sample-1"


def test_sample_import_report() -> None:
    report = _sample_result().report()
    assert report.splitlines()[0] == "mapped 16 of 22 items into 13 price entries"
    assert "'Provisioned Managed Global': unit '1 Hour' is not a token unit (1K or 1M)" in report
    assert "'Provisioned Throughput Units': unit '1/Month' is not a token unit" in report
    assert "'gpt 4o 1120 Inp glbl': type 'Reservation' is not pay-as-you-go consumption" in report
    assert "'gpt image 1 Img Inp glbl': image tokens have no price kind in this table" in report
    assert "'gpt 4o 0999 Inp glbl': unknown version code 0999" in report
    assert "'Embedding Ada Inp': no deployment scope" in report


def test_conflicting_meters_are_reported() -> None:
    item = {
        "meterName": "gpt 4.1 Inp glbl",
        "unitOfMeasure": "1M",
        "retailPrice": Decimal("2"),
        "effectiveStartDate": "2025-04-14T00:00:00Z",
        "type": "Consumption",
    }
    other = {**item, "meterName": "gpt-4.1-Input-global", "retailPrice": Decimal("3")}
    result = import_retail({"Items": [item, other]}, version="v", published=date(2026, 1, 1))
    assert result.mapped == 1
    assert "conflicts with meter 'gpt 4.1 Inp glbl' (2 vs 3 per 1M); kept the first" in result.report()


def test_two_start_dates_become_consecutive_entries() -> None:
    old = {
        "meterName": "o3 Inp glbl",
        "unitOfMeasure": "1M",
        "retailPrice": Decimal("10"),
        "effectiveStartDate": "2025-04-16T00:00:00Z",
    }
    new = {**old, "retailPrice": Decimal("2"), "effectiveStartDate": "2025-06-01T00:00:00Z"}
    result = import_retail({"Items": [new, old]}, version="v", published=date(2026, 1, 1))
    table = parse_table(tomllib.loads(result.toml), "x.toml")
    assert [(r.effective_from, r.effective_until, r.usd_per_1m) for r in table.rows] == [
        (date(2025, 4, 16), date(2025, 6, 1), Decimal("10")),
        (date(2025, 6, 1), None, Decimal("2")),
    ]


def test_not_an_api_answer(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"value": []}', encoding="utf-8")
    with pytest.raises(PricingFileError, match="not a Retail Prices API answer: no Items list"):
        load_retail_answer(path)


def test_cli_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "retail.toml"
    parser = argparse.ArgumentParser(prog="meter")
    pricing_cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["pricing", "import-azure-retail", str(SAMPLE), "-o", str(out_file), "--version", "r1"])
    assert args.handler(args) == 0
    _, err = capsys.readouterr()
    assert "mapped 16 of 22 items into 13 price entries" in err
    book = PriceBook.load(out_file)  # the output layers cleanly on the built-ins
    assert book.version == "2026-11-25.1+r1"


def test_cli_import_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="meter")
    pricing_cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["pricing", "import-azure-retail", str(SAMPLE)])
    assert args.handler(args) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("# Imported from the Azure Retail Prices API")
    assert 'version = "azure-retail-' in out
