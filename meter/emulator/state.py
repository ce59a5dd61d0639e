"""Everything the emulator remembers between requests, in one place.

Kept apart from the ASGI app so the ``Emulator`` that runs the server in a
thread can reach the same ledger and fault queue the handlers use.
"""

from __future__ import annotations

from meter.emulator.cache import PromptCache
from meter.emulator.faults import FaultQueue
from meter.emulator.ledger import Ledger
from meter.emulator.ratelimit import RateCounter
from meter.emulator.store import ResponseStore


class EmulatorState:
    """The ledger, injected faults, prompt cache, rate counters and stored responses."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.faults = FaultQueue()
        self.cache = PromptCache()
        self.rates = RateCounter()
        self.store = ResponseStore()
