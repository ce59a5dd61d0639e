"""`meter pricing check` and `meter pricing import-azure-retail` on saved Retail Prices answers."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pricing_helpers import write_table

from meter.commands import pricing as pricing_cli
from meter.pricing import PriceBook
from meter.pricing.meters import UnmappedMeter, parse_meter
from meter.pricing.retail import load_retail
from meter.pricing.retail_import import import_retail
from meter.pricing.table import parse_table

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "pricing" / "azure-retail" / "2026-08-11-azure-openai.json"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="meter")
    pricing_cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


def _page(items: list[dict[str, object]], next_link: str | None = None) -> dict[str, object]:
    return {"BillingCurrency": "USD", "Items": items, "NextPageLink": next_link, "Count": len(items)}


def _item(name: str, price: float, region: str = "eastus2", start: str = "2025-04-01", unit: str = "1K",
          product: str = "Azure OpenAI") -> dict[str, object]:
    """An item as the Retail Prices API returns it (one region per item)."""
    return {"currencyCode": "USD", "tierMinimumUnits": 0.0, "retailPrice": price, "unitPrice": price,
            "armRegionName": region, "effectiveStartDate": f"{start}T00:00:00Z", "meterName": name,
            "productName": product, "serviceName": "Foundry Models", "unitOfMeasure": unit, "type": "Consumption"}


def _snapshot_items(model: str) -> list[dict[str, object]]:
    """Every meter of one model in the 2026-08-11 snapshot, one item per region as the API returns them."""
    data = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    out = []
    for item in data["items"]:
        try:
            if parse_meter(item["meterName"], item["productName"]).model != model:
                continue
        except UnmappedMeter:
            continue
        for region in item["regions"]:
            out.append(_item(item["meterName"], float(item["retailPrice"]), region, item["effectiveStartDate"][:10],
                             item["unitOfMeasure"], item["productName"]))
    return out


# A user's answer for every gpt-4.1-mini meter (real names and prices): it agrees with the built-ins.
AGREES = _snapshot_items("gpt-4.1-mini")
# ... and the same answer after a made-up price change of its Global output meter (the API returns
# only the current price of a meter, with its new start date)
_GLOBAL_OUTPUT = "gpt 4.1 mini Outp glbl Tokens"
CHANGED = [{**i, "retailPrice": 0.0012, "unitPrice": 0.0012, "effectiveStartDate": "2026-10-01T00:00:00Z"}
           for i in AGREES if i["meterName"] == _GLOBAL_OUTPUT]
AFTER_CHANGE = [i for i in AGREES if i["meterName"] != _GLOBAL_OUTPUT] + CHANGED
NEW_MODEL = _snapshot_items("gpt-5.4-mini")


def _answer(tmp_path: Path, items: list[dict[str, object]], name: str = "answer.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(_page(items)), encoding="utf-8")
    os.utime(path, (1_790_000_000, 1_790_000_000))  # "fetched" 2026-09-21 (the file's modification date)
    return path


def test_check_of_the_bundled_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    """Against the excerpt the built-ins were generated from, only the reviewed luna / terra change
    after the snapshot disagrees (see pricing/azure-retail/exceptions.toml)."""
    code, out, _ = run(["pricing", "check", str(SNAPSHOT)], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"Retail data: {SNAPSHOT}: fetched 2026-08-11"
    assert "agree within 0.5 %: 15239" in lines  # tokens, and the tools' fees, whisper and dall-e-3 in their units
    assert "disagree: 888:" in lines
    assert "missing from the tables: 0" in lines
    assert "rows priced where Azure has no meter: 0" in lines
    assert "models priced that the data has no meter for (1; not compared): gpt-5.5-pro" in lines
    differ = [line for line in lines if line.startswith("  gpt-")]
    assert differ and all(line.startswith(("  gpt-5.6-luna ", "  gpt-5.6-terra ")) for line in differ)
    assert all("the row starts 2026-08-01, after the meter" in line for line in differ)


def test_check_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["pricing", "check", str(_answer(tmp_path, AGREES))], capsys)
    assert code == 0
    assert "no fetch date in the file, using its modification date 2026-09-21" in out
    assert "agree within 0.5 %: 393" in out
    assert out.splitlines()[-1] == "ok: the tables agree with the data"


def test_check_lists_changes_and_missing_meters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _answer(tmp_path, AFTER_CHANGE + NEW_MODEL)
    code, out, _ = run(["pricing", "check", str(path), "--at", "2026-11-01"], capsys)
    assert code == 1
    assert "data of 2026-11-01 (--at)" in out
    assert f"agree within 0.5 %: {len(AGREES) - len(CHANGED) + len(NEW_MODEL)}" in out
    assert f"disagree: {len(CHANGED)}:" in out
    assert ("gpt-4.1-mini GlobalStandard output on 2026-10-01: table 1.6 (gpt-4.1-mini:GlobalStandard@2025-04-01/"
            f"output), meter 'gpt 4.1 mini Outp glbl Tokens' 1.2 from 2026-10-01 [{len(CHANGED)} regions (") in out
    assert "missing from the tables: 0" in out


def test_check_finds_a_meter_no_table_has(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    item = _item("gpt-4-32K-Input-regional Tokens", 0.06, "polandcentral", start="2024-06-01")
    other = _item("gpt-4-32K-Input-regional Tokens", 0.06, "newregion", start="2026-10-01")
    code, out, _ = run(["pricing", "check", str(_answer(tmp_path, [item, other]))], capsys)
    assert code == 1
    assert ("gpt-4-32k-0613 Standard input: no row; meter 'gpt-4-32K-Input-regional Tokens' 60 from 2026-10-01 "
            "[newregion]") in out


def test_import_writes_exactly_what_check_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = _answer(tmp_path, AFTER_CHANGE)
    out_file = tmp_path / "retail.toml"
    code, _, err = run(["pricing", "import-azure-retail", str(answer), "-o", str(out_file), "--version", "r1"],
                       capsys)
    assert code == 0
    assert "wrote 1 price entries for 1 prices:" in err
    assert "gpt-4.1-mini GlobalStandard output: table 1.6 (gpt-4.1-mini:GlobalStandard@2025-04-01/output), meter 1.2" \
        in err
    table = parse_table(tomllib.loads(out_file.read_text(encoding="utf-8")), str(out_file))
    assert [(r.model, r.deployment_type, r.regions, r.kind, r.usd_per_1m, r.effective_from) for r in table.rows] == [
        ("gpt-4.1-mini", "GlobalStandard", ("",), "output", Decimal("1.2"), date(2026, 10, 1)),
    ]
    assert table.version == "r1"
    # layered on the built-ins, the same answer now checks clean
    code, out, _ = run(["pricing", "check", str(answer), "--table", str(out_file)], capsys)
    assert (code, out.splitlines()[-1]) == (0, "ok: the tables agree with the data")
    book = PriceBook.load(out_file)
    assert book.version == "2026-12-01.1+2026-12-07.1+r1"


def test_import_keeps_a_newer_built_in_change(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The snapshot predates the luna / terra re-pricing: importing it must not bring the old price back."""
    out_file = tmp_path / "retail.toml"
    code, _, err = run(["pricing", "import-azure-retail", str(SNAPSHOT), "-o", str(out_file)], capsys)
    assert code == 0
    assert "wrote 0 price entries" in err
    assert "kept 48 newer built-in prices (the data predates them):" in err
    assert parse_table(tomllib.loads(out_file.read_text(encoding="utf-8")), str(out_file)).rows == ()


