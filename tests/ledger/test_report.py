"""``meter report``: groups computed in SQL equal the records, to the exact cent (and beyond).

The ledger is written by the real demo (``meter demo --ledger``: the openai SDK against the
emulator, many deployments, teams, errors, streams), then the report is compared with the
demo's own ``--json`` totals and with sums computed in Python from the ledger's rows.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from meter import names
from meter.ledger.report import report
from tests.support.processes import read_json

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """The demo's ledger and its ``--json`` summary, plus its ``/metrics`` text scraped while it serves."""
    ledger = tmp_path_factory.mktemp("ledger") / "demo.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "meter", "demo", "--requests", "40", "--json", "--serve",
                             "--metrics-port", "0", "--ledger", str(ledger)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        summary = read_json(proc, timeout=120)
        summary["metrics_text"] = httpx2.get(str(summary["metrics_url"]), timeout=10).text
    finally:
        proc.terminate()
        proc.wait(30)
    return ledger, summary


def _meter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meter", *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_the_report_totals_equal_the_demo(demo: tuple[Path, dict[str, object]]) -> None:
    ledger, summary = demo
    totals: dict[str, object] = summary["totals"]  # type: ignore[assignment]
    (row,) = report(ledger, ())
    assert row.calls == totals["requests"]
    assert row.cost_usd == Decimal(str(totals["cost_usd"]))  # exact only: estimates are kept apart
    assert row.estimated_cost_usd == Decimal(str(totals["estimated_cost_usd"]))
    assert row.tokens["input_tokens"] >= int(totals["input_tokens"])  # type: ignore[call-overload]
    teams: dict[str, dict[str, str]] = summary["teams"]  # type: ignore[assignment]
    by_team = {r.group[0]: r for r in report(ledger, ("team",))}
    for team, tally in teams.items():
        assert by_team[team].calls == tally["requests"]
        assert by_team[team].cost_usd == Decimal(tally["cost_usd"])
        assert by_team[team].estimated_cost_usd == Decimal(tally["estimated_cost_usd"])


def test_the_report_totals_equal_the_demo_s_metrics(demo: tuple[Path, dict[str, object]]) -> None:
    ledger, summary = demo
    sums: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(str(summary["metrics_text"])):
        for sample in family.samples:
            sums[sample.name] += sample.value
    (row,) = report(ledger, ())
    assert sums[names.requests_total(names.DEFAULT_NAMESPACE)] == row.calls
    assert sums[names.cost_usd_total(names.DEFAULT_NAMESPACE)] == pytest.approx(float(row.cost_usd), rel=1e-9)
    assert sums[names.estimated_cost_usd_total(names.DEFAULT_NAMESPACE)] == pytest.approx(
        float(row.estimated_cost_usd), rel=1e-9)
    assert sums[names.output_tokens_total(names.DEFAULT_NAMESPACE)] == row.tokens["output_tokens"]
    assert sums[names.estimated_output_tokens_total(names.DEFAULT_NAMESPACE)] == row.tokens["estimated_output_tokens"]
    assert row.tokens["estimated_output_tokens"] > 0  # the demo has an estimated call: it is counted apart
    by_deployment = {r.group[0]: r for r in report(ledger, ("deployment",))}
    assert set(by_deployment) >= set(summary["deployments"])  # type: ignore[arg-type]


def test_groups_equal_sums_over_the_rows(demo: tuple[Path, dict[str, object]]) -> None:
    import sqlite3

    ledger, _ = demo
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT json_extract(c.attributes, '$.team'), c.deployment, c.outcome, "
                          "CASE WHEN c.usage_source = 'estimated' THEN 0 ELSE c.output_tokens END, "
                          "k.total, k.estimated FROM calls c LEFT JOIN costs k ON k.call_id = c.id").fetchall()
    expected: dict[tuple[str, str], list[object]] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for team, deployment, outcome, output, total, estimated in rows:
        e = expected[(team or "", deployment or "")]
        e[0] += 1  # type: ignore[operator]
        e[1] += outcome != "ok"  # type: ignore[operator]
        e[2] += output or 0  # type: ignore[operator]
        e[3] += Decimal(total) if total is not None and not estimated else 0  # type: ignore[operator]
    got = {r.group: [r.calls, r.errors, r.tokens["output_tokens"], r.cost_usd]
           for r in report(ledger, ("team", "deployment"))}
    assert got == {k: v for k, v in expected.items()}
    assert len(got) >= 5


