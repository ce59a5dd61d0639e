"""The deterministic "model": how long the reply is, its text, and its usage.

Everything is derived from a hash of the prompt, so the same request always
gets the same answer, and the usage is computed before the first byte goes out.
That is what lets the emulator promise its usage matches what it streamed:
completion tokens are exactly the content deltas, plus hidden reasoning tokens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from meter.apps.emulator.config import Deployment
from meter.apps.emulator.prompt import Tokens

_WORDS = (
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod",
    "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim", "ad", "minim",
    "veniam", "quis", "nostrud", "exercitation", "ullamco", "laboris", "nisi", "aliquip", "ex", "ea",
    "commodo", "consequat", "duis", "aute", "irure", "in", "reprehenderit", "voluptate", "velit", "esse",
    "cillum", "fugiat", "nulla", "pariatur", "excepteur", "sint", "occaecat", "cupidatat", "non", "proident",
    "sunt", "culpa", "qui", "officia", "deserunt", "mollit", "anim", "id", "est", "laborum",
)

MIN_REPLY = 20
MAX_REPLY = 60


def digest(tokens: Tokens) -> int:
    """A stable 64-bit hash of the prompt (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(tokens).encode()).digest()[:8], "big")


@dataclass(frozen=True)
class Generation:
    """One planned answer: the deltas to send and the usage to bill."""

    prompt_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    deltas: tuple[str, ...]
    truncated: bool

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    @property
    def output_tokens(self) -> int:
        """Completion tokens: every streamed delta plus the hidden reasoning."""
        return len(self.deltas) + self.reasoning_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


def _reply(seed: int, count: int, finished: bool) -> tuple[str, ...]:
    start = seed % len(_WORDS)
    words = [_WORDS[(start + 7 * i) % len(_WORDS)] for i in range(count)]
    if not words:
        return ()
    words[0] = words[0].capitalize()
    if finished:
        words[-1] += "."
    return tuple(w if i == 0 else " " + w for i, w in enumerate(words))


def plan(deployment: Deployment, prompt: Tokens, limit: int | None, cached_tokens: int = 0) -> Generation:
    """Plan the answer to ``prompt``, capped at ``limit`` output tokens (reasoning counts).

    A reasoning deployment thinks first, so under a tight limit the reasoning
    eats the budget and the visible reply shrinks, as it does on the real service.
    """
    seed = digest(prompt)
    wanted = MIN_REPLY + seed % (MAX_REPLY - MIN_REPLY + 1)
    reasoning = 16 + (seed >> 16) % 49 if deployment.reasoning else 0
    truncated = False
    if limit is not None:
        budget = max(0, limit)
        truncated = reasoning + wanted > budget
        reasoning = min(reasoning, budget)
        wanted = min(wanted, budget - reasoning)
    return Generation(
        prompt_tokens=len(prompt),
        cached_tokens=min(cached_tokens, len(prompt)),
        reasoning_tokens=reasoning,
        deltas=_reply(seed, wanted, not truncated),
        truncated=truncated,
    )
