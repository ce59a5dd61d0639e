"""A row the database can never hold costs that row, never the ledger (``LedgerWriter``'s data errors).

Values are made storable where they enter meter (``meter.core.storable``); these tests go past that
guard on purpose, handing the writer records with values a real SQLite file and a real PostgreSQL
server refuse: a lone surrogate, an integer past 64 bits, NUL in text, a NULL in a NOT NULL column.
Before, the writer retried such a batch forever: that batch and every record after it were never
written, and nothing was counted until the queue filled.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
from prometheus_client import CollectorRegistry

import meter
from meter.ledger.open import open_ledger
from meter.ledger.writer import LedgerWriter
from tests.ledger.test_sqlite_ledger import URL, azure
from tests.support.ledgers import query


def _record() -> meter.CallRecord:
    seen: list[meter.CallRecord] = []
    m = meter.Meter(registry=CollectorRegistry(), otel=False, on_record=seen.append)
    httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m)).post(
        URL, json={"messages": []})
    assert m.flush(10)  # the record comes on the metering worker
    return seen[0]


def test_rows_the_database_refuses_are_repaired_or_set_aside_and_the_rest_is_written(ledger_url: str) -> None:
    ledger = ledger_url
    good = _record()
    hostile = [
        good.replace(request_model="a\ud800b"),  # a lone surrogate: no UTF-8 encodes it
        good.replace(attempt=10**20),  # past 64 bits (SQLite OverflowError; PostgreSQL integer out of range)
        good.replace(api_version="2024-10-21\x00"),  # PostgreSQL text cannot hold NUL
        good.replace(attributes={"team": "x\udfff"}),
    ]
    unstorable = good.replace(outcome=None)  # NOT NULL: no repair can store it
    faults: list[tuple[str, int]] = []
    writer = LedgerWriter(open_ledger(ledger), on_fault=lambda kind, _, count: faults.append((kind, count)),
                          flush_interval_s=0.05)
    batch = [good] * 10 + hostile[:2] + [good] * 10 + [unstorable] + hostile[2:] + [good] * 10
    for record in batch:
        writer.put(record)
    started = time.monotonic()
    assert writer.flush(timeout=20), "the writer must not retry a row the database refuses"
    took = time.monotonic() - started
    for _ in range(5):  # and it goes on writing
        writer.put(good)
    assert writer.close(timeout=20)
    rows = query(ledger, "SELECT count(*), count(DISTINCT id) FROM calls")
    assert rows == [(len(batch) - 1 + 5, len(batch) - 1 + 5)]
    assert writer.written == len(batch) - 1 + 5 and writer.rejected == 1 and writer.dropped == 1
    assert ("ledger_rejected", 1) in faults
    assert writer.repaired >= 2 and faults.count(("ledger_repaired", 1)) == writer.repaired
    assert took < 10
    models = {row[0] for row in query(ledger, "SELECT request_model FROM calls")}
    assert models <= {good.request_model, "a?b"}
    attempts = {row[0] for row in query(ledger, "SELECT attempt FROM calls")}
    assert 10**20 not in attempts


def test_through_the_meter_the_faults_are_counted_by_kind(tmp_path: Path) -> None:
    """``Meter(ledger=...)``: a refused row is a metering fault the user can see (``m.faults``)."""
    good = _record()
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=tmp_path / "m.sqlite")
    assert m.ledger is not None
    m.ledger.put(good.replace(request_model="a\ud800b"))
    m.ledger.put(good.replace(outcome=None))
    m.ledger.put(good)
    assert m.close(timeout=20)
    assert m.faults == {"ledger_repaired": 1, "ledger_rejected": 1}
    assert query(str(tmp_path / "m.sqlite"), "SELECT count(*) FROM calls") == [(2,)]
