"""The pricing commands, driven through an argparse tree built the way meter/cli.py builds it."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pricing_helpers import write_table

from meter.commands import pricing as pricing_cli
from meter.pricing.model import KINDS

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="meter")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    pricing_cli.add_commands(commands)
    args = parser.parse_args(argv)
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


NO_PRICE_AFTER_OUTPUT = ["-"] * (len(KINDS) - KINDS.index("output") - 1)
"""A text model's columns after output (audio, and any kind added later) show no price."""


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["pricing", "list", "--at", "2026-11-01"], capsys)
    assert code == 0
    assert out.startswith("price table 2026-12-01.1+2026-12-07.1; prices in force on 2026-11-01, USD per 1M tokens")
    lines = out.splitlines()
    header = lines[1].split()
    assert header[:3] == ["model", "deployment", "type"]
    row = next(line for line in lines if line.startswith("gpt-4.1-mini ") and "GlobalStandard" in line)
    assert row.split() == ["gpt-4.1-mini", "GlobalStandard", "0.4", "0.1", "-", "1.6", *NO_PRICE_AFTER_OUTPUT]
    # Azure prices US Government regions at 1.25x Global (Retail meters, 2026-08-11 snapshot).
    gov = next(line for line in lines if line.startswith("gpt-4.1-mini ") and " us-gov " in line)
    assert gov.split() == ["gpt-4.1-mini", "DataZoneStandard", "us-gov", "0.55", "0.138", "-", "2.2",
                           *NO_PRICE_AFTER_OUTPUT]
    assert "region group us-gov: usgovarizona, usgovvirginia" in out
    assert "GlobalProvisionedManaged" in out


def test_list_filters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["pricing", "list", "--at", "2025-05-01", "--model", "o3", "--deployment-type", "global"], capsys
    )
    assert code == 0
    rows = [line.split() for line in out.splitlines()[2:] if line.startswith("o3")]
    assert ["o3", "GlobalStandard", "10", "2.5", "-", "40", *NO_PRICE_AFTER_OUTPUT] in rows
    assert all(r[1] == "GlobalStandard" for r in rows)


def test_show_with_correction(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["pricing", "show", "gpt-5.5-pro-2026-04-23"], capsys)
    assert code == 0
    assert "gpt-5.5-pro:GlobalStandard@2026-04-23" in out
    assert "2026-04-23 to open, recorded 2026-04-23: input 60, cached 6, output 360" in out
    assert "corrected 2026-04-29: input 60 -> 30, cached 6 -> 3, output 360 -> 180" in out


def test_show_history_of_o3(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["pricing", "show", "o3"], capsys)
    assert code == 0
    assert "2025-04-16 to 2025-06-01: input 10, cached 2.5, output 40" in out
    assert "2025-06-01 to open: input 2, cached 0.5, output 8" in out
    assert "note: meters: o3 0416 Inp glbl Tokens; o3 0416 Outp glbl Tokens; o3 0416 cached Inp glbl Tokens" in out


def test_show_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["pricing", "show", "nope"], capsys)
    assert code == 1
    assert "unknown model 'nope'" in err


def test_diff(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["pricing", "diff", "--at", "2025-05-31", "--at", "2025-06-01"], capsys)
    assert code == 0
    rows = [line.split() for line in out.splitlines()[2:]]
    assert ["o3", "GlobalStandard", "input", "10", "2"] in rows
    assert ["o3", "GlobalStandard", "output", "40", "8"] in rows
    assert ["o3", "DataZoneStandard", "input", "-", "2.2"] in rows


def test_diff_no_changes_and_wrong_count(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["pricing", "diff", "--at", "2026-10-01", "--at", "2026-10-02"], capsys)
    assert (code, out.splitlines()[-1]) == (0, "no differences")
    code, _, err = run(["pricing", "diff", "--at", "2026-10-01"], capsys)
    assert code == 1
    assert "exactly two dates" in err


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_table(
        tmp_path,
        '[[price]]\nmodel = "m"\ndeployment_type = "dz"\neffective_from = 2026-01-01\ninput = "1"\nsource = "s"\n',
    )
    code, out, _ = run(["pricing", "validate", str(path)], capsys)
    assert code == 0
    assert out == f"ok: {path}: table user-1 published 2026-01-01, 1 rows, 0 corrections\n"


def test_validate_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_table(
        tmp_path,
        '[[price]]\nmodel = "m"\ndeployment_type = "Turbo"\neffective_from = 2026-01-01\ninput = "-1"\n',
    )
    code, out, err = run(["pricing", "validate", str(path)], capsys)
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert f"error: {path}: price[0] (m@2026-01-01): field 'deployment_type': unknown deployment type 'Turbo'" in err
    assert f"error: {path}: price[0] (m@2026-01-01): field 'source': missing (required)" in lines
    assert f"error: {path}: price[0] (m@2026-01-01): field 'input': '-1' is negative; prices must be >= 0" in lines


