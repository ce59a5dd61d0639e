"""Prompt caching: a prompt that shares a prefix with an earlier one is partly cached.

Azure caches whole blocks of a prompt prefix (128-token increments), so the
cached count is the longest prefix shared with any remembered prompt of the
same deployment, rounded down to whole blocks. Deterministic for a given order
of requests, and always a subset of the prompt.
"""

from __future__ import annotations

import threading
from collections import deque

from meter.apps.emulator.prompt import Tokens

_REMEMBERED = 256


def _shared_prefix(a: Tokens, b: Tokens) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PromptCache:
    """Per-deployment memory of recent prompts (bounded; thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prompts: dict[str, deque[Tokens]] = {}

    def lookup(self, deployment: str, prompt: Tokens, block: int) -> int:
        """Cached tokens for ``prompt``; the prompt is remembered for later requests."""
        with self._lock:
            seen = self._prompts.setdefault(deployment, deque(maxlen=_REMEMBERED))
            longest = max((_shared_prefix(prompt, earlier) for earlier in seen), default=0)
            seen.append(prompt)
        if block <= 0:
            return longest
        return (longest // block) * block
