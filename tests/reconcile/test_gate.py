"""``meter reconcile`` as a monthly CI gate (issue 23): it must not pass when nothing matched or a quarter of the bill
is unmetered; every total it prints is the sum of what it summarises; other services, FOCUS in another currency,
usage-only files, deployment tags, and a price table that ``meter pricing validate`` and ``meter reprice`` accept.

The ledger is a real metered workload against the emulator and the exports are built from the documented columns
(``billing``), as in ``test_reconcile``; the command is run as a user runs it and its printed output is parsed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from meter.reconcile.exports import read_file
from tests.reconcile.billing import (
    RESOURCE,
    RESOURCE_ID,
    Charge,
    Workload,
    bill,
    retail,
    run_workload,
    write_ea,
    write_focus,
    write_mca,
)
from tests.reconcile.test_reconcile import REPO, _cli, kinds, run

MAPPED = ["--resource", f"127.0.0.1={RESOURCE_ID}"]
MINI_INPUT = "gpt-4o-mini-0718-Inp-glbl Tokens"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    return run_workload(tmp_path_factory.mktemp("gate"))


def _meter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meter", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


def quarter_unmetered(charges: list[Charge]) -> tuple[list[Charge], Decimal]:
    """The bill with gpt-4o-mini input tokens nobody metered worth a third of it: a quarter of the new total."""
    unit, block, price = retail()[MINI_INPUT]
    total = sum((c.cost for c in charges), Decimal(0))
    tokens = (total / 3 / price * block).to_integral_value()
    extra = Charge(charges[0].day, MINI_INPUT, tokens, unit, block, price)
    return [*charges, extra], extra.cost


# ---- no resource matches -----------------------------------------------------------------------------------------

def test_no_matching_resource_is_an_error_naming_hosts_resources_and_the_flag(work: Workload, tmp_path: Path) -> None:
    good = write_ea(tmp_path / "ea.csv", bill(work.entries))
    for fmt in ("table", "json", "csv"):
        done = _cli("--ledger", str(work.ledger), str(good), "--fail-above", "2%", "--format", fmt)
        assert done.returncode == 4 and done.stdout == "", done.stdout + done.stderr
        assert done.stderr.startswith("error: no resource matches"), done.stderr
        assert "127.0.0.1 (" in done.stderr and f"{RESOURCE} ({RESOURCE_ID})" in done.stderr
    flag = done.stderr.split("e.g. ", 1)[1].strip()
    assert flag == f"--resource 127.0.0.1={RESOURCE_ID}"
    again = _cli("--ledger", str(work.ledger), str(good), "--fail-above", "2%", *shlex.split(flag))
    assert again.returncode == 0, again.stderr  # the flag it names is the one that works


# ---- coverage -----------------------------------------------------------------------------------------------------

def test_a_quarter_unmetered_fails_the_gate_both_ways(work: Workload, tmp_path: Path) -> None:
    charges, extra = quarter_unmetered(bill(work.entries))
    path = write_ea(tmp_path / "ea.csv", charges)
    result = run(work.ledger, path)
    (rollup,) = result.rollups
    billed = sum((c.cost for c in charges), Decimal(0))
    assert rollup.coverage == 1 - extra / billed and abs(rollup.coverage - Decimal("0.75")) < Decimal("0.001")
    assert result.unexplained == 0  # unmetered traffic is explained: the unexplained share alone would pass
    base = ["--ledger", str(work.ledger), str(path), *MAPPED]
    gate = _cli(*base, "--fail-above", "2%")  # counted into --fail-above: coverage of 100% minus it
    assert gate.returncode == 3, gate.stdout + gate.stderr
    assert f"coverage of {RESOURCE} in " in gate.stderr and "75.00% of its billed cost metered" in gate.stderr
    assert "below 98.00%: 100% minus --fail-above 2.00%" in gate.stderr
    assert "unexplained: 0 USD of" in gate.stdout and "coverage (the billed cost meter metered): " in gate.stdout
    alone = _cli(*base, "--min-coverage", "98%")  # the threshold of its own
    assert alone.returncode == 3 and "below 98.00%: --min-coverage 98.00%" in alone.stderr, alone.stderr
    shared = _cli(*base, "--fail-above", "2%", "--min-coverage", "70%")  # a resource other apps share
    assert shared.returncode == 0, shared.stderr
    clean = write_ea(tmp_path / "clean.csv", bill(work.entries))
    passes = _cli("--ledger", str(work.ledger), str(clean), *MAPPED, "--fail-above", "2%", "--min-coverage", "98%")
    assert passes.returncode == 0 and "100.00%" in passes.stdout, passes.stderr


# ---- one set of totals ------------------------------------------------------------------------------------------

def _table(block: str) -> tuple[list[str], list[dict[str, str]]]:
    """A printed text table: its header and its rows, cut at the header's column starts."""
    lines = block.splitlines()
    header = lines[0]
    names = re.split(r"\s{2,}", header.strip())
    starts = [header.index(name) for name in names]
    rows = []
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip(names, cells, strict=True)))
    return names, rows


