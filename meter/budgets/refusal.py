"""The answer meter sends itself when a hard budget refuses a call: an HTTP 429 no client retries.

The body has Azure OpenAI's error shape, ``{"error": {"code", "message", ...}}``, as Azure sends it for
its own 429s (``{"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation
... Please retry after 60 seconds ..."}}``; the Responses form adds ``"type"``), so every client that
reads Azure errors reads this one; ``code`` is ``budget_exceeded`` and ``type`` is
``insufficient_quota``, the type OpenAI gives its own "you exceeded your current quota" 429, which
clients already treat as "do not retry, out of money". ``param`` is ``null``; ``budget`` and
``reset_at`` name the budget and when it resets, for programs.

Why the headers, from the openai SDK's retry logic (openai/openai-python
``src/openai/_base_client.py``, ``BaseClient._should_retry`` and ``_parse_retry_after_header``):

- the SDK retries every 408, 409, 429 and 5xx by default, **unless** the response says
  ``x-should-retry: false`` ("If the server explicitly says whether or not to retry, obey"): that
  header is checked before the status code, so a 429 with it raises ``openai.RateLimitError`` at once,
  once, without retries (``true`` forces a retry; only the exact strings count);
- ``retry-after`` is read as seconds (or an HTTP date; ``retry-after-ms`` first): the SDK also gives up
  when it is above 2 minutes (``MAX_RETRY_AFTER_DELAY``), and other clients (the Azure SDKs, LiteLLM,
  plain HTTP tooling) take it as the time to wait: the seconds to the budget's reset;
- ``content-type: application/json``: the SDK parses the body into the exception
  (``err.body`` is the ``error`` object, ``err.code == "budget_exceeded"``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime

from meter.budgets.periods import as_utc
from meter.budgets.store import Refusal

STATUS = 429
CODE = "budget_exceeded"
TYPE = "insufficient_quota"


@dataclass(frozen=True, slots=True)
class RefusalAnswer:
    """An HTTP answer: status, headers (lower-case names, ASCII values) and the JSON body's bytes."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def retry_after_seconds(reset_at: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``reset_at``, rounded up, at least 1 (a ``retry-after`` of 0 means "now")."""
    seconds = (as_utc(reset_at) - as_utc(now)).total_seconds()
    return max(1, math.ceil(seconds))


def refusal_answer(refusal: Refusal, now: datetime | None = None) -> RefusalAnswer:
    """The 429 for ``refusal`` (``now`` defaults to the refusal's own time): body, ``x-should-retry: false``,
    ``retry-after`` in seconds to the reset, JSON content type. The budget's name may be any text: the
    body is ASCII JSON (``\\u`` escapes), and no header carries it."""
    reset = as_utc(refusal.reset_at)
    error = {
        "code": CODE,
        "message": refusal.message,
        "type": TYPE,
        "param": None,
        "budget": refusal.budget.name,
        "reset_at": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    body = json.dumps({"error": error}, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    headers = (
        ("content-type", "application/json"),
        ("x-should-retry", "false"),
        ("retry-after", str(retry_after_seconds(reset, refusal.at if now is None else now))),
        ("content-length", str(len(body))),
    )
    return RefusalAnswer(STATUS, headers, body)
