"""Per-deployment, per-minute request and token counters behind the ``x-ratelimit-*`` headers.

Azure counts an estimate (prompt plus the requested maximum) against the
tokens-per-minute quota when the request arrives; the emulator charges the
planned usage, which it knows up front. The window is a fixed minute.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from meter.apps.emulator.config import Deployment

WINDOW_S = 60.0


@dataclass(frozen=True)
class Quota:
    """The headroom left after charging one request."""

    limit_requests: int
    remaining_requests: int
    limit_tokens: int
    remaining_tokens: int
    reset_s: float

    @property
    def exceeded(self) -> bool:
        return self.remaining_requests < 0 or self.remaining_tokens < 0


class RateCounter:
    """Counts requests and tokens per deployment in the current minute (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int, int]] = {}

    def charge(self, deployment: Deployment, tokens: int) -> Quota:
        """Charge one request of ``tokens`` and report what is left (negative: over quota)."""
        now = time.monotonic()
        with self._lock:
            start, requests, used = self._windows.get(deployment.name, (now, 0, 0))
            if now - start >= WINDOW_S:
                start, requests, used = now, 0, 0
            requests += 1
            used += tokens
            self._windows[deployment.name] = (start, requests, used)
        return Quota(
            limit_requests=deployment.rpm_limit,
            remaining_requests=deployment.rpm_limit - requests,
            limit_tokens=deployment.tpm_limit,
            remaining_tokens=deployment.tpm_limit - used,
            reset_s=max(0.0, WINDOW_S - (now - start)),
        )