def test_price_breakdown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            "price",
            "gpt-5-mini-2025-08-07",
            "--input",
            "3662",
            "--cached",
            "2944",
            "--output",
            "863",
            "--reasoning",
            "512",
            "--at",
            "2026-11-01",
        ],
        capsys,
    )
    assert code == 0
    assert "model:           gpt-5-mini (requested gpt-5-mini-2025-08-07)" in out
    assert "deployment type: GlobalStandard (assumed: no deployment type given)" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["input", "718", "0.25", "0.0001795"] in rows
    assert ["cached_input", "2944", "0.025", "0.0000736"] in rows
    assert ["output", "863", "2", "0.001726", "incl.", "512", "reasoning"] in rows
    assert ["total", "0.0019791"] in rows
    assert "basis: list" in out
    assert "row: gpt-5-mini:GlobalStandard@2025-08-01/cached_input" in out


def test_price_regional_and_believed_at(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            "price",
            "gpt-4o",
            "--input",
            "1000000",
            "--deployment-type",
            "Standard",
            "--region",
            "swedencentral",
            "--at",
            "2026-01-01",
        ],
        capsys,
    )
    assert code == 0
    assert ["total", "3.025"] in [line.split() for line in out.splitlines()]
    code, out, _ = run(
        ["price", "gpt-5.5-pro", "--input", "1000000", "--at", "2026-04-23", "--believed-at", "2026-04-23"], capsys
    )
    assert ["total", "60"] in [line.split() for line in out.splitlines()]


def test_price_unknown_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["price", "nope", "--input", "10"], capsys)
    assert code == 1
    assert "basis: unknown (unknown model 'nope': no price rows match it)" in out
    assert ["total", "unknown"] in [line.split() for line in out.splitlines()]


def test_price_with_user_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_table(
        tmp_path,
        '[[price]]\nmodel = "acme"\ndeployment_type = "GlobalStandard"\n'
        'effective_from = 2026-01-01\ninput = "3"\nsource = "contract"\n',
    )
    code, out, _ = run(["price", "acme", "--input", "1000000", "--table", str(path), "--at", "2026-02-01"], capsys)
    assert code == 0
    assert "table version:   user-1" in out


def test_bad_arguments_are_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["price", "gpt-5", "--input", "-3"],
        ["price", "gpt-5", "--at", "yesterday"],
        ["pricing", "list", "--deployment-type", "turbo"],
    ):
        with pytest.raises(SystemExit):
            run(argv, capsys)


def test_pricing_without_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["pricing"], capsys)
    assert code == 0
    assert "import-azure-retail" in out


