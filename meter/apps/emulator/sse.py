"""Server-sent-event framing and pacing.

Each frame is yielded as its own body chunk, which uvicorn writes to the socket
at once, so a client sees a real stream (and a meter can measure time to first
token). Only content frames are paced: ``ttft_s`` before the first one,
``1 / tokens_per_s`` between the later ones.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

EVENT_STREAM = "text/event-stream; charset=utf-8"


def dumps(value: Any) -> str:
    """Compact JSON as Azure sends it (no spaces, non-ASCII kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Frame:
    """One SSE event; ``token`` marks a content delta (the ones that are paced)."""

    data: bytes
    token: bool = False


def data_frame(payload: Any, token: bool = False) -> Frame:
    """A ``data:``-only frame (chat completions)."""
    text = payload if isinstance(payload, str) else dumps(payload)
    return Frame(f"data: {text}\n\n".encode(), token)


def event_frame(event: dict[str, Any], token: bool = False) -> Frame:
    """An ``event: <type>`` + ``data:`` frame (Responses)."""
    return Frame(f"event: {event['type']}\ndata: {dumps(event)}\n\n".encode(), token)


async def paced(frames: Iterable[Frame], ttft_s: float, tokens_per_s: float) -> AsyncIterator[bytes]:
    """Yield the frames, sleeping before content frames as configured."""
    first = True
    gap = 1.0 / tokens_per_s if tokens_per_s > 0 else 0.0
    for frame in frames:
        if frame.token:
            delay = ttft_s if first else gap
            first = False
            if delay > 0:
                await asyncio.sleep(delay)
        yield frame.data


def generation_time(deltas: int, ttft_s: float, tokens_per_s: float) -> float:
    """How long the whole generation takes, which a non-streaming answer waits out."""
    if deltas == 0:
        return 0.0
    gap = 1.0 / tokens_per_s if tokens_per_s > 0 else 0.0
    return ttft_s + gap * (deltas - 1)
