"""Binds the stream logic to httpx's stream base classes."""

from __future__ import annotations

import httpx

from meter.adapters.streams import AsyncStreamLogic, SyncStreamLogic


class SyncStream(SyncStreamLogic, httpx.SyncByteStream):
    """A metered httpx sync response stream."""


class AsyncStream(AsyncStreamLogic, httpx.AsyncByteStream):
    """A metered httpx async response stream."""