def test_import_all_is_the_generated_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "all.toml"
    code, _, err = run(["pricing", "import-azure-retail", str(SNAPSHOT), "--all", "-o", str(out_file)], capsys)
    assert code == 0
    assert "wrote 431 price entries" in err
    ours = tomllib.loads(out_file.read_text(encoding="utf-8"))
    builtin = tomllib.loads((ROOT / "pricing" / "20-azure-retail.toml").read_text(encoding="utf-8"))
    assert ours["price"] == builtin["price"]
    assert ours["region_groups"] == builtin["region_groups"]


def test_import_of_a_global_key_writes_every_region_of_it(tmp_path: Path) -> None:
    """One region priced apart must not become the Global price of every region."""
    items = [_item("gpt 4.1 mini Outp glbl Tokens", 0.0012, r, start="2026-10-01") for r in ("eastus2", "westus")]
    items.append(_item("gpt 4.1 mini Outp glbl Tokens", 0.0015, "usgovvirginia", start="2026-10-01"))
    path = _answer(tmp_path, items)
    result = import_retail(PriceBook.load(), load_retail(path), version="v", published=date(2026, 12, 1),
                           source_name="test", at=date(2026, 11, 1))
    table = parse_table(tomllib.loads(result.toml), "x.toml")
    assert sorted((r.regions, r.usd_per_1m) for r in table.rows) == [
        (("",), Decimal("1.2")), (("usgovvirginia",), Decimal("1.5"))]


def test_import_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["pricing", "import-azure-retail", str(_answer(tmp_path, NEW_MODEL + AFTER_CHANGE))], capsys)
    assert code == 0
    assert out.startswith("# Imported from Azure Retail Prices data by `meter pricing import-azure-retail`.")
    assert 'version = "azure-retail-' in out


def test_several_page_files_and_a_missing_last_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "page-0.json"
    one.write_text(json.dumps(_page(AGREES[:1], "https://prices.azure.com/api/retail/prices?$skip=1000")))
    two = tmp_path / "page-1.json"
    two.write_text(json.dumps(_page(AGREES[1:])))
    code, out, err = run(["pricing", "check", str(one), str(two), "--at", "2026-11-01"], capsys)
    assert code == 0 and f"agree within 0.5 %: {len(AGREES)}" in out and err == ""
    code, _, err = run(["pricing", "check", str(one), "--at", "2026-11-01"], capsys)
    assert "warning: every page read has a NextPageLink: the answer's last page is missing" in err


@pytest.mark.parametrize("command", ["check", "import-azure-retail"])
def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_page([_item("gpt 4.1 mini Inp glbl Tokens", 0.0004), {**AGREES[0], "meterName": 3}])))
    code, out, err = run(["pricing", command, str(path)], capsys)
    assert code == 1 and out == ""
    assert err.startswith(f"error: {path}: Items[1]: field 'meterName': missing or not a string")
    bad_table = write_table(tmp_path, "[[price]]\nmodel = 1\n")
    code, _, err = run(["pricing", command, str(_answer(tmp_path, AGREES)), "--table", str(bad_table)], capsys)
    assert code == 1 and "error:" in err and "user.toml" in err


def test_import_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["pricing", "import-azure-retail", str(_answer(tmp_path, CHANGED)), "-o",
                        str(tmp_path / "no" / "such" / "dir.toml")], capsys)
    assert code == 1 and "cannot write" in err


def test_check_runs_as_the_meter_command(tmp_path: Path) -> None:
    """The user's path: a fresh `python -m meter` process, as documented."""
    done = subprocess.run([sys.executable, "-m", "meter", "pricing", "check", str(_answer(tmp_path, AGREES))],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "ok: the tables agree with the data"