def _blocks(text: str) -> dict[str, str]:
    """The printed report's tables, by their first header cell (and a title line above, when there is one)."""
    out: dict[str, str] = {}
    for chunk in text.split("\n\n"):
        lines = chunk.splitlines()
        if lines and lines[0].startswith(("unknown meters:", "commitments:", "other services:")):
            out[lines[0].split(":")[0]] = "\n".join(lines[1:])
        elif lines and re.match(r"day\s+resource", lines[0]):
            out["lines"] = chunk
        elif lines and re.match(r"resource\s+month", lines[0]):
            out["rollup"] = chunk
    return out


def _usd(cell: str) -> tuple[Decimal, int]:
    """``0.0178 + 2 unpriced`` -> (0.0178, 2); ``unpriced`` -> (0, 1)."""
    value, unpriced = Decimal(0), 0
    for part in cell.removesuffix(" USD").split(" + "):
        if part == "unpriced":
            unpriced += 1
        elif part.endswith(" unpriced"):
            unpriced += int(part.split()[0])
        else:
            value += Decimal(part.replace(",", ""))
    return value, unpriced


def _sum(rows: list[dict[str, str]], column: str) -> tuple[Decimal, int]:
    parts = [_usd(row[column]) for row in rows]
    return sum((p[0] for p in parts), Decimal(0)), sum(p[1] for p in parts)


def test_every_printed_total_is_the_sum_of_its_lines(tmp_path: Path) -> None:
    work = run_workload(tmp_path, unmetered=2)
    with sqlite3.connect(work.ledger) as db:  # one call meter could not price: unknown, never 0
        (call,) = db.execute("SELECT id FROM calls WHERE deployment = 'o4-mini'").fetchone()
        assert db.execute("UPDATE costs SET total = NULL, amounts = '{\"input\": null, \"output\": null}' "
                          "WHERE call_id = ?", (call,)).rowcount == 1
    day = bill(work.entries)[0].day
    charges = bill(work.entries, ptu_hours=24 * 15, extra=[
        Charge(day, "gpt 9 ultra 0101 Inp glbl Tokens", Decimal(120_000), "1K", 1000, Decimal("0.004")),
        Charge(day, "Standard Text Records", Decimal(3), "1K", 1, Decimal("1"), service="Language")])
    path = write_ea(tmp_path / "ea.csv", charges)
    done = _cli("--ledger", str(work.ledger), str(path), *MAPPED)
    assert done.returncode == 0, done.stderr
    blocks = _blocks(done.stdout)
    _, lines = _table(blocks["lines"])
    *lines, total = lines
    assert total["day"] == "total" and len(lines) >= 8
    for column in ("billed USD", "metered USD"):
        assert _usd(total[column]) == _sum(lines, column), column
    assert {r["unit"] for r in lines} == {"tokens"} and total["unit"] == "tokens"
    for column in ("billed qty", "metered qty", "diff qty"):
        assert Decimal(total[column].replace(",", "")) == sum(Decimal(r[column].replace(",", "")) for r in lines)
    assert _usd(total["metered USD"])[1] == 2 and "+ 2 unpriced" in total["metered USD"]  # o4-mini in and out
    assert [r["metered USD"] for r in lines if r["model"] == "o4-mini"] == ["unpriced", "unpriced"]
    _, rollups = _table(blocks["rollup"])
    *rollups, whole = rollups
    for column, line_column in (("billed USD", "billed USD"), ("metered USD", "metered USD")):
        assert _usd(whole[column]) == _sum(rollups, column) == _usd(total[line_column]), column
    assert _usd(whole["unmetered USD"]) == _sum(rollups, "unmetered USD") and _usd(whole["unmetered USD"])[0] > 0
    _, unknown = _table(blocks["unknown meters"])
    *unknown, unknown_total = unknown
    assert _usd(unknown_total["billed USD"]) == _sum(unknown, "billed USD") == (Decimal("0.48"), 0)
    _, commitments = _table(blocks["commitments"])
    *commitments, commitment_total = commitments
    assert commitment_total["quantity"] == "360 x 1 Hour" and commitment_total["billed"] == "360 USD"
    assert _sum(commitments, "billed") == (Decimal(360), 0)
    _, others = _table(blocks["other services"])
    *others, others_total = others
    assert others[0]["service"] == "Language" and _usd(others_total["billed"]) == (Decimal(3), 0)
    closing = done.stdout.rstrip().splitlines()[-4:]
    lines_billed, unknown_billed = _usd(total["billed USD"])[0], _usd(unknown_total["billed USD"])[0]
    assert closing[0] == (f"billed for Azure OpenAI: {total['billed USD']} USD in the lines + "
                          f"{unknown_total['billed USD']} USD of unknown meters = "
                          f"{(lines_billed + unknown_billed).normalize():f} USD")
    assert closing[1] == "apart from it: commitments 360 USD (360 x 1 Hour); other services 3 USD"
    unexplained = _usd(whole["unexplained USD"])[0] + unknown_billed
    share = unexplained / (lines_billed + unknown_billed)
    assert closing[3] == (f"unexplained: {whole['unexplained USD']} USD in the lines + {unknown_total['billed USD']}"
                          f" USD of unknown meters = {unexplained.normalize():f} USD of "
                          f"{(lines_billed + unknown_billed).normalize():f} USD billed ({share:.2%})")


