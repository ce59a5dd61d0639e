"""The Responses API in Azure's shapes: the response object and its event sequence.

The stream is ``response.created`` -> ``response.in_progress`` -> output item and
content part added -> one ``response.output_text.delta`` per token -> the
``done`` events -> ``response.completed`` (or ``response.incomplete`` when
``max_output_tokens`` cut it short), with strictly increasing
``sequence_number`` and the usage only in the terminal event. A reasoning
deployment first emits a reasoning item (no text: its tokens are hidden); the
built-in tool calls (``meter.apps.emulator.tools``) come next, each announced,
progressing and done, then the message. ``service_tier`` is the tier asked for
(``auto`` when none) until the response is done, then the tier that served it.
Azure echoes the deployment name as ``model`` here, not the dated model id.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from meter.apps.emulator.filters import responses_content_filters
from meter.apps.emulator.generation import Generation
from meter.apps.emulator.sse import Frame, event_frame
from meter.apps.emulator.store import Event
from meter.apps.emulator.tools import ToolCall


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex + uuid.uuid4().hex[:18]


class ResponseAnswer:
    """One Response being answered: the ids and request echoes shared by all its events."""

    def __init__(self, deployment: str, reasoning: bool, generation: Generation, request: dict[str, Any],
                 tools: list[ToolCall] | None = None, service_tier: str = "default") -> None:
        self.deployment = deployment
        self.reasoning = reasoning
        self.generation = generation
        self.request = request
        self.tools = tools or []
        self.service_tier = service_tier
        """The tier that serves the response (``meter.apps.emulator.tools.served_tier``)."""
        self.id = _id("resp_")
        self.message_id = _id("msg_")
        self.reasoning_id = _id("rs_")
        self.created_at = int(time.time())

    @property
    def final_status(self) -> str:
        return "incomplete" if self.generation.truncated else "completed"

    def usage(self) -> dict[str, Any]:
        g = self.generation
        return {
            "input_tokens": g.prompt_tokens,
            "input_tokens_details": {"cached_tokens": g.cached_tokens},
            "output_tokens": g.output_tokens,
            "output_tokens_details": {"reasoning_tokens": g.reasoning_tokens},
            "total_tokens": g.total_tokens,
        }

    def response(self, status: str) -> dict[str, Any]:
        """The response object at ``status`` (usage and output only once finished)."""
        done = status in ("completed", "incomplete")
        request = self.request
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": bool(request.get("background", False)),
            "content_filters": responses_content_filters(self._prompt_chars(), len(self.generation.text))
            if done else None,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "max_tool_calls": request.get("max_tool_calls"),
            "model": self.deployment,
            "output": self._output(done) if done else [],
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "previous_response_id": request.get("previous_response_id"),
            "prompt_cache_key": request.get("prompt_cache_key"),
            "reasoning": {"effort": "medium" if self.reasoning else None, "summary": None},
            "safety_identifier": request.get("safety_identifier"),
            "service_tier": self.service_tier if done else request.get("service_tier") or "auto",
            "store": request.get("store", True),
            "temperature": request.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools", []),
            "top_logprobs": request.get("top_logprobs", 0),
            "top_p": request.get("top_p", 1.0),
            "truncation": request.get("truncation", "disabled"),
            "usage": self.usage() if done else None,
            "user": request.get("user"),
            "metadata": request.get("metadata") or {},
        }

    def _prompt_chars(self) -> int:
        return len(str(self.request.get("input", ""))) + len(str(self.request.get("instructions") or ""))

    def _reasoning_item(self) -> dict[str, Any]:
        return {"id": self.reasoning_id, "type": "reasoning", "summary": []}

    def _part(self, text: str) -> dict[str, Any]:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}

    def _message(self, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.message_id, "type": "message", "status": status, "content": content, "role": "assistant"}

    def _output(self, done: bool) -> list[dict[str, Any]]:
        status = self.final_status if done else "in_progress"
        items = [self._reasoning_item()] if self.reasoning else []
        items += [tool.item() for tool in self.tools]
        items.append(self._message(status, [self._part(self.generation.text)]))
        return items

    def events(self) -> list[Event]:
        """Every event of the stream, numbered from 0."""
        raw: list[dict[str, Any]] = [
            {"type": "response.created", "response": self.response("in_progress")},
            {"type": "response.in_progress", "response": self.response("in_progress")},
        ]
        index = 0
        if self.reasoning:
            raw.append({"type": "response.output_item.added", "output_index": 0, "item": self._reasoning_item()})
            raw.append({"type": "response.output_item.done", "output_index": 0, "item": self._reasoning_item()})
            index = 1
        for tool in self.tools:
            raw.append({"type": "response.output_item.added", "output_index": index, "item": tool.item(done=False)})
            raw += [{**e, "output_index": index} for e in tool.progress()]
            raw.append({"type": "response.output_item.done", "output_index": index, "item": tool.item()})
            index += 1
        where = {"item_id": self.message_id, "output_index": index, "content_index": 0}
        text = self.generation.text
        raw.append({"type": "response.output_item.added", "output_index": index,
                    "item": self._message("in_progress", [])})
        raw.append({"type": "response.content_part.added", **where, "part": self._part("")})
        options = self.request.get("stream_options")
        obfuscate = not (isinstance(options, dict) and options.get("include_obfuscation") is False)
        for delta in self.generation.deltas:
            event: dict[str, Any] = {"type": "response.output_text.delta", **where, "delta": delta, "logprobs": []}
            if obfuscate:
                event["obfuscation"] = "x" * max(1, 16 - len(delta))
            raw.append(event)
        raw.append({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
        raw.append({"type": "response.content_part.done", **where, "part": self._part(text)})
        raw.append({"type": "response.output_item.done", "output_index": index,
                    "item": self._message(self.final_status, [self._part(text)])})
        raw.append({"type": f"response.{self.final_status}", "response": self.response(self.final_status)})
        return [{"type": e["type"], "sequence_number": n, **{k: v for k, v in e.items() if k != "type"}}
                for n, e in enumerate(raw)]


def event_frames(events: list[Event] | tuple[Event, ...]) -> list[Frame]:
    """SSE frames of ``events``; text deltas are marked so they get paced."""
    return [event_frame(e, token=e["type"] == "response.output_text.delta") for e in events]
