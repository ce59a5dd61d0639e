"""The SQLite ledger: every record kept with exact money, written off the caller's path, never failing a call.

Real parts: SQLite through the standard library, real files, fresh interpreters for exit
and SIGKILL. A store that blocks or fails stands in for a slow or down database (the
writer's contract is with any store; the real SQLite store is used everywhere else).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from prometheus_client import CollectorRegistry

import meter
from meter.ledger import SCHEMA_VERSION, LedgerError
from meter.ledger.sqlite import SQLiteLedger
from meter.ledger.writer import LedgerWriter

REPO = Path(__file__).resolve().parents[2]
URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"


def azure(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, headers={"x-ms-region": "East US 2", "apim-request-id": "apim-1"}, json={
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 180, "total_tokens": 1380,
                  "prompt_tokens_details": {"cached_tokens": 1024}}})


def client(m: meter.Meter) -> httpx2.Client:
    return httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute(sql))


def test_every_call_is_a_row_with_exact_money(tmp_path: Path) -> None:
    path = tmp_path / "meter.sqlite"
    records: list[meter.CallRecord] = []
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=path, on_record=records.append)
    with meter.attribute(team="search"):
        for _ in range(5):
            client(m).post(URL, json={"messages": [{"role": "user", "content": "hi"}]})
    assert m.close() and m.ledger is not None and m.ledger.written == 5
    calls = rows(path, "SELECT id, deployment, response_model, input_tokens, cached_input_tokens, output_tokens, "
                       "outcome, azure_region, apim_request_id, attributes, started_at FROM calls ORDER BY id")
    assert len(calls) == 5 and len({c[0] for c in calls}) == 5
    assert calls[0][1:10] == ("gpt-4o", "gpt-4o-2024-11-20", 1200, 1024, 180, "ok", "East US 2", "apim-1",
                              json.dumps({"team": "search"}))
    assert calls[0][10].endswith("+00:00")
    costs = rows(path, "SELECT total, amounts, table_version, basis, currency FROM costs")
    assert len(costs) == 5
    expected = records[0].cost
    assert Decimal(costs[0][0]) == expected.total and costs[0][2] == expected.table_version
    assert {k: Decimal(v) for k, v in json.loads(costs[0][1]).items()} == dict(expected.amounts)
    assert (costs[0][3], costs[0][4]) == ("list", "USD")
    assert sum(Decimal(c[0]) for c in costs) == 5 * expected.total  # exact: no float anywhere


def test_a_batch_written_twice_adds_nothing_twice(tmp_path: Path) -> None:
    store = SQLiteLedger(tmp_path / "l.sqlite")
    m = meter.Meter(registry=CollectorRegistry(), otel=False)
    seen: list[meter.CallRecord] = []
    m.subscribe(seen.append)
    client(m).post(URL, json={"messages": []})
    assert m.flush(10)  # the record comes on the metering worker
    from meter.ledger import rows as ledger_rows

    call = ledger_rows.call_row("id-1", seen[0])
    cost = ledger_rows.cost_row("id-1", seen[0], seen[0].started_at)
    assert cost is not None
    store.write([call], [cost])
    store.write([call], [cost])  # a retry after an error that happened after the commit
    assert rows(tmp_path / "l.sqlite", "SELECT count(*) FROM calls") == [(1,)]
    assert rows(tmp_path / "l.sqlite", "SELECT count(*) FROM costs") == [(1,)]


class _Store:
    """A database that blocks until released, or fails ``failures`` times first."""

    name = "test-store"

    def __init__(self, failures: int = 0) -> None:
        self.release = threading.Event()
        self.failures = failures
        self.batches: list[int] = []

    def write(self, calls: Any, costs: Any) -> None:
        self.release.wait(30)
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        self.batches.append(len(calls))

    data_errors = (ValueError,)

    def ping(self) -> None:
        pass

    def after_fork_in_child(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_blocked_database_never_slows_a_call_and_drops_are_counted() -> None:
    store = _Store()
    m = meter.Meter(registry=CollectorRegistry(), otel=False)
    writer = LedgerWriter(store, on_fault=m._fault_counter.record_many, max_queue=20, flush_interval_s=0.05)
    from meter.sinks.ledger import LedgerSink

    m.add_sink(LedgerSink(writer))
    c = client(m)
    c.post(URL, json={"messages": []})
    time.sleep(0.3)  # the writer now holds that record and is stuck in the database
    started = time.perf_counter()
    for _ in range(100):
        c.post(URL, json={"messages": []})
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"100 calls took {elapsed:.1f} s with the database blocked"
    assert m.flush(10)  # every record offered to the writer (from the metering worker), before counting drops
    assert writer.dropped == 100 - 20 and m.faults["ledger_dropped"] == writer.dropped  # the queue holds 20
    store.release.set()
    assert writer.close(timeout=10)
    assert writer.written == 21 and sum(store.batches) == 21


def test_a_failing_database_is_retried_and_nothing_is_lost() -> None:
    store = _Store(failures=3)
    store.release.set()
    writer = LedgerWriter(store, flush_interval_s=0.05)
    m = meter.Meter(registry=CollectorRegistry(), otel=False)
    from meter.sinks.ledger import LedgerSink

    m.add_sink(LedgerSink(writer))
    for _ in range(30):
        client(m).post(URL, json={"messages": []})
    assert m.flush(10)  # every record handed to the writer before it is closed
    assert writer.close(timeout=20)
    assert writer.written == 30 and writer.dropped == 0 and sum(store.batches) == 30


def _fresh(code: str, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


WORKLOAD = textwrap.dedent(f"""
    import sys, time, httpx2, meter
    from prometheus_client import CollectorRegistry
    from tests.ledger.test_sqlite_ledger import azure
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger="meter.sqlite")
    c = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 40):
        c.post("{URL}", json={{"messages": []}})
