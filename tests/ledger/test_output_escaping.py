"""Human-readable output shows data's control characters, never runs them: no terminal escape, no forged row.

A team name is whatever the caller passed to ``meter.attribute``; a meter name, a currency or a
resource comes from a cost export; a model id, a table version or a source from a price table;
a ledger's path from the command line. Written raw to a terminal, ``ESC [2J`` clears it, ``ESC ]``
sets its title, BEL rings, CR overwrites, U+202E reverses what follows, and a newline forges a
row of the table. Every table and line a person reads shows them as escapes (``\\x1b``, ``\\n``,
``\\u202e``); the data formats are exact (CSV quotes, JSON is ASCII with escapes). The ledger
here is written through the public API (a Meter with a ledger, calls through a mock transport)
and each command runs as a user runs it, in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from prometheus_client import CollectorRegistry

import meter
from meter.apps.demo.report import Summary

REPO = Path(__file__).resolve().parents[2]
URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
TEAMS = (
    "search",
    "red\x1b[31mteam\x1b[0m",
    "title\x1b]0;pwned\x07",
    "bell\x07",
    "evil\nforged  99  0  1  2  3  4  5.00  0  -  -",
    "over\rwrite",
    "bidi\u202egnp.exe",
    "isolate\u2067x\u2069",
    "csi\x9b2J",
    "para\u2029graph",
    "tab\there",
    "del\x7f",
)
HOSTILE_MODEL = "evil-model\x1b[31m"
TABLE = """[table]
version = "contoso\\u001b[2J\\u0007"
published = 2026-12-01

[[model]]
id = "evil-model\\u001b[31m"

[[price]]
model = "evil-model\\u001b[31m"
deployment_type = "GlobalStandard"
effective_from = 2024-01-01
input = "1"
output = "2"
source = "agreement\\nforged line\\u202e"
note = "bell\\u0007"
"""


def azure(request: httpx2.Request) -> httpx2.Response:
    model = HOSTILE_MODEL if b"evil" in request.url.path.encode() else "gpt-4o-2024-11-20"
    return httpx2.Response(200, json={
        "id": "c", "object": "chat.completion", "model": model, "choices": [],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 180, "total_tokens": 1380}})


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[meter.CallRecord]]:
    """One call per hostile team, and one to a deployment whose service answers with a hostile model."""
    path = tmp_path_factory.mktemp("escaping") / "meter.sqlite"
    records: list[meter.CallRecord] = []
    m = meter.Meter(ledger=path, label_keys=("team",), otel=False, prometheus=False, on_record=records.append,
                    registry=CollectorRegistry())
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    for team in TEAMS:
        with meter.attribute(team=team):
            client.post(URL, json={"messages": []})
    with meter.attribute(team="search"):
        client.post(URL.replace("gpt-4o", "evil"), json={"messages": []})
    assert m.close()
    return path, records


def _meter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meter", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, encoding="utf-8", errors="strict")


def _visible_lines(text: str) -> list[str]:
    """The lines of ``text``: each printable (no control, format, separator or surrogate character)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        assert line.isprintable(), repr(line)
    return lines


def test_report_table_escapes_tags_one_row_per_group(ledger: tuple[Path, list[meter.CallRecord]]) -> None:
    path, _ = ledger
    done = _meter("report", "--ledger", str(path), "--by", "team")
    assert done.returncode == 0, done.stderr
    lines = _visible_lines(done.stdout)
    assert len(lines) == 1 + len(TEAMS), done.stdout  # the header and one row per team: nothing forged
    shown = {line.split("  ")[0] for line in lines[1:]}
    assert {"red\\x1b[31mteam\\x1b[0m", "title\\x1b]0;pwned\\x07", "bell\\x07", "over\\rwrite", "bidi\\u202egnp.exe",
            "isolate\\u2067x\\u2069", "csi\\x9b2J", "para\\u2029graph", "tab\\there", "del\\x7f"} <= shown, shown
    assert any(line.startswith("evil\\nforged  99") for line in lines), done.stdout


def test_report_json_stays_exact_and_ascii(ledger: tuple[Path, list[meter.CallRecord]]) -> None:
    path, _ = ledger
    done = _meter("report", "--ledger", str(path), "--by", "team", "--format", "json")
    assert done.returncode == 0 and done.stdout.isascii(), done.stderr
    assert {row["team"] for row in json.loads(done.stdout)} == set(TEAMS)


def test_reprice_escapes_models_and_the_table_version(ledger: tuple[Path, list[meter.CallRecord]],
                                                      tmp_path: Path) -> None:
    path, _ = ledger
    table = tmp_path / "hostile.toml"
    table.write_text(TABLE)
    done = _meter("reprice", "--ledger", str(path), "--tables", str(table))
    assert done.returncode == 0, done.stderr
    lines = _visible_lines(done.stdout)
    assert len(lines) == 4, done.stdout  # header, the model newly priced, the summary, "dry run"
    assert lines[1].startswith("evil-model\\x1b[31m  GlobalStandard"), done.stdout
    assert "contoso\\x1b[2J\\x07" in lines[2], done.stdout


