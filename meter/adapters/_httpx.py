"""Binds the stream logic to httpx's stream base classes."""

from __future__ import annotations

import httpx

from meter.adapters.streams import AsyncStreamLogic, SyncStreamLogic

ByteStream = httpx.ByteStream
Response = httpx.Response
"""What meter answers itself with (a budget's refusal), of the request's own stack."""
"""In-memory bodies (mock transports, pre-read responses) are metered at once, not wrapped."""


class SyncStream(SyncStreamLogic, httpx.SyncByteStream):
    """A metered httpx sync response stream."""


class AsyncStream(AsyncStreamLogic, httpx.AsyncByteStream):
    """A metered httpx async response stream."""
