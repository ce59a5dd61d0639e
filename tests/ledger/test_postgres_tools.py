"""``meter report``, ``reprice`` and ``ledger`` on PostgreSQL give what they give on SQLite, for the same calls.

The calls are the demo's (teams, deployments, errors, an estimated call, an unknown model),
spread over three months with one call at 23:59:59.999999 UTC on a month's last day, and
written through each backend's own store into a SQLite file and a real PostgreSQL database.
Every grouping, period, filter and re-pricing must agree exactly, money to the last digit
and percentiles to the bit. The demo run straight to PostgreSQL is the user's path.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from meter.ledger import LedgerError
from meter.ledger.admin import info, prune
from meter.ledger.postgres import PostgresLedger
from meter.ledger.report import UnknownKey, report
from meter.ledger.reprice import reprice
from meter.ledger.schema import CALL_COLUMNS, COST_COLUMNS
from meter.ledger.sqlite import SQLiteLedger
from meter.pricing import PriceBook
from tests.support.postgres import PostgresServer
from tests.support.processes import read_json

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 9, 20, 8, tzinfo=UTC)


def _meter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meter", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


@pytest.fixture(scope="module")
def demo_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The demo's call and cost rows, each call moved to its own time over three months."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    done = _meter("demo", "--requests", "40", "--json", "--ledger", str(path))
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(path) as db:
        calls = db.execute(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls ORDER BY id").fetchall()
        costs = db.execute(f"SELECT {', '.join(COST_COLUMNS)} FROM costs").fetchall()
    moved = []
    for i, row in enumerate(calls):
        at = START + timedelta(hours=53 * i, seconds=i)
        if i == 7:
            at = datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC)
        moved.append((row[0], at.isoformat(), *row[2:]))
    return moved, costs


@pytest.fixture
def both(demo_rows: tuple[list[tuple[object, ...]], list[tuple[object, ...]]], tmp_path: Path,
         pg_database: str) -> tuple[Path, str]:
    calls, costs = demo_rows
    path = tmp_path / "ledger.sqlite"
    for store in (SQLiteLedger(path), PostgresLedger(pg_database, "test")):
        store.write(calls, costs)
        store.close()
    return path, pg_database


TABLE = """[table]
version = "contoso-2026-12"
published = 2026-12-01