def test_unexplained_tokens_without_a_price_are_never_0(work: Workload, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    shutil.copy(work.ledger, ledger)
    with sqlite3.connect(ledger) as db:
        (call,) = db.execute("SELECT id FROM calls WHERE deployment = 'o4-mini'").fetchone()
        db.execute("UPDATE costs SET total = NULL, amounts = '{\"input\": null, \"output\": null}' WHERE call_id = ?",
                   (call,))
    charges = [c for c in bill(work.entries) if not c.meter.startswith("o4-mini")]  # metered, never billed
    path = write_ea(tmp_path / "ea.csv", charges)
    result = run(ledger, path)
    assert result.unexplained == 0 and result.unexplained_unpriced == 2
    done = _cli("--ledger", str(ledger), str(path), *MAPPED, "--fail-above", "2%")
    assert done.returncode == 3 and "2 unexplained amount(s) have no price" in done.stderr, done.stderr
    assert "unexplained: 2 unpriced USD of" in done.stdout and "(0.00% of what is priced)" in done.stdout


# ---- other services, FOCUS in another currency, usage only --------------------------------------------------------

def test_other_cognitive_services_are_listed_apart_not_unknown_meters(work: Workload, tmp_path: Path) -> None:
    day = bill(work.entries)[0].day
    others = [Charge(day, "Standard Text Records", Decimal(12), "1K", 1, Decimal("1"), service="Language"),
              Charge(day, "S1 Speech To Text", Decimal(2), "1 Hour", 1, Decimal("1"), service="Speech"),
              Charge(day, "S1 Transactions", Decimal(5), "1K", 1, Decimal("1"), service="Computer Vision")]
    baseline = run(work.ledger, write_ea(tmp_path / "base.csv", bill(work.entries)))
    path = write_ea(tmp_path / "ea.csv", bill(work.entries, extra=others))
    result = run(work.ledger, path)
    assert kinds(result) == [] and result.unexplained == 0, [f.text for f in result.findings]
    assert result.billed_total == baseline.billed_total and not result.commitments
    assert {(o.service, o.meter, o.quantity, o.cost) for o in result.others} == {
        ("Language", "Standard Text Records", Decimal(12), Decimal(12)),
        ("Speech", "S1 Speech To Text", Decimal(2), Decimal(2)),
        ("Computer Vision", "S1 Transactions", Decimal(5), Decimal(5))}
    assert result.totals.others["USD"].value == 19
    assert read_file(path).other_rows == 3
    done = _cli("--ledger", str(work.ledger), str(path), *MAPPED, "--fail-above", "2%")
    assert done.returncode == 0 and "apart from it: other services 19 USD" in done.stdout, done.stderr


def test_focus_in_another_currency_uses_x_billed_cost_in_usd(work: Workload, tmp_path: Path) -> None:
    path = write_focus(tmp_path / "focus.csv", bill(work.entries), currency="EUR", rate=Decimal("0.92"))
    result = run(work.ledger, path)
    assert result.costs_compared and kinds(result) == [] and result.unexplained == 0, result.why_not_costs
    read = read_file(path)
    assert read.cost_in == "x_BilledCostInUsd" and read.currency == "USD"
    without = run(work.ledger, write_focus(tmp_path / "eur.csv", bill(work.entries), currency="EUR",
                                           rate=Decimal("0.92"), usd_column=False))
    assert not without.costs_compared and "billed in EUR" in without.why_not_costs


@pytest.mark.parametrize("schema", ["ea", "mca"])
def test_a_usage_only_export_is_read_from_its_unit_of_measure(work: Workload, tmp_path: Path, schema: str) -> None:
    writer = write_ea if schema == "ea" else write_mca
    blocks = writer(tmp_path / "blocks.csv", bill(work.entries), usage_only=True, quantity="blocks")
    read = read_file(blocks)
    column = "UnitOfMeasure" if schema == "ea" else "unitOfMeasure"
    assert read.reading == "blocks" and f"no cost columns: {column} gives price blocks (1K, 1M)" in read.reading_reason
    result = run(work.ledger, blocks)
    assert kinds(result) == [] and result.unexplained == 0 and not result.costs_compared
    done = _cli("--ledger", str(work.ledger), str(blocks), *MAPPED)
    assert "Quantity read as blocks (no cost columns" in done.stdout, done.stdout
    tokens = writer(tmp_path / "tokens.csv", bill(work.entries), usage_only=True)  # a file that counts tokens
    told = _cli("--ledger", str(work.ledger), str(tokens), *MAPPED, "--quantity", "tokens", "--format", "json")
    assert '"findings": []' in told.stdout, told.stdout


def test_focus_usage_counts_consumed_tokens(work: Workload, tmp_path: Path) -> None:
    path = write_focus(tmp_path / "focus.csv", bill(work.entries))
    text = path.read_text().splitlines()
    header = text[0].split(",")
    keep = [i for i, name in enumerate(header) if name not in ("BilledCost", "x_BilledCostInUsd")]
    path.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in text) + "\n")
    read = read_file(path)
    assert read.reading == "tokens" and "ConsumedUnit counts tokens" in read.reading_reason
    assert kinds(run(work.ledger, path)) == []


