"""The PostgreSQL ledger against a real server (initdb + pg_ctl on a free loopback port, started here).

Exact money in ``numeric`` (summed in SQL), monthly partitions, and four processes writing
at once: every call once, none lost, none twice. A server that cannot be reached is a clear
error at construction, with the password left out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
from prometheus_client import CollectorRegistry

import meter
from meter.ledger import LedgerError
from tests.support.postgres import PostgresServer

psycopg = pytest.importorskip("psycopg") if os.environ.get("CI") is None else __import__("psycopg")
REPO = Path(__file__).resolve().parents[2]
URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"


def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as db:
        return list(db.execute(sql).fetchall())


def _workload(url: str, calls: int) -> str:
    return textwrap.dedent(f"""
        import httpx2, meter
        from prometheus_client import CollectorRegistry
        from tests.ledger.test_sqlite_ledger import azure
        m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger="{url}")
        c = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
        with meter.attribute(team="search"):
            for _ in range({calls}):
                c.post("{URL}", json={{"messages": []}})
        assert m.close(timeout=30) and m.ledger.dropped == 0, (m.ledger.written, m.ledger.dropped)
    """)


def test_calls_land_with_exact_money_in_monthly_partitions(pg: PostgresServer) -> None:
    from tests.ledger.test_sqlite_ledger import azure

    records: list[meter.CallRecord] = []
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=pg.url, on_record=records.append)
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with meter.attribute(team="ads"):
        for _ in range(7):
            client.post(URL, json={"messages": []})
    assert m.close() and m.ledger is not None and m.ledger.written == 7
    ((count, total),) = _query(pg.url, "SELECT count(*), sum(k.total) FROM calls c JOIN costs k ON k.call_id = c.id "
                                       "WHERE c.attributes->>'team' = 'ads'")
    assert count == 7 and total == 7 * records[0].cost.total and isinstance(total, Decimal)
    partitions = {row[0] for row in _query(pg.url, "SELECT relname FROM pg_class WHERE relispartition")}
    month = records[0].started_at
    assert {f"calls_y{month.year}m{month.month:02d}", f"costs_y{month.year}m{month.month:02d}"} <= partitions


def test_four_processes_at_once_lose_and_duplicate_nothing(pg: PostgresServer) -> None:
    before = _query(pg.url, "SELECT count(*) FROM calls WHERE attributes->>'team' = 'search'")[0][0]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _workload(pg.url, 150)], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    ((count, distinct),) = _query(pg.url, "SELECT count(*), count(DISTINCT id) FROM calls "
                                          "WHERE attributes->>'team' = 'search'")
    assert count - before == 600 and distinct == count
    orphans = _query(pg.url, "SELECT count(*) FROM costs k LEFT JOIN calls c ON c.id = k.call_id WHERE c.id IS NULL")
    assert orphans == [(0,)]


def test_a_server_that_cannot_be_reached_is_a_clear_error(pg: PostgresServer) -> None:
    from tests.support.prometheus import free_port

    url = f"postgresql://meter:s3cret@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(LedgerError) as caught:
        meter.Meter(registry=CollectorRegistry(), otel=False, ledger=url)
    message = str(caught.value)
    assert message.startswith("ledger postgresql://meter:***@127.0.0.1:") and "cannot be opened" in message
    assert "s3cret" not in message


def test_a_server_restart_loses_nothing(pg_database: str, pg: PostgresServer) -> None:
    """The server cuts every connection (a restart, a failover): the writer connects again and retries."""
    from tests.ledger.test_sqlite_ledger import azure

    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=pg_database)
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    for _ in range(20):
        client.post(URL, json={"messages": []})
    assert m.ledger is not None and m.ledger.flush(timeout=30)
    pg.restart()
    for _ in range(20):
        client.post(URL, json={"messages": []})
    assert m.close(timeout=60)
    assert (m.ledger.written, m.ledger.dropped) == (40, 0)
    assert _query(pg_database, "SELECT count(*), count(DISTINCT id) FROM calls") == [(40, 40)]
