"""Opt-in capture of prompt and completion text, capped, in the GenAI message shapes.

Off unless the user asks, through ``Meter(capture_content=True)`` or the
conventions' own switch ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
(``SPAN_ONLY``, ``SPAN_AND_EVENT`` or the legacy ``true``). When off, meter
keeps no request body and collects no output text at all.
"""

from __future__ import annotations

import json
import os
from typing import Any

from meter import names

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_ON = frozenset({"span_only", "span_and_event", "true", "1"})


def capture_from_env() -> bool:
    """The conventions' switch: content goes on spans only for the values that say so."""
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in _ON


TRUNCATED = "…[truncated]"


def _cap_texts(messages: list[dict[str, Any]], limit: int) -> str:
    """The messages as JSON, their texts cut to ``limit`` characters in all: the texts are cut, never
    the JSON, so the attribute always parses (the structure's own few bytes come on top)."""
    left = limit
    for message in messages:
        for part in message["parts"]:
            text: str = part["content"]
            if len(text) > left:
                part["content"] = text[:left] + TRUNCATED
                left = 0
            else:
                left -= len(text)
    return json.dumps(messages, ensure_ascii=False)


def input_messages(body: dict[str, Any] | None, limit: int) -> str | None:
    """``gen_ai.input.messages`` as JSON: chat ``messages`` or Responses ``input``/``instructions``."""
    if not body:
        return None
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "parts": [{"type": "text", "content": body["instructions"]}]})
    source = body.get("messages", body.get("input"))
    if isinstance(source, str):
        messages.append({"role": "user", "parts": [{"type": "text", "content": source}]})
    elif isinstance(source, list):
        for item in source:
            if not isinstance(item, dict):
                continue
            content = item.get("content")
            texts = [content] if isinstance(content, str) else [
                p.get("text") for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
            ] if isinstance(content, list) else []
            messages.append({"role": str(item.get("role", "user")),
                             "parts": [{"type": "text", "content": t} for t in texts]})
    if not messages:
        return None
    return _cap_texts(messages, limit)


def output_messages(texts: list[str] | None, finish_reasons: tuple[str, ...] | None, limit: int) -> str | None:
    """``gen_ai.output.messages`` as JSON: the assistant's text, as streamed or returned."""
    if not texts:
        return None
    message = {"role": "assistant", "parts": [{"type": "text", "content": "".join(texts)}],
               "finish_reason": finish_reasons[0] if finish_reasons else None}
    return _cap_texts([message], limit)


def message_attributes(request_body: dict[str, Any] | None, output_text: tuple[str, ...] | None,
                       finish_reasons: tuple[str, ...] | None, limit: int) -> dict[str, str]:
    """``gen_ai.input.messages`` / ``gen_ai.output.messages`` for a span or an event (only call with capture on)."""
    out: dict[str, str] = {}
    text_in = input_messages(request_body, limit)
    text_out = output_messages(list(output_text) if output_text else None, finish_reasons, limit)
    if text_in:
        out[names.INPUT_MESSAGES] = text_in
    if text_out:
        out[names.OUTPUT_MESSAGES] = text_out
    return out
