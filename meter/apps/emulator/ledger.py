"""The emulator's own bill: one entry per answered request.

This is the ground truth a metering test compares against: what the emulator
charged, whether or not the caller's response carried usage (a stream without
``include_usage`` is still billed, and so is a prompt the content filter refused).
"""

from __future__ import annotations

import threading
from typing import Any

Entry = dict[str, Any]


class Ledger:
    """An append-only list of entries; ``entries`` is the live list (appends are locked)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[Entry] = []

    def add(self, entry: Entry) -> None:
        with self._lock:
            self.entries.append(entry)

    def snapshot(self) -> list[Entry]:
        with self._lock:
            return list(self.entries)
