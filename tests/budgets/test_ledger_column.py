"""The ledger keeps the budgets a call was charged to (``calls.budgets``, a JSON list; NULL for none)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx2

import meter

URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"


def azure(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json={
        "id": "chatcmpl-l", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})


def test_the_budgets_column_names_each_budget_charged(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    budgets = [{"name": "all, of it", "match": {}, "period": "month", "limit_usd": "10"},
               {"name": "search", "match": {"team": "search"}, "period": "day", "limit_usd": "1"}]
    m = meter.Meter(otel=False, prometheus=False, ledger=str(path), budgets=budgets)
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with meter.attribute(team="search"):
        client.post(URL, json={"messages": [{"role": "user", "content": "hi"}]})
    with meter.attribute(team="ads"):
        client.post(URL, json={"messages": [{"role": "user", "content": "hi"}]})
    m.close()
    with sqlite3.connect(path) as db:
        got = sorted((json.loads(row[0]) if row[0] else None for row in
                      db.execute("SELECT budgets FROM calls")), key=lambda v: len(v or []))
    assert got == [["all, of it"], ["all, of it", "search"]]
    plain = meter.Meter(otel=False, prometheus=False, ledger=str(tmp_path / "p.sqlite"))
    httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=plain)).post(
        URL, json={"messages": []})
    plain.close()
    with sqlite3.connect(tmp_path / "p.sqlite") as db:
        assert db.execute("SELECT budgets FROM calls").fetchall() == [(None,)]
