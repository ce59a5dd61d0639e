"""``meter reprice``: history priced again with today's tables; a dry run changes nothing, ``--apply`` keeps both.

A ledger is written through a real Meter; a user's price table then changes the price of
``gpt-4o`` and adds a model the built-ins do not know. The dry run reports the change per
model, deployment type and day; ``--apply`` records the new costs under the new version,
``meter report`` shows them and ``--as-reported`` still shows what was reported then.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
from prometheus_client import CollectorRegistry

import meter
from meter.ledger.report import report
from meter.ledger.reprice import reprice
from meter.pricing import PriceBook

REPO = Path(__file__).resolve().parents[2]


def _ledger(path: Path) -> list[meter.CallRecord]:
    def azure(request: httpx2.Request) -> httpx2.Response:
        model = "mystery-model-1" if b"mystery" in request.url.path.encode() else "gpt-4o-2024-11-20"
        return httpx2.Response(200, json={"id": "c", "object": "chat.completion", "model": model, "choices": [],
                                          "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 100_000,
                                                    "total_tokens": 1_100_000}})

    records: list[meter.CallRecord] = []
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=path, on_record=records.append)
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    for deployment in ("gpt-4o", "gpt-4o", "gpt-4o", "mystery"):
        client.post(f"https://x.openai.azure.com/openai/deployments/{deployment}/chat/completions"
                    "?api-version=2024-10-21", json={"messages": []})
    assert m.close()
    return records


TABLE = """[table]
version = "contoso-2026-12"
published = 2026-12-01

[[price]]
model = "gpt-4o-2024-11-20"
deployment_type = "GlobalStandard"
effective_from = 2024-01-01
input = "2"
output = "8"
cached_input = "1"
source = "Contoso agreement, 2026-12"

[[model]]
id = "mystery-model-1"

[[price]]
model = "mystery-model-1"
deployment_type = "GlobalStandard"
effective_from = 2024-01-01
input = "1"
output = "2"
source = "Contoso agreement, 2026-12"
"""


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[Path, Path, list[meter.CallRecord]]:
    path = tmp_path / "meter.sqlite"
    records = _ledger(path)
    table = tmp_path / "contoso.toml"
    table.write_text(TABLE)
    return path, table, records


def test_today_s_built_in_tables_change_nothing(ledger: tuple[Path, Path, list[meter.CallRecord]]) -> None:
    path, _, _ = ledger
    result = reprice(path, PriceBook.load())
    assert result.checked == 4 and result.changed == 0


def test_the_dry_run_shows_the_change_and_writes_nothing(ledger: tuple[Path, Path, list[meter.CallRecord]]) -> None:
    path, table, records = ledger
    before = report(path, ())[0]
    result = reprice(path, PriceBook.load(table))
    gpt4o = next(c for key, c in result.changes.items() if key[0] == "gpt-4o-2024-11-20")
    assert gpt4o.calls == 3 and gpt4o.before == 3 * records[0].cost.total
    assert gpt4o.after == 3 * (Decimal("2") + Decimal("0.8"))  # 1M input at $2, 100k output at $8 per 1M
    mystery = next(c for key, c in result.changes.items() if key[0] == "mystery-model-1")
    assert (mystery.calls, mystery.newly_priced, mystery.after) == (1, 1, Decimal("1.2"))
    assert report(path, ())[0] == before  # nothing written


def test_apply_records_new_costs_and_keeps_the_reported_ones(ledger: tuple[Path, Path, list[meter.CallRecord]],
                                                             ) -> None:
    path, table, records = ledger
    reported = report(path, ())[0].cost_usd
    result = reprice(path, PriceBook.load(table), apply=True)
    assert result.applied == 4
    assert report(path, ())[0].cost_usd == 3 * Decimal("2.8") + Decimal("1.2")
    assert report(path, (), as_reported=True)[0].cost_usd == reported == 3 * records[0].cost.total
    assert report(path, ())[0].unpriced == 0 and report(path, (), as_reported=True)[0].unpriced == 1
    again = reprice(path, PriceBook.load(table), apply=True)
    assert again.changed == 0 and again.applied == 0  # idempotent


def test_the_command(ledger: tuple[Path, Path, list[meter.CallRecord]]) -> None:
    path, table, _ = ledger

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "meter", "reprice", "--ledger", str(path), *args],
                              capture_output=True, text=True, timeout=60, cwd=REPO)

    dry = run("--tables", str(table))
    assert dry.returncode == 0 and "4 would change" in dry.stdout and "dry run" in dry.stdout, dry.stdout
    assert "gpt-4o-2024-11-20" in dry.stdout and "mystery-model-1" in dry.stdout
    applied = run("--tables", str(table), "--apply")
    assert applied.returncode == 0 and "recorded 4 new costs" in applied.stdout
    bad = run("--tables", str(path.parent / "missing.toml"))
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


CORRECTION = """[table]
version = "fix-2026-12"
published = 2026-12-01

[[correction]]
corrects = "gpt-4o-2024-11-20:GlobalStandard@2024-12-01"
recorded_at = 2026-12-01
source = "Azure price sheet, reissued"
reason = "output was listed 10x"
output = "9"
"""


def test_after_a_price_correction_exactly_the_affected_rows_change(ledger: tuple[Path, Path, list[meter.CallRecord]],
                                                                  tmp_path: Path) -> None:
    path, _, records = ledger
    fix = tmp_path / "fix.toml"
    fix.write_text(CORRECTION)
    result = reprice(path, PriceBook.load(fix), apply=True)
    (key, change), = result.changes.items()  # only gpt-4o's calls; the unknown model stays unknown: no change
    assert key[0] == "gpt-4o-2024-11-20" and key[1] == "GlobalStandard"
    assert change.calls == 3 and change.newly_priced == 0 and change.now_unknown == 0
    old_output = records[0].cost.amounts["output"]
    assert change.before - change.after == 3 * (old_output - Decimal("0.9"))  # 100k output tokens at $9, not $10
    assert result.table_version is not None and result.table_version.endswith("+fix-2026-12")
    assert report(path, ())[0].cost_usd == report(path, (), as_reported=True)[0].cost_usd - 3 * (
        old_output - Decimal("0.9"))


def test_the_command_s_totals_say_which_calls_they_leave_out(ledger: tuple[Path, Path, list[meter.CallRecord]]
                                                            ) -> None:
    """A call unknown before (or after) adds nothing to that side's sum: the cell and the summary say so,
    instead of a before of 0 and a change of the whole new price."""
    import re

    path, table, _ = ledger
    dry = subprocess.run([sys.executable, "-m", "meter", "reprice", "--ledger", str(path), "--tables", str(table)],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert dry.returncode == 0, dry.stderr
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in dry.stdout.splitlines()[1:3])}
    # model, type, day, calls, before, after, change, newly priced, now unknown
    assert rows["gpt-4o-2024-11-20"][4:7] == ["10.5", "8.4", "-2.1"]  # 3 calls, 3.5 -> 2.8 each
    assert rows["mystery-model-1"][4:8] == ["unknown (1 unpriced)", "1.2", "unknown (1 unpriced)", "1"]
    assert "4 would change (USD 10.5 + 1 unpriced -> 9.6)" in dry.stdout, dry.stdout
