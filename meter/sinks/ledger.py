"""The ledger sink: every finished record goes to the ledger writer's queue (never waits, never raises)."""

from __future__ import annotations

from typing import Any

from meter.core.record import CallRecord
from meter.core.start import CallStart
from meter.ledger.writer import LedgerWriter


class LedgerSink:
    def __init__(self, writer: LedgerWriter) -> None:
        self.writer = writer

    def start(self, start: CallStart) -> None:
        """No per-call state: the record carries everything the ledger keeps."""

    def finish(self, record: CallRecord, state: Any) -> None:
        self.writer.put(record)

    def fault(self, kind: str) -> None:
        """Faults are counted by the meter and the Prometheus sink."""
