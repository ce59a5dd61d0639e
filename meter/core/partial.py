"""Reading the parts of a JSON document that survive when its middle is gone.

An SSE event too big to keep whole (``sse.MAX_EVENT_BYTES``) reaches the
observers as its first and last bytes only. The start of a Responses terminal
event holds its type and the response's id, status and model; its end holds
the usage. ``leading_fields`` reads the members at the start of an object cut
short, ``last_object`` finds the last complete ``"key": {...}`` in a tail that
starts anywhere. Both are linear and never raise on junk: they return what
they could read. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

_WS = b" \t\r\n"
_SCALAR_END = re.compile(rb"[,}\]\s]")
MAX_NESTED_BYTES = 64 * 1024
"""Nested values up to this size are parsed whole (``incomplete_details``); bigger ones are skipped."""


def _skip_ws(data: bytes, i: int) -> int:
    n = len(data)
    while i < n and data[i] in _WS:
        i += 1
    return i


def _string_end(data: bytes, i: int) -> int:
    """Index just past the JSON string starting at ``data[i] == '"'``; -1 if it is cut off."""
    j = i + 1
    while True:
        j = data.find(b'"', j)
        if j < 0:
            return -1
        backslashes = 0
        k = j - 1
        while data[k] == 92:  # "\\"
            backslashes += 1
            k -= 1
        if backslashes % 2 == 0:
            return j + 1
        j += 1


def _value_end(data: bytes, i: int) -> int:
    """Index just past the JSON value starting at ``i``; -1 if it is cut off."""
    if i >= len(data):
        return -1
    c = data[i]
    if c == 34:  # '"'
        return _string_end(data, i)
    if c in b"{[":
        depth = 0
        j = i
        n = len(data)
        while j < n:
            c = data[j]
            if c == 34:
                j = _string_end(data, j)
                if j < 0:
                    return -1
                continue
            if c in b"{[":
                depth += 1
            elif c in b"}]":
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        return -1
    m = _SCALAR_END.search(data, i)
    return m.start() if m else -1


def leading_fields(data: bytes, into: str | None = None) -> dict[str, Any]:
    """The members of the JSON object at the start of ``data`` that are complete before it is cut.

    Scalars and small nested values are returned parsed; with ``into``, the
    member of that name that is an object is read the same way (also when it
    is cut), under its own key.
    """
    out: dict[str, Any] = {}
    i = _skip_ws(data, 0)
    if i >= len(data) or data[i] != 123:  # "{"
        return out
    i += 1
    try:
        while True:
            i = _skip_ws(data, i)
            if i >= len(data) or data[i] != 34:
                return out
            end = _string_end(data, i)
            if end < 0:
                return out
            key = json.loads(data[i:end])
            i = _skip_ws(data, end)
            if i >= len(data) or data[i] != 58:  # ":"
                return out
            i = _skip_ws(data, i + 1)
            if into is not None and key == into and i < len(data) and data[i] == 123:
                out[key] = leading_fields(data[i:])
                return out  # whatever follows the nested object is past the head anyway
            end = _value_end(data, i)
            if end < 0:
                return out
            if end - i <= MAX_NESTED_BYTES or data[i] not in b"{[":
                out[key] = json.loads(data[i:end])
            i = _skip_ws(data, end)
            if i >= len(data) or data[i] != 44:  # ","
                return out
            i += 1
    except (ValueError, RecursionError):
        return out


def last_object(data: bytes, key: bytes, tries: int = 4) -> dict[str, Any] | None:
    """The last complete ``"key": {...}`` object in ``data`` (which may start mid-document), parsed.

    Inside JSON strings quotes are escaped, so ``"key":`` here is a real key.
    The last few occurrences are tried, latest first, in case the last is cut.
    """
    needle = re.compile(rb'"' + re.escape(key) + rb'"\s*:\s*\{')
    starts = [m.end() - 1 for m in needle.finditer(data)]
    for start in reversed(starts[-tries:]):
        end = _value_end(data, start)
        if end < 0:
            continue
        try:
            obj = json.loads(data[start:end])
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def last_string(data: bytes, key: bytes) -> str | None:
    """The value of the last complete ``"key": "..."`` string member in ``data``."""
    needle = re.compile(rb'"' + re.escape(key) + rb'"\s*:\s*"')
    found = None
    for m in needle.finditer(data):
        found = m
    if found is None:
        return None
    start = found.end() - 1
    end = _string_end(data, start)
    if end < 0:
        return None
    try:
        value = json.loads(data[start:end])
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def member_value(data: bytes, key: str) -> tuple[int, int] | None:
    """Where the value of the top-level member ``key`` of the JSON object ``data`` lies: ``(start, end)``.

    The last such member wins, as it does for every JSON reader; ``None`` when the
    object has none (or is not a complete, plain object). Keys are compared
    after decoding, so an escaped key is found too.
    """
    found = None
    i = _skip_ws(data, 0)
    if i >= len(data) or data[i] != 123:
        return None
    i = _skip_ws(data, i + 1)
    if i < len(data) and data[i] == 125:  # "{}"
        return None
    try:
        while True:
            if i >= len(data) or data[i] != 34:
                return None
            end = _string_end(data, i)
            if end < 0:
                return None
            name = json.loads(data[i:end])
            i = _skip_ws(data, end)
            if i >= len(data) or data[i] != 58:
                return None
            start = _skip_ws(data, i + 1)
            stop = _value_end(data, start)
            if stop < 0:
                return None
            if name == key:
                found = (start, stop)
            i = _skip_ws(data, stop)
            if i < len(data) and data[i] == 125:
                return found
            if i >= len(data) or data[i] != 44:
                return None
            i = _skip_ws(data, i + 1)
    except (ValueError, RecursionError):
        return None