[[price]]
model = "gpt-5"
deployment_type = "GlobalStandard"
effective_from = 2024-01-01
input = "1"
output = "9"
cached_input = "0.1"
source = "Contoso agreement, 2026-12"
"""
"""A negotiated price for the demo's gpt-5 calls: they change, the other models' do not."""

GROUPINGS = [(), ("team",), ("deployment",), ("model",), ("deployment_type",), ("api",), ("outcome",),
             ("provider",), ("region",), ("team", "deployment", "day"), ("deployment", "hour"), ("week",),
             ("month",), ("team", "month")]


def test_every_report_is_the_same_on_both(both: tuple[Path, str]) -> None:
    sqlite_path, url = both
    for by in GROUPINGS:
        assert report(url, by) == report(sqlite_path, by), by
    months = {row.group[0] for row in report(url, ("month",))}
    assert months == {"2026-09", "2026-10", "2026-11", "2026-12"} & months and len(months) >= 3
    for since, until in ((date(2026, 10, 1), date(2026, 11, 1)), (None, date(2026, 10, 31)),
                         (date(2026, 11, 1), None)):
        for by in (("team",), ("day",)):
            assert report(url, by, since, until) == report(sqlite_path, by, since, until), (by, since, until)
    assert report(url, ("team",), as_reported=True) == report(sqlite_path, ("team",), as_reported=True)
    errors = []
    for ledger in (url, sqlite_path):  # a key no call carries is the same error on both
        with pytest.raises(UnknownKey) as raised:
            report(ledger, ("project",))
        errors.append(str(raised.value))
    assert errors[0] == errors[1]


def test_the_last_microsecond_of_a_month_is_in_that_month(both: tuple[Path, str]) -> None:
    sqlite_path, url = both
    for ledger in (sqlite_path, url):
        october = report(ledger, ("day",), date(2026, 10, 31), date(2026, 11, 1))
        assert "2026-10-31" in {row.group[0] for row in october}
        assert report(ledger, ("hour",), date(2026, 10, 31), date(2026, 11, 1))[-1].group == ("2026-10-31T23:00",)


def test_a_filter_narrows_to_one_team(both: tuple[Path, str]) -> None:
    sqlite_path, url = both
    teams = {row.group[0]: row for row in report(url, ("team",))}
    team = next(name for name in teams if name)
    for ledger in (sqlite_path, url):
        (row,) = report(ledger, (), where={"team": team})
        assert (row.calls, row.cost_usd) == (teams[team].calls, teams[team].cost_usd)
        assert report(ledger, ("deployment",), where={"team": team}) == report(
            sqlite_path, ("deployment",), where={"team": team})
        assert report(ledger, (), where={"team": "nobody"}) == []


def test_reprice_and_apply_agree(both: tuple[Path, str], tmp_path: Path) -> None:
    sqlite_path, url = both
    table = tmp_path / "contoso.toml"
    table.write_text(TABLE)
    book = PriceBook.load(table)
    dry = {name: reprice(ledger, book) for name, ledger in (("sqlite", sqlite_path), ("pg", url))}
    assert dry["pg"].changes == dry["sqlite"].changes and dry["pg"].changed > 0
    assert {key[0] for key in dry["pg"].changes} == {"gpt-5"}
    assert report(url, ()) == report(sqlite_path, ())  # the dry run wrote nothing
    applied = {name: reprice(ledger, book, apply=True) for name, ledger in (("sqlite", sqlite_path), ("pg", url))}
    assert applied["pg"].applied == applied["sqlite"].applied == dry["pg"].changed
    for by in (("model",), ("team", "day")):
        assert report(url, by) == report(sqlite_path, by)
        assert report(url, by, as_reported=True) == report(sqlite_path, by, as_reported=True)
    assert report(url, ())[0].cost_usd != report(url, (), as_reported=True)[0].cost_usd
    assert reprice(url, book, apply=True).applied == 0  # idempotent
    assert info(url)["repriced_calls"] == info(sqlite_path)["repriced_calls"] == dry["pg"].changed


def test_prune_drops_whole_months_and_deletes_only_in_the_month_it_cuts(both: tuple[Path, str]) -> None:
    sqlite_path, url = both
    before = info(url)
    assert before["calls"] == info(sqlite_path)["calls"] and before["backend"] == "postgresql"
    assert {"2026-09", "2026-10"} <= set(before["partitions"])
    cut = date(2026, 10, 15)
    removed = prune(url, cut)
    assert removed == prune(sqlite_path, cut) > 0
    after = info(url)
    assert "2026-09" not in after["partitions"] and "2026-10" in after["partitions"]
    assert after["calls"] == before["calls"] - removed == info(sqlite_path)["calls"]
    assert str(after["first_call"]) >= "2026-10-15"
    with psycopg.connect(url) as db:
        orphans = db.execute("SELECT count(*) FROM costs WHERE call_started_at < '2026-10-15'").fetchone()
    assert orphans == (0,)
    assert report(url, ("team", "day")) == report(sqlite_path, ("team", "day"))


def test_attribution_keys_are_indexed_and_the_filter_uses_the_index(tmp_path: Path, pg_database: str) -> None:
    from prometheus_client import CollectorRegistry

    import meter
    from meter.ledger.dialect import POSTGRES, SQLITE
    from meter.ledger.report import _sql, value_expression

    path = tmp_path / "l.sqlite"
    from tests.ledger.test_sqlite_ledger import URL, client

    for where in (path, pg_database):  # one call each: PostgreSQL then has a partition for the plan to read
        m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=where, label_keys=("team", "feature"))
        with meter.attribute(team="search"):
            client(m).post(URL, json={"messages": []})
        assert m.close()
    sql = _sql(SQLITE, [], [f"{value_expression(SQLITE, 'team')} = ?"], "current")
    with sqlite3.connect(path) as db:
        plan = " ".join(str(row[-1]) for row in db.execute("EXPLAIN QUERY PLAN " + sql, ("search",)))
    assert "USING INDEX calls_attr_team" in plan, plan
    sql = _sql(POSTGRES, [], [f"{value_expression(POSTGRES, 'team')} = %s"], "current")
    with psycopg.connect(pg_database, autocommit=True) as db:
        names = {row[0] for row in db.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'calls'")}
        assert {"calls_attr_team", "calls_attr_feature"} <= names
        db.execute("SET enable_seqscan = off")
        plan = " ".join(row[0] for row in db.execute("EXPLAIN " + sql, ("search",)))
    assert "Index Cond: ((attributes ->> 'team'::text) = 'search'::text)" in plan, plan  # the partitions' copy


def test_the_demo_writes_to_postgresql_and_its_report_equals_its_table(pg_database: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "meter", "demo", "--requests", "40", "--json",
                             "--ledger", pg_database], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO)
    summary = read_json(proc, timeout=120)
    assert proc.wait(60) == 0
    totals = summary["totals"]
    done = _meter("report", "--ledger", pg_database, "--by", "team", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert sum(row["calls"] for row in rows) == totals["requests"]
    assert sum(Decimal(row["cost_usd"]) for row in rows) == Decimal(str(totals["cost_usd"]))
    assert sum(Decimal(row["estimated_cost_usd"]) for row in rows) == Decimal(str(totals["estimated_cost_usd"]))
    for team, tally in summary["teams"].items():
        (row,) = [r for r in rows if r["team"] == team]
        assert (row["calls"], Decimal(row["cost_usd"])) == (tally["requests"], Decimal(tally["cost_usd"]))
    shown = _meter("ledger", "info", "--ledger", pg_database)
    assert shown.returncode == 0 and json.loads(shown.stdout)["calls"] == totals["requests"], shown.stderr


def test_the_tools_refuse_what_is_not_a_ledger_with_one_line(pg: PostgresServer, pg_database: str) -> None:
    from tests.support.prometheus import free_port

    wrong = f"postgresql://meter:s3cret@127.0.0.1:{free_port()}/postgres"
    for args in (["report", "--ledger", wrong], ["reprice", "--ledger", wrong], ["ledger", "info", "--ledger", wrong],
                 ["report", "--ledger", pg_database]):  # an empty database: no meta table
        done = _meter(*args)
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and done.stderr.startswith("error: ledger "), (
            args, done.stderr)
        assert "s3cret" not in done.stderr and "Traceback" not in done.stderr
    with psycopg.connect(pg_database, autocommit=True) as db:
        db.execute("CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    with pytest.raises(LedgerError, match="schema version 99, newer"):
        report(pg_database, ())
    migrated = _meter("ledger", "migrate", "--ledger", pg.url.rsplit("/", 1)[0] + "/postgres")
    assert migrated.returncode == 0 and "schema version 1" in migrated.stdout, migrated.stderr