# ---- deployment tags ------------------------------------------------------------------------------------------

DEPLOYMENT_OF = {"gpt-4o-mini": "gpt-4o-mini", "GPT 5": "gpt-5", "o4-mini": "o4-mini"}


def _tagged(charges: list[Charge], style: str) -> list[Charge]:
    out = []
    for c in charges:
        deployment = next((d for prefix, d in DEPLOYMENT_OF.items() if c.meter.startswith(prefix)), "")
        tags = "" if not deployment else (f'"deployment": "{deployment}","team": "search"' if style == "ea"
                                          else f'{{"Deployment": "{deployment}"}}')
        out.append(Charge(c.day, c.meter, c.quantity, c.unit, c.block, c.price, tags=tags))
    return out


@pytest.mark.parametrize("style", ["ea", "json"])
def test_deployment_tags_reconcile_per_deployment(tmp_path: Path, style: str) -> None:
    work = run_workload(tmp_path, unmetered=2)  # the unmetered calls are on gpt-4o-mini
    path = write_ea(tmp_path / "ea.csv", _tagged(bill(work.entries), style))
    result = run(work.ledger, path)
    assert {line.resource for line in result.lines} == {f"{RESOURCE}/gpt-4o-mini", f"{RESOURCE}/gpt-5",
                                                       f"{RESOURCE}/o4-mini", RESOURCE}  # embeddings: untagged
    assert kinds(result) == ["unmetered", "unmetered"], [f.text for f in result.findings]
    assert {f.resource for f in result.findings} == {f"{RESOURCE}/gpt-4o-mini"}
    coverage = {r.resource: r.coverage for r in result.rollups}
    assert coverage[f"{RESOURCE}/gpt-5"] == coverage[f"{RESOURCE}/o4-mini"] == coverage[RESOURCE] == 1
    mini = coverage[f"{RESOURCE}/gpt-4o-mini"]
    assert mini is not None and mini < 1
    done = _cli("--ledger", str(work.ledger), str(path), *MAPPED)
    assert f"{RESOURCE}/gpt-5 " in done.stdout and done.returncode == 0, done.stderr