def test_periods_and_percentiles(demo: tuple[Path, dict[str, object]]) -> None:
    ledger, _ = demo
    for period in ("hour", "day", "week", "month"):
        rows = report(ledger, ("deployment", period))
        assert rows and all(r.p50_s is not None and r.p95_s is not None and r.p50_s <= r.p95_s for r in rows)
    (day,) = {r.group[1] for r in report(ledger, ("deployment", "day"))}
    (week,) = {r.group[0] for r in report(ledger, ("week",))}
    from datetime import date

    monday = date.fromisoformat(day)
    assert date.fromisoformat(week) == date.fromordinal(monday.toordinal() - monday.weekday())
    assert report(ledger, (), since=date(2100, 1, 1)) == []


def test_the_command_writes_table_csv_and_json(demo: tuple[Path, dict[str, object]]) -> None:
    ledger, _ = demo
    table = _meter("report", "--ledger", str(ledger), "--by", "team,deployment", "--period", "day")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == ["team", "deployment", "day"]
    as_csv = list(csv.DictReader(io.StringIO(_meter("report", "--ledger", str(ledger), "--by", "team",
                                                    "--format", "csv").stdout)))
    as_json = json.loads(_meter("report", "--ledger", str(ledger), "--by", "team", "--format", "json").stdout)
    assert [r["cost_usd"] for r in as_csv] == [r["cost_usd"] for r in as_json]
    assert sum(Decimal(r["cost_usd"]) for r in as_json) == report(ledger, ())[0].cost_usd
    team = as_json[-1]["team"]
    narrowed = json.loads(_meter("report", "--ledger", str(ledger), "--where", f"team={team}", "--by", "deployment",
                                 "--format", "json").stdout)
    assert sum(r["calls"] for r in narrowed) == as_json[-1]["calls"]


@pytest.mark.parametrize(("args", "said"), [
    (["--ledger", "/no/such/ledger.sqlite"], "error: ledger /no/such/ledger.sqlite: does not exist"),
    (["--by", "x-y"], "error: cannot group or filter by 'x-y'"),
    (["--where", "x-y=1"], "error: cannot group or filter by 'x-y'"),
    (["--plot", "out.png"], "error: --plot needs --period"),
])
def test_bad_input_gets_one_line(demo: tuple[Path, dict[str, object]], args: list[str], said: str) -> None:
    ledger, _ = demo
    full = ["report", "--ledger", str(ledger), *args] if args[0] != "--ledger" else ["report", *args]
    done = _meter(*full)
    assert done.returncode == 1 and done.stderr.startswith(said) and "Traceback" not in done.stderr, done.stderr


def test_plot_draws_spend_per_period(demo: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    ledger, _ = demo
    out = tmp_path / "spend.png"
    done = _meter("report", "--ledger", str(ledger), "--by", "team", "--period", "hour", "--plot", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_a_group_value_never_starts_a_spreadsheet_formula(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    import meter
    from tests.ledger.test_sqlite_ledger import URL, client

    path = tmp_path / "l.sqlite"
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=path)
    with meter.attribute(team="=HYPERLINK(\"http://x\")"):
        client(m).post(URL, json={"messages": []})
    assert m.close()
    out = _meter("report", "--ledger", str(path), "--by", "team", "--format", "csv").stdout
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["team"] == "'=HYPERLINK(\"http://x\")"