def test_python_m_meter_pricing_list() -> None:
    """The real entry point: meter's own CLI must find the pricing commands."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    probe = subprocess.run([sys.executable, "-c", "import meter.cli"], cwd=ROOT, env=env, capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"meter.cli does not import right now: {probe.stderr.decode()[-300:]}")
    done = subprocess.run(
        [sys.executable, "-m", "meter", "pricing", "list", "--at", "2026-11-01"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("price table 2026-12-01.1+2026-12-07.1")
    assert "gpt-5.6-luna" in done.stdout


def _blocks(out: str) -> dict[str, list[str]]:
    """``pricing show`` output as entry id -> the lines under it."""
    return {block.splitlines()[0]: block.splitlines()[1:] for block in out.split("\n\n")[1:]}


def test_list_names_region_groups_by_their_regions_not_a_hash(capsys: pytest.CaptureFixture[str]) -> None:
    """``r-b2db98c2`` says nothing; the generated groups are named by the regions in them."""
    import re

    code, out, _ = run(["pricing", "list", "--at", "2026-11-01"], capsys)
    assert code == 0
    table, footer = out.split("Region groups", 1)
    assert not re.search(r"\br-[0-9a-f]{8}\b", table), re.findall(r".*\br-[0-9a-f]{8}\b.*", table)[:3]
    row = next(line for line in table.splitlines() if line.startswith("gpt-4o-2024-11-20 ") and " 3.025 " in line)
    assert row.split()[:6] == ["gpt-4o-2024-11-20", "Standard", "canadaeast", "+8", "more", "3.025"]
    assert ("region group canadaeast +8 more (r-f17c3656): canadaeast, francecentral, japaneast, norwayeast, "
            "southafricanorth, swedencentral, switzerlandnorth, uaenorth, uksouth") in footer.splitlines()
    assert "region group us-gov: usgovarizona, usgovvirginia" in footer.splitlines()  # a name a person gave
    labels = [line.split(" (r-")[0] for line in footer.splitlines() if line.startswith("region group ")]
    assert len(labels) == len(set(labels)) > 20  # every group its own name


def test_region_labels_tell_alike_groups_apart() -> None:
    from meter.pricing.listing import region_labels

    groups = {
        "r-00000001": ("eastus", "eastus2", "westus"),
        "r-00000002": ("eastus", "eastus2", "westus2"),
        "r-00000003": ("northeurope", "westeurope"),
        "r-00000004": ("a", "b", "c"),
        "r-00000005": ("a", "b", "c", "d"),
        "r-00000006": ("a", "c", "d", "e"),
        "us-gov": ("x",),
    }
    assert region_labels(groups) == {
        "r-00000001": "eastus +2 more incl. westus",
        "r-00000002": "eastus +2 more incl. westus2",
        "r-00000003": "northeurope+westeurope",
        "r-00000004": "a +2 more",
        "r-00000005": "a +3 more incl. b",
        "r-00000006": "a +3 more incl. e",
        "us-gov": "us-gov",
    }


def test_show_says_which_of_two_open_entries_applies_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    """Two GlobalStandard entries of gpt-4o "to open" at equal prices: the Retail-generated table over the
    kept history takes over from its first day; each entry says so, and the pricing agrees."""
    from pricing_helpers import FakeUsage, utc

    from meter.pricing import PriceBook

    code, out, _ = run(["pricing", "show", "gpt-4o"], capsys)
    assert code == 0
    blocks = _blocks(out)
    old, new = "gpt-4o-2024-11-20:GlobalStandard@2024-11-20", "gpt-4o-2024-11-20:GlobalStandard@2024-12-01"
    assert blocks[old][:2] == [
        "  2024-11-20 to open: input 2.5, cached 1.25, output 10",
        f"  applies: 2024-11-20 to 2024-12-01; from 2024-12-01 {new} applies instead (a later table, "
        "20-azure-retail.toml; same prices)"]
    assert f"  replaces {old} from 2024-12-01" in blocks[new]
    group = blocks["gpt-4o-2024-11-20:Standard:r-783045b6@2024-12-01"]
    assert group[0] == ("  regions: australiaeast, centralus, eastus, eastus2, northcentralus, southcentralus, "
                        "southindia, westus, westus3 (group australiaeast +8 more incl. centralus)")
    assert ("  replaces gpt-4o-2024-11-20:Standard:regional-base@2024-11-20 from 2024-12-01 (in eastus, eastus2)"
            in group)
    book = PriceBook.load()
    for day, entry in ((utc(2024, 11, 25), old), (utc(2024, 12, 5), new)):
        cost = book.cost_of(FakeUsage(input_tokens=1000, total_tokens=1000), model="gpt-4o-2024-11-20",
                            deployment_type="GlobalStandard", at=day)
        assert [row_id.rpartition("/")[0] for row_id in cost.row_ids] == [entry]


def test_show_names_a_user_table_that_takes_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = write_table(tmp_path, '[[price]]\nmodel = "gpt-4o-2024-11-20"\ndeployment_type = "GlobalStandard"\n'
                        'effective_from = 2025-01-01\ninput = "2"\noutput = "8"\nsource = "agreement"\n')
    code, out, _ = run(["pricing", "show", "gpt-4o-2024-11-20", "--table", str(table)], capsys)
    assert code == 0
    blocks = _blocks(out)
    assert ("  applies: 2024-12-01 to 2025-01-01; from 2025-01-01 gpt-4o-2024-11-20:GlobalStandard@2025-01-01 "
            "applies instead (a later table, user.toml; other prices)") in blocks[
        "gpt-4o-2024-11-20:GlobalStandard@2024-12-01"]
    # the history's entry is taken over by the Retail one first, then by the user's
    assert blocks["gpt-4o-2024-11-20:GlobalStandard@2024-11-20"][1] == (
        "  applies: 2024-11-20 to 2024-12-01; from 2024-12-01 to 2025-01-01 gpt-4o-2024-11-20:GlobalStandard@2024-12-01"
        " applies instead (a later table, 20-azure-retail.toml; same prices); from 2025-01-01 "
        "gpt-4o-2024-11-20:GlobalStandard@2025-01-01 applies instead (a later table, user.toml; other prices)")
    assert "  replaces gpt-4o-2024-11-20:GlobalStandard@2024-12-01 from 2025-01-01" in blocks[
        "gpt-4o-2024-11-20:GlobalStandard@2025-01-01"]
