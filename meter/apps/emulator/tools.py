"""Responses built-in tools and service tiers, in the shapes the recordings show.

A request whose ``tools`` lists ``web_search`` (or ``web_search_preview``), ``file_search``,
``code_interpreter`` or ``image_generation`` gets one call of each, as output items before the
message: ``web_search_call``, ``file_search_call``, ``code_interpreter_call`` (with its
``container_id``) and ``image_generation_call`` (a 1x1 PNG as its base64 ``result``). A stream
shows each item with ``response.output_item.added``, the tool's own progress events and
``response.output_item.done``, as the service does. ``tool_choice: "none"`` calls no tool.

Code interpreter runs in a container: the one the request names (``container: "cntr_..."``),
else the one of the ``previous_response_id`` chain, else a new one, so the calls of one
conversation share a container (one session, billed once) as on the service.

What the tools found is input to the model: each call adds a few context tokens to the prompt
(more for a search than for code), so a tool turn bills more input, deterministically.

``served_tier`` decides the service tier that answers: ``auto`` is served at ``priority`` where
the deployment serves it, else ``default``; ``priority`` falls back to ``default`` when the
deployment's quota for the minute is nearly used up (the emulator's "capacity is short").
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from meter.apps.emulator.config import Deployment
from meter.apps.emulator.ratelimit import Quota

TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVQYV2NgAAIAAAUAAarVyFEAAAAASUVORK5CYII="
"""A 1x1 PNG: the image tools' and image endpoints' ``result`` / ``b64_json`` (a recording's own)."""

TIERS = ("auto", "default", "flex", "priority")
"""The ``service_tier`` values a request may ask for."""
PRIORITY_RESERVE = 0.1
"""Below this share of the minute's tokens left, a priority request is served at ``default``."""

_CONTEXT = {"web_search_call": 48, "file_search_call": 32, "code_interpreter_call": 16, "image_generation_call": 8}
"""Context tokens a tool call's result adds to the prompt."""
_PREFIX = {"web_search_call": "ws_", "file_search_call": "fs_", "code_interpreter_call": "ci_",
           "image_generation_call": "ig_"}
_TOOL_ITEMS = {"web_search": "web_search_call", "web_search_preview": "web_search_call",
               "web_search_preview_2025_03_11": "web_search_call", "file_search": "file_search_call",
               "code_interpreter": "code_interpreter_call", "image_generation": "image_generation_call"}


def item_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex + uuid.uuid4().hex[:18]


def new_container() -> str:
    return "cntr_" + uuid.uuid4().hex + uuid.uuid4().hex[:16]


@dataclass
class ToolCall:
    """One built-in tool call of a response: its item, finished and as first announced."""

    type: str
    id: str
    query: str
    container_id: str | None = None
    image: dict[str, Any] = field(default_factory=dict)

    def item(self, done: bool = True) -> dict[str, Any]:
        status = "completed" if done else "in_progress"
        base: dict[str, Any] = {"id": self.id, "type": self.type, "status": status}
        if self.type == "web_search_call":
            action: dict[str, Any] = {"type": "search"}
            if done:
                action.update({"queries": [self.query], "query": self.query})
            return {**base, "action": action}
        if self.type == "file_search_call":
            return {**base, "queries": [self.query] if done else [], "results": None}
        if self.type == "code_interpreter_call":
            return {**base, "code": self.code if done else "", "container_id": self.container_id, "outputs": None}
        image = {"background": "opaque", "output_format": self.image.get("output_format", "png"),
                 "quality": self.image.get("quality", "low"), "size": self.image.get("size", "1024x1024")}
        if done:
            return {**base, **image, "result": TINY_PNG, "revised_prompt": self.query}
        return {**base, **image}

    @property
    def code(self) -> str:
        return f"# {self.query[:60]}\nprint(len({self.query[:40]!r}))"

    def progress(self) -> list[dict[str, Any]]:
        """The tool's own events between ``output_item.added`` and ``.done`` (without the output index)."""
        name = self.type
        where = {"item_id": self.id}
        if name == "code_interpreter_call":
            return [{"type": "response.code_interpreter_call.in_progress", **where},
                    {"type": "response.code_interpreter_call_code.delta", **where, "delta": self.code},
                    {"type": "response.code_interpreter_call_code.done", **where, "code": self.code},
                    {"type": "response.code_interpreter_call.interpreting", **where},
                    {"type": "response.code_interpreter_call.completed", **where}]
        middle = "generating" if name == "image_generation_call" else "searching"
        return [{"type": f"response.{name}.{step}", **where} for step in ("in_progress", middle, "completed")]

    @property
    def context_tokens(self) -> tuple[str, ...]:
        return tuple(f"<|{self.type}:{i}|>" for i in range(_CONTEXT[self.type]))


def tool_calls(request: dict[str, Any], query: str, chain_container: str | None) -> list[ToolCall]:
    """The built-in tool calls the emulated model makes for ``request``: one per tool it was given."""
    tools = request.get("tools")
    if not isinstance(tools, list) or request.get("tool_choice") == "none":
        return []
    calls: list[ToolCall] = []
    seen: set[str] = set()
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind = _TOOL_ITEMS.get(str(tool.get("type")))
        if kind is None or kind in seen:
            continue
        seen.add(kind)
        call = ToolCall(kind, item_id(_PREFIX[kind]), query)
        if kind == "code_interpreter_call":
            named = tool.get("container")
            call.container_id = named if isinstance(named, str) and named else chain_container or new_container()
        elif kind == "image_generation_call":
            call.image = {k: tool[k] for k in ("output_format", "quality", "size") if isinstance(tool.get(k), str)}
        calls.append(call)
    return calls


def requested_tier(body: dict[str, Any]) -> tuple[str | None, bool]:
    """The ``service_tier`` a request asks for (``None``: none), and whether the value is one it may ask."""
    value = body.get("service_tier")
    if value is None:
        return None, True
    return (value, True) if value in TIERS else (str(value), False)


def served_tier(requested: str | None, deployment: Deployment, quota: Quota | None) -> str:
    """The tier that serves a request that asked for ``requested`` (see the module docstring)."""
    if requested in ("priority", "auto") and "priority" in deployment.tiers:
        short = quota is not None and quota.remaining_tokens < quota.limit_tokens * PRIORITY_RESERVE
        return "default" if short else "priority"
    if requested == "flex" and "flex" in deployment.tiers:
        return "flex"
    return "default"


_KINDS = {"web_search_call": "web_search_calls", "file_search_call": "file_search_calls",
          "code_interpreter_call": "code_interpreter_sessions", "image_generation_call": "image_generation_calls"}


class ContainerSessions:
    """Code interpreter containers the emulator has billed: a session is billed once, when it opens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def billed(self, calls: list[ToolCall]) -> dict[str, int]:
        """The tool calls of one answer as its bill: calls per tool, code interpreter by new container."""
        counts: dict[str, int] = {}
        with self._lock:
            for call in calls:
                if call.type == "code_interpreter_call":
                    if call.container_id in self._seen:
                        continue
                    self._seen.add(str(call.container_id))
                counts[_KINDS[call.type]] = counts.get(_KINDS[call.type], 0) + 1
        return counts
