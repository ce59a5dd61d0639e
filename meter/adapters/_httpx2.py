"""Binds the stream logic to httpx2's stream base classes."""

from __future__ import annotations

import httpx2

from meter.adapters.streams import AsyncStreamLogic, SyncStreamLogic

ByteStream = httpx2.ByteStream
Response = httpx2.Response
"""What meter answers itself with (a budget's refusal), of the request's own stack."""
"""In-memory bodies (mock transports, pre-read responses) are metered at once, not wrapped."""


class SyncStream(SyncStreamLogic, httpx2.SyncByteStream):
    """A metered httpx2 sync response stream."""


class AsyncStream(AsyncStreamLogic, httpx2.AsyncByteStream):
    """A metered httpx2 async response stream."""
