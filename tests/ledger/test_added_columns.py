"""Columns added to the ledger after its first release (the service tier, issue 22): a ledger written before
them gains them when opened for writing, on SQLite and PostgreSQL; its old rows read NULL, new rows carry
the tier; ``meter ledger migrate`` adds them too."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import Any

import httpx2
from prometheus_client import CollectorRegistry

import meter
from meter.ledger.open import open_ledger
from meter.ledger.schema import ADDED_COLUMNS
from tests.support.ledgers import query, run

URL = "https://r.openai.azure.com/openai/deployments/gpt-41/chat/completions?api-version=2024-10-21"


def _call(m: meter.Meter, tier: str | None) -> None:
    body: dict[str, Any] = {"id": "c", "model": "gpt-4.1-2025-04-14", "choices": [],
                            "usage": {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010}}
    headers = {"x-ms-service-tier": tier} if tier else {}
    client = httpx2.Client(transport=meter.MeteredTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, json=body, headers=headers)), meter=m))
    client.post(URL, json={"service_tier": tier} if tier else {})


def _as_before(ledger: str) -> None:
    """The ledger as the meter before these columns made it: its calls table without them."""
    for column in ADDED_COLUMNS:
        run(ledger, f"ALTER TABLE calls DROP COLUMN {column}")


def test_a_ledger_from_before_the_tier_gains_its_columns_and_keeps_its_rows(ledger_url: str) -> None:
    m = meter.Meter(otel=False, registry=CollectorRegistry(), ledger=ledger_url)
    _call(m, None)
    assert m.close()
    _as_before(ledger_url)
    m = meter.Meter(otel=False, registry=CollectorRegistry(), ledger=ledger_url)
    _call(m, "priority")
    assert m.close() and m.ledger is not None and m.ledger.written == 1
    rows = query(ledger_url, "SELECT requested_service_tier, service_tier, service_tier_assumed, deployment_type "
                             "FROM calls ORDER BY started_at")
    assert [tuple(row) for row in rows] == [(None, None, None, "GlobalStandard"),
                                             ("priority", "priority", False, "GlobalPriority")]


def test_migrate_adds_them_to_a_ledger_no_one_writes(tmp_path: Any) -> None:
    path = tmp_path / "old.sqlite"
    open_ledger(str(path)).close()
    _as_before(str(path))
    done = subprocess.run([sys.executable, "-m", "meter", "ledger", "migrate", "--ledger", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names = {row[1] for row in query(str(path), "PRAGMA table_info(calls)")}
    assert set(ADDED_COLUMNS) <= names


def test_the_report_groups_by_service_tier(tmp_path: Any) -> None:
    from meter.ledger.report import report

    path = str(tmp_path / "l.sqlite")
    m = meter.Meter(otel=False, registry=CollectorRegistry(), ledger=path)
    for tier in ("priority", None, None):
        _call(m, tier)
    assert m.close()
    rows = {row.group: row for row in report(path, ("service_tier", "deployment_type"))}
    assert set(rows) == {("priority", "GlobalPriority"), ("", "GlobalStandard")}
    assert rows[("priority", "GlobalPriority")].calls == 1 and rows[("", "GlobalStandard")].calls == 2


def test_a_call_billed_by_its_units_is_kept_and_repriced_by_them(ledger_url: str, tmp_path: Any) -> None:
    from meter.ledger.reprice import reprice
    from meter.pricing import PriceBook

    answer = {"text": "hi", "usage": {"type": "duration", "seconds": 90}}
    m = meter.Meter(otel=False, registry=CollectorRegistry(), ledger=ledger_url)
    client = httpx2.Client(transport=meter.MeteredTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, json=answer)), meter=m))
    client.post("https://r.openai.azure.com/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21",
                files={"file": ("a.wav", b"RIFF", "audio/wav")})
    assert m.close()
    [row] = query(ledger_url, "SELECT input_tokens, audio_seconds, speech_characters, images FROM calls")
    assert tuple(row) == (None, 90.0, 0, 0)
    assert reprice(ledger_url, PriceBook.load()).changed == 0  # the same table: the same 0.009
    cheaper = tmp_path / "cheaper.toml"
    cheaper.write_text('[table]\nversion = "user-1"\npublished = 2026-12-07\n\n[[price]]\nmodel = "whisper"\n'
                       'source = "test"\ndeployment_type = "GlobalStandard"\neffective_from = 2020-01-01\n'
                       'audio_minute = "0.003"\n')
    result = reprice(ledger_url, PriceBook.load(cheaper))
    assert result.checked == 1 and result.changed == 1
    [change] = result.changes.values()
    assert (change.before, change.after) == (Decimal("0.009"), Decimal("0.0045"))


def test_the_report_shows_tool_calls_and_units_where_there_are_some(tmp_path: Any) -> None:
    from meter.ledger.report import report

    path = str(tmp_path / "l.sqlite")
    m = meter.Meter(otel=False, registry=CollectorRegistry(), ledger=path)
    responses = {"id": "r1", "object": "response", "model": "gpt-4.1-mini", "status": "completed",
                 "output": [{"id": "fs_1", "type": "file_search_call"}],
                 "usage": {"input_tokens": 10, "output_tokens": 1, "total_tokens": 11}}
    answers = {"responses": httpx2.Response(200, json=responses),
               "transcriptions": httpx2.Response(200, json={"text": "x", "usage": {"type": "duration",
                                                                                     "seconds": 2.5}})}
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(
        lambda request: answers[request.url.path.rsplit("/", 1)[-1]]), meter=m))
    client.post("https://r.openai.azure.com/openai/v1/responses", json={"model": "gpt-4.1-mini"})
    client.post("https://r.openai.azure.com/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21",
                files={"file": ("a.wav", b"RIFF", "audio/wav")})
    assert m.close()
    rows = {row.group: row for row in report(path, ("api",))}
    assert rows[("responses",)].tokens["file_search_calls"] == 1
    assert rows[("transcriptions",)].units["audio_seconds"] == 2.5
    done = subprocess.run([sys.executable, "-m", "meter", "report", "--ledger", path, "--by", "api"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    header, responses_line, transcriptions_line = done.stdout.splitlines()[:3]
    assert "file search" in header and "audio s" in header and "web search" not in header
    assert responses_line.split()[:2] == ["responses", "1"] and " 2.5 " in transcriptions_line