""")


def test_interpreter_exit_writes_what_is_queued(tmp_path: Path) -> None:
    proc = _fresh(WORKLOAD + "\nprint('done', flush=True)\n", tmp_path)  # no close(): the exit hook writes
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert rows(tmp_path / "meter.sqlite", "SELECT count(*) FROM calls") == [(40,)]


def test_sigkill_loses_at_most_the_last_flush_interval(tmp_path: Path) -> None:
    """40 calls, then a wait of two flush intervals, then 40 more and an immediate SIGKILL: the first 40 are there."""
    code = WORKLOAD + textwrap.dedent(f"""
        time.sleep(2 * m.ledger.flush_interval_s + 0.2)
        for _ in range(40):
            c.post("{URL}", json={{"messages": []}})
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = _fresh(code, tmp_path)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    (count,) = rows(tmp_path / "meter.sqlite", "SELECT count(*) FROM calls")[0]
    assert 40 <= count <= 80


def test_an_unusable_ledger_is_a_clear_error_at_construction(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not a database" * 100)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE orders (id INTEGER)")
    newer = tmp_path / "newer.sqlite"
    SQLiteLedger(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    cases = [
        (tmp_path / "no" / "such" / "dir" / "m.sqlite", "cannot be created: the folder"),
        (corrupt, "is not a usable SQLite ledger"),
        (foreign, "holds tables that are not a meter ledger: ['orders']"),
        (newer, f"has schema version {SCHEMA_VERSION + 1}, newer than this meter's {SCHEMA_VERSION}"),
        ("postgresql://meter:s3cret@db.invalid:5432/meter", "cannot be opened"),
    ]
    threads = threading.active_count()
    for where, said in cases:
        with pytest.raises(LedgerError) as caught:
            meter.Meter(registry=CollectorRegistry(), otel=False, ledger=where)
        message = str(caught.value)
        assert said in message, message
        assert "s3cret" not in message
        assert message.startswith(f"ledger {str(where).replace(':s3cret', ':***')}")
    assert threading.active_count() == threads  # no writer thread left behind


def test_info_migrate_and_prune(tmp_path: Path) -> None:
    path = tmp_path / "meter.sqlite"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "meter", "ledger", *args, "--ledger", str(path)],
                              capture_output=True, text=True, timeout=60, cwd=REPO)

    assert run("migrate").stdout.strip() == f"ledger {path}: schema version {SCHEMA_VERSION}, up to date"
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=path)
    for _ in range(3):
        client(m).post(URL, json={"messages": []})
    m.close()
    facts = json.loads(run("info").stdout)
    assert (facts["calls"], facts["cost_rows"], facts["schema_version"]) == (3, 3, SCHEMA_VERSION)
    assert run("prune", "--before", "2000-01-01").stdout.strip().endswith("removed 0 calls started before "
                                                                         "2000-01-01 (and their costs)")
    assert "removed 3 calls" in run("prune", "--before", "2999-01-01").stdout
    assert rows(path, "SELECT count(*) FROM costs") == [(0,)]
    missing = subprocess.run([sys.executable, "-m", "meter", "ledger", "info", "--ledger", str(tmp_path / "no.db")],
                             capture_output=True, text=True, timeout=60, cwd=REPO)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ledger") and "Traceback" not in missing.stderr


def test_a_ledger_of_another_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); "
                         "INSERT INTO meta VALUES ('schema_version', '1'); CREATE TABLE calls (id TEXT); "
                         "CREATE TABLE costs (call_id TEXT);")
    with pytest.raises(LedgerError, match="its calls table lacks started_at"):
        meter.Meter(registry=CollectorRegistry(), otel=False, ledger=path)
    demo = subprocess.run([sys.executable, "-m", "meter", "demo", "--requests", "2", "--metrics-port", "0",
                           "--ledger", str(path)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert demo.returncode == 2 and "Traceback" not in demo.stderr
    assert demo.stderr.startswith(f"error: ledger {path}: says schema version 1"), demo.stderr
