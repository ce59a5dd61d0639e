"""Injected failures: "the next N requests (to this deployment) fail with status S".

Tests and the demo use this to exercise retries and error metering without
waiting for real throttling. Faults are consumed in the order they were added.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class _Fault:
    status: int
    remaining: int
    deployment: str | None


class FaultQueue:
    """Pending injected failures (thread-safe: armed from tests, consumed by the server)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def add(self, status: int, count: int, deployment: str | None) -> None:
        if count > 0:
            with self._lock:
                self._faults.append(_Fault(status, count, deployment))

    def take(self, deployment: str) -> int | None:
        """The status to fail this request with, or ``None`` to answer normally."""
        with self._lock:
            for fault in self._faults:
                if fault.deployment is None or fault.deployment == deployment:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault.status
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
