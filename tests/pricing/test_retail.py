"""Reading saved Retail Prices data: both shapes, units, and clear errors for bad files."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pricing_helpers import FIXTURES

from meter.pricing import PricingFileError
from meter.pricing.retail import RetailData, RetailItem, combine, load_retail, openai_items

SAMPLE = FIXTURES / "openai-sample.json"


def _item(**over: object) -> dict[str, object]:
    item: dict[str, object] = {
        "meterName": "gpt 4.1 mini Inp glbl Tokens", "productName": "Azure OpenAI", "armRegionName": "eastus2",
        "unitOfMeasure": "1K", "retailPrice": 0.0004, "effectiveStartDate": "2025-04-01T00:00:00Z",
        "type": "Consumption", "tierMinimumUnits": 0.0,
    }
    item.update(over)
    return item


def _write(tmp_path: Path, data: object, name: str = "retail.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_an_api_answer_page(tmp_path: Path) -> None:
    data = load_retail(_write(tmp_path, {"Items": [_item()], "NextPageLink": None}))
    assert data.fetched is None and data.pages == 1 and not data.incomplete
    (item,) = data.items
    assert item == RetailItem("gpt 4.1 mini Inp glbl Tokens", "Azure OpenAI", "eastus2", "1K", Decimal("0.0004"),
                              date(2025, 4, 1))
    assert item.per_million == Decimal("0.4000")  # exact: JSON numbers are read as decimals, never floats
    assert item.is_token_price


def test_a_snapshot_with_regions_and_fetch_date(tmp_path: Path) -> None:
    raw = _item(regions=["eastus2", "Sweden Central", "Global"])
    del raw["armRegionName"]
    data = load_retail(_write(tmp_path, {"fetched_at": "2026-08-11T00:57:47", "items": [raw]}))
    assert data.fetched == date(2026, 8, 11)
    assert [i.region for i in data.items] == ["eastus2", "swedencentral", ""]


def test_a_list_of_pages_and_several_files(tmp_path: Path) -> None:
    first = _write(tmp_path, [{"Items": [_item()], "NextPageLink": "https://prices.azure.com/...&$skip=1000"},
                              {"Items": [_item(armRegionName="westus")], "NextPageLink": None}], "a.json")
    data = load_retail(first)
    assert (data.pages, data.linked_pages, data.incomplete) == (2, 1, False)
    cut = load_retail(_write(tmp_path, {"Items": [_item()], "NextPageLink": "https://next"}, "b.json"))
    assert cut.incomplete  # the last page is missing
    both = combine([data, cut])
    assert len(both.items) == 3 and both.pages == 3 and not both.incomplete


def test_combine_takes_the_earliest_fetch_day_only_when_every_file_has_one() -> None:
    a = RetailData([], date(2026, 8, 11))
    b = RetailData([], date(2026, 9, 1))
    assert combine([a, b]).fetched == date(2026, 8, 11)
    assert combine([a, RetailData([], None)]).fetched is None


@pytest.mark.parametrize(
    ("unit", "per_million"),
    [("1K", Decimal("2.0")), ("1M", Decimal("0.002")), (" 1k ", Decimal("2.0")), ("1 Hour", None),
     ("1/Hour", None), ("1/Day", None), ("100", None), ("1 Second", None), ("1", None)],
)
def test_units(unit: str, per_million: Decimal | None) -> None:
    item = RetailItem("m", "Azure OpenAI", "", unit, Decimal("0.002"), date(2025, 1, 1))
    assert item.per_million == per_million
    assert item.is_token_price is (per_million is not None)


def test_reservations_and_volume_tiers_are_not_pay_as_you_go_prices() -> None:
    base = RetailItem("m", "Azure OpenAI", "", "1K", Decimal("0.002"), date(2025, 1, 1))
    reservation = RetailItem("m", "Azure OpenAI", "", "1K", Decimal("0.002"), date(2025, 1, 1), "Reservation")
    tiered = RetailItem("m", "Azure OpenAI", "", "1K", Decimal("0.002"), date(2025, 1, 1), "Consumption",
                        Decimal(100))
    assert base.is_token_price and not reservation.is_token_price and not tiered.is_token_price


def test_openai_items_keep_only_the_azure_openai_products(tmp_path: Path) -> None:
    data = load_retail(_write(tmp_path, {"Items": [_item(), _item(productName="Azure Mistral Models")]}))
    assert [i.product for i in openai_items(data.items)] == ["Azure OpenAI"]


def test_the_sample_fixture_reads() -> None:
    data = load_retail(SAMPLE)
    assert len(data.items) == 22
    assert {i.item_type for i in data.items} == {"Consumption", "Reservation"}


@pytest.mark.parametrize(
    ("content", "entry", "field", "message"),
    [
        ("{not json", "(file)", "-", "not valid JSON"),
        ('{"value": []}', "(file)", "Items", "not a Retail Prices API answer: no Items list"),
        ("[]", "(file)", "Items", "an empty list"),
        ('[{"Items": []}, 3]', "page 1", "Items", "no Items list"),
        ('{"Items": [3]}', "Items[0]", "-", "must be an object"),
        ('{"fetched_at": "yesterday", "items": []}', "(file)", "fetched_at", "is not a date"),
    ],
)
def test_bad_files_name_file_entry_and_field(
    tmp_path: Path, content: str, entry: str, field: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PricingFileError) as info:
        load_retail(path)
    (problem,) = info.value.problems
    assert (problem.file, problem.entry, problem.field) == (str(path), entry, field)
    assert message in problem.problem


@pytest.mark.parametrize(
    ("over", "field", "message"),
    [
        ({"retailPrice": "0.01"}, "retailPrice", "not a number: '0.01'"),
        ({"retailPrice": None}, "retailPrice", "not a number: None"),
        ({"retailPrice": True}, "retailPrice", "not a number"),
        ({"retailPrice": -1}, "retailPrice", "-1 is not a price"),
        ({"tierMinimumUnits": "x"}, "tierMinimumUnits", "not a number"),
        ({"effectiveStartDate": "soon"}, "effectiveStartDate", "not a date"),
        ({"effectiveStartDate": 5}, "effectiveStartDate", "missing or not a string"),
        ({"meterName": ""}, "meterName", "missing or not a string"),
        ({"regions": "eastus"}, "regions", "must be a list of region names"),
    ],
)
def test_bad_items_name_the_item_and_field(tmp_path: Path, over: dict[str, object], field: str, message: str) -> None:
    path = _write(tmp_path, {"Items": [_item(), _item(**over)]})
    with pytest.raises(PricingFileError) as info:
        load_retail(path)
    (problem,) = info.value.problems
    assert (problem.entry, problem.field) == ("Items[1]", field)
    assert message in problem.problem


def test_nan_and_infinity_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"Items": [{"meterName": "m", "productName": "Azure OpenAI", "unitOfMeasure": "1K", '
                    '"retailPrice": NaN, "effectiveStartDate": "2025-01-01"}]}', encoding="utf-8")
    with pytest.raises(PricingFileError, match="retailPrice"):
        load_retail(path)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PricingFileError, match="cannot read file"):
        load_retail(tmp_path / "nope.json")


def test_deep_nesting_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(PricingFileError):
        load_retail(path)
