"""Everything the emulator remembers between requests, in one place.

Kept apart from the ASGI app so the ``Emulator`` that runs the server in a
thread can reach the same ledger and fault queue the handlers use.
"""

from __future__ import annotations

from meter.apps.emulator.batch import BatchStore
from meter.apps.emulator.cache import PromptCache
from meter.apps.emulator.faults import FaultQueue
from meter.apps.emulator.ledger import Ledger
from meter.apps.emulator.ratelimit import RateCounter
from meter.apps.emulator.store import ResponseStore
from meter.apps.emulator.tools import ContainerSessions


class EmulatorState:
    """The ledger, injected faults, prompt cache, rate counters, stored responses, files and batches."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.faults = FaultQueue()
        self.cache = PromptCache()
        self.rates = RateCounter()
        self.store = ResponseStore()
        self.batches = BatchStore()
        self.containers = ContainerSessions()
