"""Stored Responses, so ``GET /responses/{id}`` can retrieve them and resume their streams.

Bounded (oldest evicted first) because the emulator may run for a whole demo.
A streamed response keeps its events, so a resumed stream replays the very
same frames, with the very same usage, as the original.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from meter.apps.emulator.config import Deployment
from meter.apps.emulator.prompt import Tokens

Event = dict[str, Any]


@dataclass(frozen=True)
class StoredResponse:
    deployment: Deployment
    response: dict[str, Any]
    events: tuple[Event, ...] | None
    prompt: Tokens = ()
    reply: str = ""
    container_id: str | None = None
    """The code interpreter container of the conversation, which the next turn of the chain reuses."""


class ResponseStore:
    """Response id -> stored response (thread-safe, at most ``size`` entries)."""

    def __init__(self, size: int = 1024) -> None:
        self._lock = threading.Lock()
        self._size = size
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()

    def put(self, response_id: str, item: StoredResponse) -> None:
        with self._lock:
            self._items[response_id] = item
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            return self._items.get(response_id)
