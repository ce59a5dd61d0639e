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
from datetime import date
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
        e = expected[(team or "", deployment or "unknown")]  # a call to a path without a deployment: "unknown"
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


@pytest.mark.parametrize(("args", "said", "code"), [
    (["--ledger", "/no/such/ledger.sqlite"], "error: ledger /no/such/ledger.sqlite: does not exist", 1),
    (["--by", "x-y"], "error: cannot group or filter by 'x-y'", 2),  # a usage error, as argparse's: exit 2
    (["--where", "x-y=1"], "error: cannot group or filter by 'x-y'", 2),
    (["--by", "teams"], "error: cannot group or filter by 'teams'", 2),  # a typo of team: no call has it
    (["--where", "teams=search"], "error: cannot group or filter by 'teams'", 2),
    (["--plot", "out.png"], "error: --plot needs --period", 1),
])
def test_bad_input_gets_one_line(demo: tuple[Path, dict[str, object]], args: list[str], said: str,
                                 code: int) -> None:
    ledger, _ = demo
    full = ["report", "--ledger", str(ledger), *args] if args[0] != "--ledger" else ["report", *args]
    done = _meter(*full)
    assert done.returncode == code and done.stderr.startswith(said) and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == "", done.stderr


def test_an_unknown_key_is_an_error_that_names_the_keys_there_are(demo: tuple[Path, dict[str, object]]) -> None:
    """``--by teams`` used to put every call in one group with an empty value; the keys are the columns and
    the attribution keys the ledger's calls carry (or it indexes: ``Meter(label_keys=...)``)."""
    from meter.ledger.report import COLUMNS, UnknownKey

    ledger, _ = demo
    done = _meter("report", "--ledger", str(ledger), "--by", "teams")
    assert done.returncode == 2, done.stderr
    said = done.stderr.strip()
    assert "no call in this ledger has that attribution key" in said, said
    assert said.endswith("or an attribution key of this ledger (feature, team)"), said  # the demo tags both
    assert all(column in said for column in COLUMNS)
    with pytest.raises(UnknownKey, match="'teams'"):
        report(ledger, ("deployment", "teams"))
    with pytest.raises(UnknownKey, match="'teams'"):
        report(ledger, (), where={"teams": "search"})
    # what the README documents keeps working: a known key, and a known key with a value no call has
    assert {r.group[0] for r in report(ledger, ("team",))} == {"ads", "research", "search"}
    assert report(ledger, (), where={"team": "nobody"}) == []
    assert report(ledger, ("team",), since=date(2100, 1, 1)) == []  # nothing in range: nothing to mislead


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


@pytest.fixture(scope="module")
def unpriced_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three gpt-4o calls (3.5 USD each) and one call of a model no table prices, all of team search;
    ``feature`` is allow-listed (``label_keys``) and never tagged."""
    from prometheus_client import CollectorRegistry

    import meter

    def azure(request: httpx2.Request) -> httpx2.Response:
        model = "mystery-model-1" if b"mystery" in request.url.path.encode() else "gpt-4o-2024-11-20"
        return httpx2.Response(200, json={"id": "c", "object": "chat.completion", "model": model, "choices": [],
                                          "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 100_000,
                                                    "total_tokens": 1_100_000}})

    path = tmp_path_factory.mktemp("unpriced") / "meter.sqlite"
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=path, label_keys=("team", "feature"))
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with meter.attribute(team="search"):
        for deployment in ("gpt-4o", "gpt-4o", "gpt-4o", "mystery"):
            client.post(f"https://x.openai.azure.com/openai/deployments/{deployment}/chat/completions"
                        "?api-version=2024-10-21", json={"messages": []})
    assert m.close()
    return path


def _cells(table: str) -> dict[str, list[str]]:
    """A report table's rows by their first cell, split on the two spaces between columns."""
    import re

    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in table.splitlines()[1:])}


def test_unpriced_calls_are_counted_in_the_table_never_shown_as_zero(unpriced_ledger: Path) -> None:
    """The README promises unknown is never $0: a group's cost says how many calls it leaves out."""
    by_deployment = _meter("report", "--ledger", str(unpriced_ledger), "--by", "deployment")
    assert by_deployment.returncode == 0, by_deployment.stderr
    rows = _cells(by_deployment.stdout)
    assert rows["gpt-4o"][7] == "10.5"  # 3 x (1M input at 2.5 + 100k output at 10 per 1M)
    assert rows["mystery"][7] == "unknown (1 unpriced)"
    (team,) = _cells(_meter("report", "--ledger", str(unpriced_ledger), "--by", "team").stdout).values()
    assert team[:2] == ["search", "4"] and team[7] == "10.5 + 1 unpriced"  # a total never hides a call
    # CSV and JSON keep the exact fields apart, as numbers
    (row,) = csv.DictReader(io.StringIO(_meter("report", "--ledger", str(unpriced_ledger), "--by", "team",
                                               "--format", "csv").stdout))
    assert (row["cost_usd"], row["unpriced"]) == ("10.5", "1")


def test_an_allow_listed_key_is_known_before_any_call_carries_it(unpriced_ledger: Path) -> None:
    (row,) = report(unpriced_ledger, ("feature",))
    assert (row.group, row.calls) == (("",), 4)
    done = _meter("report", "--ledger", str(unpriced_ledger), "--by", "features")
    assert done.returncode == 2 and "attribution key of this ledger (feature, team)" in done.stderr, done.stderr


def test_the_keys_of_a_ledger_on_either_backend(ledger_url: str) -> None:
    """The keys a ledger knows are read the same from SQLite and PostgreSQL: carried by a call, or indexed."""
    from prometheus_client import CollectorRegistry

    import meter
    from meter.ledger.report import UnknownKey

    def azure(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"id": "c", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
                                          "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 2,
                                                                   "total_tokens": 12}})

    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=ledger_url, label_keys=("feature",))
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with meter.attribute(team="search", cost_centre="4711"):
        client.post("https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                    json={"messages": []})
    assert m.close()
    assert [r.group for r in report(ledger_url, ("team", "feature"))] == [("search", "")]
    with pytest.raises(UnknownKey) as raised:
        report(ledger_url, ("teams",))
    assert raised.value.keys == ("cost_centre", "feature", "team")
    assert str(raised.value).endswith("or an attribution key of this ledger (cost_centre, feature, team)")
    with pytest.raises(UnknownKey, match="'x-y': not a column, and not a key name;"):
        report(ledger_url, ("x-y",))


def test_money_for_people_is_exact_and_never_hides_an_unpriced_call() -> None:
    from meter.textout import money, money_total

    assert money(Decimal("4.4E-7")) == "0.00000044"  # an embeddings call: every significant digit, no 0.000000
    assert money(Decimal("0.000000440000000000")) == "0.00000044" and money(Decimal("1E+1")) == "10"
    assert (money(Decimal(0)), money(None)) == ("0", "unknown")
    assert money_total(Decimal("12.340"), 0) == "12.34"
    assert money_total(Decimal("12.34"), 2) == "12.34 + 2 unpriced"
    assert money_total(Decimal(0), 2) == "unknown (2 unpriced)"  # unknown is never shown as 0
