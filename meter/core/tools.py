"""The built-in tools a call used: counted from its output items, since the usage object leaves them out.

Azure and OpenAI bill the Responses API's built-in tools apart from tokens: web search and file
search per call, code interpreter per container session (one container serves many calls, so
sessions are distinct ``container_id``s), the image tool as image tokens, computer use and remote
MCP as tokens. What a call used is in its output items: ``response.output[]`` in a JSON body and a
terminal event, and each ``response.output_item.done`` event as a stream goes by (so a stream cut
off early still counts what it had shown). An item is known by its ``id`` (else its position), so
the same item seen in an event and again in the terminal object counts once. A chat completion
answered by a web search model (``gpt-4o-search-preview``, ``gpt-5-search-api``) made one search.

Pure: no I/O. The stream path reads an event's item head only (an image tool's event carries the
whole image, megabytes of base64): the item's type and container id are found by a bounded scan,
not a parse.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from meter.core.record import USAGE_KINDS, Usage

ITEM_KINDS: Mapping[str, str] = {
    "web_search_call": "web_search_calls",
    "file_search_call": "file_search_calls",
    "code_interpreter_call": "code_interpreter_sessions",
    "image_generation_call": "image_generation_calls",
    "computer_call": "computer_calls",
    "mcp_call": "mcp_calls",
}
"""Output item type -> the usage kind that counts it (every kind the catalogue counts from the output)."""

SESSION_KIND = "code_interpreter_sessions"
"""Counted by distinct container, not by item."""

_HEAD_BYTES = 4096
"""How much of an ``output_item.done`` event is scanned for the item's type and container."""
_ITEM_TYPE = re.compile(rb'"item"\s*:\s*\{[^{}]*?"type"\s*:\s*"([a-z_]{1,40})"')
_CONTAINER = re.compile(rb'"container_id"\s*:\s*"([^"\\]{1,200})"')
_ITEM_ID = re.compile(rb'"item"\s*:\s*\{[^{}]*?"id"\s*:\s*"([^"\\]{1,200})"')
_OUTPUT_INDEX = re.compile(rb'"output_index"\s*:\s*(\d{1,9})')

_SEARCH_MODELS = ("-search-preview", "-search-api")

MAX_ITEMS = 10_000
"""Items remembered per call: a response listing more is not a real one (the rest are not counted)."""


class ToolItems:
    """The tool items one call has shown so far, by item key: ``(kind, container id)``."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: dict[str, tuple[str, str | None]] = {}

    def add(self, key: str, item_type: str, container: str | None) -> None:
        kind = ITEM_KINDS.get(item_type)
        if kind is not None and (key in self.items or len(self.items) < MAX_ITEMS):
            self.items[key] = (kind, container)


    def add_event(self, data: bytes) -> None:
        """One ``response.output_item.done`` event's payload (its head is enough)."""
        head = data[:_HEAD_BYTES]
        found = _ITEM_TYPE.search(head)
        if found is None:
            return
        item_type = found.group(1).decode("ascii")
        if item_type not in ITEM_KINDS:
            return
        item_id = _ITEM_ID.search(head)
        index = _OUTPUT_INDEX.search(head)
        if item_id is not None:
            key = item_id.group(1).decode("utf-8", "replace")
        elif index is not None:
            key = f"#{int(index.group(1))}"
        else:
            return  # neither an id nor a position: it cannot be told from the same item in the terminal object
        container = _CONTAINER.search(data[:_HEAD_BYTES * 4])
        self.add(key, item_type, container.group(1).decode("utf-8", "replace") if container else None)

    def counts(self) -> tuple[dict[str, int], tuple[str, ...]]:
        """Calls per kind, sessions counted by distinct container (an item without one is a session of
        its own), and the container ids (the hub counts a container once across calls)."""
        counts: dict[str, int] = {}
        containers: dict[str, None] = {}
        loose = 0
        for kind, container in self.items.values():
            if kind == SESSION_KIND:
                if container is None:
                    loose += 1
                else:
                    containers[container] = None
            else:
                counts[kind] = counts.get(kind, 0) + 1
        sessions = len(containers) + loose
        if sessions:
            counts[SESSION_KIND] = sessions
        return counts, tuple(containers)


def from_output(output: Any, items: ToolItems | None) -> ToolItems | None:
    """``items`` with the tool items of a Responses object's ``output`` list added (a JSON body or a
    terminal event); made only when there is one (most responses use no tool)."""
    if type(output) is not list:
        return items
    for index, item in enumerate(output):
        if type(item) is not dict:
            continue
        item_type = item.get("type")
        if type(item_type) is not str or item_type not in ITEM_KINDS:
            continue
        if items is None:
            items = ToolItems()
        item_id = item.get("id")
        container = item.get("container_id")
        items.add(item_id if type(item_id) is str and item_id else f"#{index}", item_type,
                  container if type(container) is str and container else None)
    return items


def is_search_model(model: str | None) -> bool:
    """A chat model whose every answer is a web search (billed as one call): ``gpt-4o-search-preview``,
    ``gpt-4o-mini-search-preview-2025-03-11``, ``gpt-5-search-api``."""
    return model is not None and any(marker in model for marker in _SEARCH_MODELS)


def with_counts(usage: Usage, counts: Mapping[str, int]) -> Usage:
    """``usage`` with the tool counts set (the same object when there are none)."""
    if not counts:
        return usage
    return dataclasses.replace(usage, **counts)


OUTPUT_KINDS: tuple[str, ...] = tuple(k.name for k in USAGE_KINDS if k.counted_from == "output")
"""The kinds this module counts (the catalogue's ``counted_from="output"``)."""

if set(OUTPUT_KINDS) != set(ITEM_KINDS.values()):  # pragma: no cover - a declaration error, caught at import
    raise RuntimeError("meter.core.tools: ITEM_KINDS and the catalogue's output kinds disagree")


def counted(usage: Usage | None, items: ToolItems | None, api: str, model: str | None
            ) -> tuple[Usage | None, tuple[str, ...]]:
    """A call's usage with its tool counts, and the code interpreter containers it used.

    Counts go on a known (or estimated) usage only: a call whose usage is unknown keeps it unknown
    rather than a usage of zero tokens and some tool calls.
    """
    if usage is None:
        return None, ()
    if items is not None:
        counts, containers = items.counts()
        return with_counts(usage, counts), containers
    if api == "chat" and is_search_model(model):
        return dataclasses.replace(usage, web_search_calls=1), ()
    return usage, ()
