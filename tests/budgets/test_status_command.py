"""``meter budgets status``: each budget's spend in its period from the ledger, from any shell (issue 24)."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest

import meter
from meter.cli import main

URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
COST = Decimal("0.0075")  # 1000 input at 2.5 USD/M + 500 output at 10 USD/M
FILE = """
[[budget]]
name = "search-day"
match = { team = "search" }
period = "day"
limit_usd = "0.02"
enforce = "hard"
alert_at = ["50%", "100%"]

[[budget]]
name = "all-month"
match = {}
period = "month"
limit_usd = "1"

[[budget]]
name = "ads-24h"
match = { team = "ads", deployment = "gpt-4o" }
period = "24h"
limit_usd = "0.5"
"""


def azure(request: httpx2.Request) -> httpx2.Response:
    if b"fail" in request.content:
        return httpx2.Response(400, json={"error": {"code": "bad", "message": "no"}})
    return httpx2.Response(200, json={
        "id": "chatcmpl-s", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}})


def _run(m: meter.Meter, team: str, n: int, content: str = "hi") -> list[int]:
    """``n`` calls one after the other, then a flush: their records and settlements come on the metering worker."""
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with meter.attribute(team=team):
        codes = [client.post(URL, json={"max_tokens": 1000, "messages": [{"role": "user", "content": content}]}
                             ).status_code for _ in range(n)]
    assert m.flush(10)
    return codes


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(FILE)
    return budgets, tmp_path / "meter.sqlite"


def _status(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(["budgets", "status", *args, "--format", "json"]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_the_spend_of_each_budget_from_the_ledger_written_with_budgets(files: tuple[Path, Path],
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    budgets, ledger = files
    m = meter.Meter(otel=False, prometheus=False, ledger=str(ledger), budgets=str(budgets))
    assert _run(m, "search", 3) == [200, 200, 429]  # the third worst case (0.0125) would pass 0.02
    assert _run(m, "search", 1, "fail") == [429]  # still refused: a hard budget stays shut
    assert _run(m, "ads", 2) == [200, 200]
    assert _run(m, "ads", 1, "fail") == [400]  # an error the service answered costs nothing
    m.close()
    got = _status(capsys, "--budgets", str(budgets), "--ledger", str(ledger))
    assert Decimal(got["search-day"]["spent_usd"]) == 2 * COST and got["search-day"]["calls"] == 2
    assert Decimal(got["all-month"]["spent_usd"]) == 4 * COST and got["all-month"]["calls"] == 5
    assert Decimal(got["ads-24h"]["spent_usd"]) == 2 * COST and got["ads-24h"]["calls"] == 3
    assert got["search-day"]["alerts_fired"] == ["50%"] and got["search-day"]["reserved_usd"] == "0"
    assert got["search-day"]["refused_calls"] == 2 and got["all-month"]["refused_calls"] == 0  # soft: never
    assert Decimal(got["search-day"]["forecast_usd"]) >= 2 * COST
    # the ledger and the Meter's own store agree
    assert m.budgets is not None
    own = {s.name: s.spent for s in m.budgets.store.status()}
    assert {name: Decimal(row["spent_usd"]) for name, row in got.items()} == own


def test_calls_written_without_budgets_are_matched_and_an_old_ledger_without_the_column_is_read(
        files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    budgets, ledger = files
    m = meter.Meter(otel=False, prometheus=False, ledger=str(ledger))  # no budgets: calls.budgets is NULL
    _run(m, "search", 2)
    _run(m, "ads", 1)
    m.close()
    got = _status(capsys, "--budgets", str(budgets), "--ledger", str(ledger))
    assert {name: Decimal(row["spent_usd"]) for name, row in got.items()} == {
        "search-day": 2 * COST, "all-month": 3 * COST, "ads-24h": COST}
    assert {row["source"] for row in got.values()} == {"calls table"}  # no shared budget tables there
    with sqlite3.connect(ledger) as db:
        db.execute("ALTER TABLE calls DROP COLUMN budgets")
    again = _status(capsys, "--budgets", str(budgets), "--ledger", str(ledger))
    assert {name: row["spent_usd"] for name, row in again.items()} == {
        name: row["spent_usd"] for name, row in got.items()}


def test_the_period_and_its_reset_at_a_given_instant(files: tuple[Path, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    budgets, ledger = files
    m = meter.Meter(otel=False, prometheus=False, ledger=str(ledger), budgets=str(budgets))
    _run(m, "search", 1)
    m.close()
    got = _status(capsys, "--budgets", str(budgets), "--ledger", str(ledger), "--at", "2099-01-31T12:00:00")
    assert got["search-day"]["spent_usd"] == "0"  # another day
    assert got["search-day"]["reset_at"] == "2099-02-01T00:00:00Z"
    assert got["all-month"]["period_start"] == "2099-01-01T00:00:00Z"


def test_without_a_ledger_the_limits_and_resets_and_the_text_form(files: tuple[Path, Path],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    budgets, _ = files
    assert main(["budgets", "status", "--budgets", str(budgets), "--at", "2026-12-07T12:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "pass --ledger" in out
    line = next(line for line in out.splitlines() if "search-day" in line)
    assert "hard" in line and "spent 0 of 0.02 USD (0%)" in line and "resets 2026-12-08T00:00:00Z" in line
    assert "refused 0 calls" in line


def test_a_bad_file_is_one_line_naming_the_budget_and_field(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "b.toml"
    bad.write_text('[[budget]]\nname = "x"\nperiod = "fortnight"\nlimit_usd = "5"\n')
    assert main(["budgets", "status", "--budgets", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "b.toml" in err and "'x'" in err and "period" in err
    assert main(["budgets", "status", "--budgets", str(tmp_path / "none.toml")]) == 1
    assert "none.toml" in capsys.readouterr().err


def test_a_postgresql_ledger_is_read_the_same_way(pg_database: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(FILE)
    m = meter.Meter(otel=False, prometheus=False, ledger=pg_database, budgets=str(budgets))
    assert _run(m, "search", 3) == [200, 200, 429]
    _run(m, "ads", 1)
    m.close()
    got = _status(capsys, "--budgets", str(budgets), "--ledger", pg_database)
    assert {name: Decimal(row["spent_usd"]) for name, row in got.items()} == {
        "search-day": 2 * COST, "all-month": 3 * COST, "ads-24h": COST}
    assert got["search-day"]["refused_calls"] == 1 and got["ads-24h"]["reset_at"] < "2100"


def test_the_shared_store_is_read_when_the_ledger_has_its_tables(ledger_url: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Every process's numbers: spent by period and rolling bucket, the calls in flight of live leases,
    refusals; the calls table is not read (it has none of these calls)."""
    from meter.budget_store import SqlSlots
    from meter.budgets import Refusal, Reservation, load_budgets
    from meter.budgets.shared import SharedBudgets

    file = tmp_path / "budgets.toml"
    file.write_text(FILE)
    budgets = load_budgets(file)
    search, month, ads = budgets
    a, b = (SharedBudgets(budgets, SqlSlots(ledger_url)) for _ in range(2))
    done = a.reserve("c1", [search, month], Decimal("0.005"))
    rolling = b.reserve("c2", [month, ads], Decimal("0.1"))
    flying = a.reserve("c3", [search, month], Decimal("0.01"))
    assert isinstance(done, Reservation) and isinstance(rolling, Reservation) and isinstance(flying, Reservation)
    assert isinstance(b.reserve("c4", [search], Decimal("0.01")), Refusal)  # a's lease holds the rest
    a.settle(done, Decimal("0.004"))
    b.settle(rolling, None)  # unknown: counted at its worst case, an estimated call
    assert a.sync() and b.sync()
    got = _status(capsys, "--budgets", str(file), "--ledger", ledger_url)
    assert {row["source"] for row in got.values()} == {"shared store"}
    assert {name: (Decimal(row["spent_usd"]), row["calls"], Decimal(row["reserved_usd"]))
            for name, row in got.items()} == {"search-day": (Decimal("0.004"), 1, Decimal("0.01")),
                                              "all-month": (Decimal("0.104"), 2, Decimal("0.01")),
                                              "ads-24h": (Decimal("0.1"), 1, 0)}
    assert got["search-day"]["refused_calls"] == 1  # b's refusal, written by its heartbeat
    assert got["ads-24h"]["estimated_calls"] == 1 and got["ads-24h"]["reset_at"] < "2100"
    a.settle(flying, Decimal("0.01"))
    a.close(), b.close()
    assert main(["budgets", "status", "--budgets", str(file), "--ledger", ledger_url]) == 0
    out = capsys.readouterr().out
    assert "shared budget store" in out
    line = next(line for line in out.splitlines() if "search-day" in line)
    assert "spent 0.014 of 0.02 USD (70%)" in line and "reserved 0," in line and "refused 1 call" in line
