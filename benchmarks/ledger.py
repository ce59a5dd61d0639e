"""``meter report`` on a large ledger: the time to group N rows (default 1,000,000) in SQL.

The rows are made in SQLite itself from one real record (a recursive CTE varying the id,
the time over 30 days, the team and the deployment), so building them is quick and the
measurement is of the report alone.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
from prometheus_client import CollectorRegistry

import meter
from meter.ledger.report import report


def _seed(path: Path) -> None:
    def azure(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"id": "c", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
                                          "choices": [], "usage": {"prompt_tokens": 1200, "completion_tokens": 180,
                                                                   "total_tokens": 1380}})

    m = meter.Meter(registry=CollectorRegistry(), otel=False, prometheus=False, ledger=path, label_keys=("team",))
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with meter.attribute(team="search"):
        client.post("https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                    json={"messages": []})
    m.close()


def _time_reports(ledger: str | Path) -> dict[str, dict[str, float]]:
    """The reports the figures are for: by team, by team, deployment and day, and one team (its index)."""
    timings: dict[str, dict[str, float]] = {}
    for by, where in ((("team",), None), (("team", "deployment", "day"), None), (("deployment",), {"team": "team-3"})):
        t0 = time.perf_counter()
        out = report(ledger, by, where=where)
        name = ",".join(by) + (" where team=team-3" if where else "")
        timings[name] = {"seconds": time.perf_counter() - t0, "groups": len(out)}
    return timings


def run(rows: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp()) / "big.sqlite"
    _seed(path)
    t0 = time.perf_counter()
    with sqlite3.connect(path) as db:
        columns = [r[1] for r in db.execute("PRAGMA table_info(calls)")]
        cost_columns = [r[1] for r in db.execute("PRAGMA table_info(costs)")]
        varied = {"id": "printf('%032d', n)", "started_at": "strftime('%Y-%m-%dT%H:%M:%S+00:00', "
                  "'2026-11-01', '+' || (n % 2592000) || ' seconds')",
                  "attributes": "json_object('team', 'team-' || (n % 7))", "deployment": "'dep-' || (n % 5)",
                  "duration_s": "0.2 + (n % 1000) / 1000.0"}
        select = ", ".join(varied.get(c, c) for c in columns)
        db.execute("CREATE TEMP TABLE seed AS SELECT * FROM calls")
        db.execute("CREATE TEMP TABLE seedcost AS SELECT * FROM costs")
        db.execute("DELETE FROM costs")
        db.execute("DELETE FROM calls")
        db.execute(f"""INSERT INTO calls ({', '.join(columns)})
                       WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < {rows})
                       SELECT {select} FROM k, seed""")
        cost_select = ", ".join("printf('%032d', n)" if c == "call_id" else c for c in cost_columns)
        db.execute(f"""INSERT INTO costs ({', '.join(cost_columns)})
                       WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < {rows})
                       SELECT {cost_select} FROM k, seedcost""")
    built = time.perf_counter() - t0
    timings = _time_reports(path)
    size = path.stat().st_size
    path.unlink()
    return {"rows": rows, "build_s": built, "file_mb": size / 2**20, "report": timings}


def run_postgres(url: str, rows: int) -> dict[str, Any]:
    """The same report on ``rows`` PostgreSQL rows (in a database of its own, dropped after), built in SQL."""
    import psycopg

    name = f"meter_bench_{int(time.time())}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    target = url.rsplit("/", 1)[0] + f"/{name}"
    try:
        m = meter.Meter(registry=CollectorRegistry(), otel=False, prometheus=False, ledger=target,
                        label_keys=("team",))
        m.close()
        seed = Path(tempfile.mkdtemp()) / "seed.sqlite"
        _seed(seed)
        from meter.ledger.postgres import PostgresLedger
        from meter.ledger.schema import CALL_COLUMNS, COST_COLUMNS

        with sqlite3.connect(seed) as db:
            call = db.execute(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls").fetchone()
            cost = db.execute(f"SELECT {', '.join(COST_COLUMNS)} FROM costs").fetchone()
        store = PostgresLedger(target, "bench")
        store.write([(call[0], "2026-11-01T00:00:00+00:00", *call[2:])], [cost])  # makes November's partitions
        store.close()
        t0 = time.perf_counter()
        with psycopg.connect(target, autocommit=True) as db:
            varied = {"id": "lpad(n::text, 32, '0')",
                      "started_at": "'2026-11-01'::timestamptz + (n % 2592000) * interval '1 second'",
                      "attributes": "jsonb_build_object('team', 'team-' || (n % 7))", "deployment": "'dep-' || (n % 5)",
                      "duration_s": "0.2 + (n % 1000) / 1000.0"}
            db.execute(f"""INSERT INTO calls ({', '.join(CALL_COLUMNS)})
                           SELECT {', '.join(varied.get(c, 'seed.' + c) for c in CALL_COLUMNS)}
                           FROM generate_series(1, {rows}) AS n, (SELECT * FROM calls) AS seed""")
            cost_columns = ("call_started_at", *COST_COLUMNS)
            db.execute(f"""INSERT INTO costs ({', '.join(cost_columns)})
                           SELECT {', '.join({'call_id': 'c.id', 'call_started_at': 'c.started_at'}.get(x, 'k.' + x)
                                             for x in cost_columns)}
                           FROM calls c, (SELECT * FROM costs) AS k WHERE c.id <> k.call_id""")
            db.execute(f"DELETE FROM costs WHERE call_id = '{call[0]}'")
            db.execute(f"DELETE FROM calls WHERE id = '{call[0]}'")
            db.execute("VACUUM ANALYZE")
            (size,) = db.execute("SELECT pg_database_size(current_database())").fetchall()[0]
        built = time.perf_counter() - t0
        timings = _time_reports(target)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
    return {"rows": rows, "build_s": built, "database_mb": size / 2**20, "report": timings}


def _record() -> meter.CallRecord:
    records: list[meter.CallRecord] = []

    def azure(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"id": "c", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
                                          "choices": [], "usage": {"prompt_tokens": 1200, "completion_tokens": 180,
                                                                   "total_tokens": 1380}})

    m = meter.Meter(registry=CollectorRegistry(), otel=False, prometheus=False, on_record=records.append)
    with meter.attribute(team="search"):
        httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m)).post(
            "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
            json={"messages": []})
    m.flush()  # the record is handed out on the metering worker
    return records[0]


def insert_throughput(where: str, records: int = 50_000) -> float:
    """Records per second the writer stores into ``where`` (queued as fast as possible, timed to the flush)."""
    from meter.ledger.open import open_ledger
    from meter.ledger.writer import LedgerWriter

    record = _record()
    writer = LedgerWriter(open_ledger(where), max_queue=records + 1)
    t0 = time.perf_counter()
    for _ in range(records):
        writer.put(record)
    assert writer.flush(timeout=600) and writer.dropped == 0
    elapsed = time.perf_counter() - t0
    writer.close()
    return records / elapsed


def per_call(calls: int = 2000, rounds: int = 3) -> dict[str, float]:
    """Median S1 time through the SDK: pricing + Prometheus, without and with a SQLite ledger, in alternating
    blocks."""
    import statistics

    import openai

    from benchmarks.azure import Answers, AzureTransport
    from benchmarks.overhead import API_VERSION, ENDPOINT, sync_call

    answers = Answers(10)
    folder = Path(tempfile.mkdtemp())
    clients = {}
    meters = {}
    for arm, ledger in (("prometheus", None), ("prometheus + ledger", str(folder / "l.sqlite"))):
        meters[arm] = m = meter.Meter(otel=False, registry=CollectorRegistry(), ledger=ledger)
        transport = meter.MeteredTransport(AzureTransport(answers), meter=m)
        clients[arm] = openai.AzureOpenAI(api_key="k", api_version=API_VERSION, azure_endpoint=ENDPOINT,
                                          http_client=httpx2.Client(transport=transport), max_retries=0)
    call = sync_call("S1")
    for _ in range(100):
        for c in clients.values():
            call(c)
    block = max(1, min(50, calls))
    medians: dict[str, list[float]] = {arm: [] for arm in clients}
    for _ in range(rounds):
        # Blocks of calls per arm, the block's last call timed to the metering worker's flush: a call's
        # metering runs after it, so interleaved call by call one arm would pay for the other's.
        times: dict[str, list[float]] = {arm: [] for arm in clients}
        for b in range(max(1, calls // block)):
            for arm in (list(clients) if b % 2 else list(clients)[::-1]):
                for i in range(block):
                    t0 = time.perf_counter()
                    call(clients[arm])
                    if i == block - 1:
                        meters[arm].flush()
                    times[arm].append(time.perf_counter() - t0)
        for arm, values in times.items():
            medians[arm].append(statistics.median(values))
    return {arm: statistics.median(values) * 1e6 for arm, values in medians.items()}