def test_ledger_tools_show_a_hostile_path_visibly(ledger: tuple[Path, list[meter.CallRecord]],
                                                  tmp_path: Path) -> None:
    folder = tmp_path / "dir\x1b[2J\nforged\u202e"
    folder.mkdir()
    path = folder / "meter.sqlite"
    path.write_bytes(ledger[0].read_bytes())
    for args in (("ledger", "migrate"), ("ledger", "prune", "--before", "2000-01-01")):
        done = _meter(*args, "--ledger", str(path))
        assert done.returncode == 0, done.stderr
        assert len(_visible_lines(done.stdout)) == 1 and "dir\\x1b[2J\\nforged\\u202e" in done.stdout, done.stdout
    info = _meter("ledger", "info", "--ledger", str(path))
    assert info.returncode == 0 and info.stdout.isascii() and json.loads(info.stdout)["calls"] == len(TEAMS) + 1
    commands: list[tuple[str, ...]] = [("report",), ("reprice",), ("ledger", "info"),
                                       ("ledger", "prune", "--before", "2000-01-01")]
    for command in commands:
        missing = _meter(*command, "--ledger", str(folder / "absent\x07.sqlite"))
        assert missing.returncode == 1 and missing.stderr.startswith("error: "), missing.stderr
        assert len(_visible_lines(missing.stderr)) == 1 and "absent\\x07.sqlite" in missing.stderr, missing.stderr


def test_reconcile_table_escapes_names_from_an_export(ledger: tuple[Path, list[meter.CallRecord]],
                                                      tmp_path: Path) -> None:
    export = tmp_path / "bill.csv"
    export.write_text(
        "Date,MeterName,ResourceId,Quantity,MeterCategory,UnitOfMeasure,CostInBillingCurrency,BillingCurrencyCode\n"
        '11/01/2026,"gpt 9 \x1b[2Jultra\nforged\u202e Tokens",/s/x/accounts/evil\x1b[2J,10,Cognitive Services,1K,'
        "0.1,us\x1b]0;x\x07d\n", encoding="utf-8")
    resource = ("--resource", "x.openai.azure.com=/s/x/accounts/evil\x1b[2J")  # the hostile resource id matched
    done = _meter("reconcile", "--ledger", str(ledger[0]), str(export), *resource)
    assert done.returncode == 0, done.stderr
    lines = _visible_lines(done.stdout)
    assert "'gpt 9 \\x1b[2Jultra\\nforged\\u202e Tokens'" in done.stdout, done.stdout
    assert "US\\x1b]0;X\\x07D" in done.stdout, done.stdout
    findings = json.loads(_meter("reconcile", "--ledger", str(ledger[0]), str(export), *resource,
                                 "--format", "json").stdout)
    assert sum(line.startswith("* ") for line in lines) == len(findings["findings"]), done.stdout  # none forged
    folder = tmp_path / "in\x1b[2J\nforged"
    folder.mkdir()
    (folder / "bad.csv").write_text("name,age\n")
    bad = _meter("reconcile", "--ledger", str(ledger[0]), str(folder / "bad.csv"))
    assert bad.returncode == 1 and len(_visible_lines(bad.stderr)) == 1, bad.stderr
    assert "in\\x1b[2J\\nforged" in bad.stderr


def test_the_demo_table_escapes_teams(ledger: tuple[Path, list[meter.CallRecord]]) -> None:
    _, records = ledger
    summary = Summary.of(records, "team")
    lines = _visible_lines(summary.table())
    unpriced = 1  # the hostile model is unknown to the built-in tables: its line says so
    sections = 2 + len(summary.kinds) + len(summary.tiers)  # "per kind of call", "per service tier" and their rows
    assert len(lines) == 7 + unpriced + len(summary.deployments) + len(summary.teams) + sections, summary.table()
    assert "  evil\\nforged  99" in summary.table()


def test_pricing_listings_escape_what_a_table_says(tmp_path: Path) -> None:
    table = tmp_path / "hostile.toml"
    table.write_text(TABLE)
    for args, count in ((("pricing", "list", "--model", "evil"), 5),
                        (("pricing", "show", HOSTILE_MODEL), 6),
                        (("pricing", "diff", "--at", "2023-01-01", "--at", "2025-01-01"), None),
                        (("price", HOSTILE_MODEL, "--input", "1000"), None)):
        done = _meter(*args, "--table", str(table))
        assert done.returncode == 0, done.stderr
        lines = _visible_lines(done.stdout)
        assert count is None or len(lines) == count, done.stdout
        assert "\\x1b[31m" in done.stdout and "contoso\\x1b[2J\\x07" in done.stdout, done.stdout
    shown = _meter("pricing", "show", HOSTILE_MODEL, "--table", str(table)).stdout
    assert "  source: agreement\\nforged line\\u202e" in shown and "  note: bell\\x07" in shown, shown


def test_pricing_check_shows_a_hostile_file_name_visibly(tmp_path: Path) -> None:
    retail = tmp_path / "answer\x1b[2J\nforged.json"
    retail.write_bytes((REPO / "tests" / "fixtures" / "azure-retail" / "reconcile-sample.json").read_bytes())
    done = _meter("pricing", "check", str(retail))
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    lines = _visible_lines(done.stdout)
    assert lines[0].startswith("Retail data: ") and "answer\\x1b[2J\\nforged.json" in lines[0], done.stdout