# ---- --write-prices -------------------------------------------------------------------------------------------

def test_write_prices_round_trips_through_validate_and_reprice(tmp_path: Path) -> None:
    work = run_workload(tmp_path)
    charges = bill(work.entries, price_of=lambda m, p: p * Decimal("0.85") if m.startswith("GPT 5") else p)
    path = write_ea(tmp_path / "ea.csv", charges)
    table = tmp_path / "negotiated.toml"
    done = _cli("--ledger", str(work.ledger), str(path), *MAPPED, "--write-prices", str(table))
    assert done.returncode == 0 and f"wrote 1 price entry to {table}" in done.stderr, done.stderr
    assert "meter --tables" not in done.stdout and "meter reprice --tables FILE" in done.stdout
    text = table.read_text()
    assert text.count("[table]") == 1 and text.count("[[price]]") == 1 and 'input = "1.0625"' in text
    valid = _meter("pricing", "validate", str(table))
    assert valid.returncode == 0 and "ok" in valid.stdout, valid.stdout + valid.stderr
    dry = _meter("reprice", "--ledger", str(work.ledger), "--tables", str(table))
    assert dry.returncode == 0 and "would change" in dry.stdout and "+reconciled-" in dry.stdout, dry.stdout
    applied = _meter("reprice", "--ledger", str(work.ledger), "--tables", str(table), "--apply")
    assert applied.returncode == 0, applied.stderr
    after = _cli("--ledger", str(work.ledger), str(path), *MAPPED, "--format", "json", "--fail-above", "0.1%")
    assert after.returncode == 0 and '"findings": []' in after.stdout, after.stdout  # they now agree
    clean = _cli("--ledger", str(work.ledger), str(path), *MAPPED, "--write-prices", str(tmp_path / "none.toml"))
    assert "not written" in clean.stderr and not (tmp_path / "none.toml").exists()


def test_price_entries_for_one_key_are_merged_and_a_disagreement_named() -> None:
    from meter.reconcile.explain import Finding, PriceEntry
    from meter.reconcile.prices import price_table

    def finding(resource: str, day: int, prices: dict[str, str]) -> Finding:
        entry = PriceEntry("gpt-5", "GlobalStandard", "", date(2026, 11, day),
                           {k: Decimal(v) for k, v in prices.items()})
        return Finding("price", resource, "gpt-5", "", [], Decimal(0), None, "", {}, entry)

    text, entries, notes = price_table([finding("a", 3, {"input": "1.0625"}),
                                        finding("b", 1, {"input": "1.1", "output": "8.5"})], ["x.csv"],
                                       date(2026, 12, 1))
    assert entries == 1 and text.count("[[price]]") == 1 and "effective_from = 2026-11-01" in text
    assert 'input = "1.0625"' in text and 'output = "8.5"' in text and 'input = "1.1"' not in text
    assert len(notes) == 1 and "b was billed 1.1" in notes[0] and f"# {notes[0]}" in text


def test_a_folder_stands_for_the_export_files_in_it(work: Workload, tmp_path: Path) -> None:
    (tmp_path / "exports" / "run-1").mkdir(parents=True)
    write_ea(tmp_path / "exports" / "run-1" / "part_0.csv", bill(work.entries))
    done = _cli("--ledger", str(work.ledger), str(tmp_path / "exports"), *MAPPED, "--fail-above", "2%")
    assert done.returncode == 0 and "part_0.csv: EA cost details" in done.stdout, done.stderr
    (tmp_path / "empty").mkdir()
    empty = _cli("--ledger", str(work.ledger), str(tmp_path / "empty"))
    assert empty.returncode == 1 and "no export files" in empty.stderr and empty.stderr.count("\n") == 1
