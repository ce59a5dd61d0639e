"""The request side: what the body says, and the one rewrite meter may make.

The only change meter ever makes to a request is adding
``"stream_options": {"include_usage": true}`` to a streaming chat request that
did not set it, on endpoints known to accept it. Without it a chat stream
carries no usage at all; with it on an old Azure api-version the call fails
with HTTP 400, so the rule is conservative: unknown means "do not touch".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from meter.core import partial
from meter.core.route import Route
from meter.core.tiers import tier_name
from meter.core.units import image_variant

# Azure GA 2024-06-01 and earlier reject stream_options with HTTP 400; 2024-08-01-preview
# is the first api-version recorded to accept it (facts: azure-wire-format.md §5).
_FIRST_DATE_WITH_STREAM_OPTIONS = "2024-08-01"
_DATED_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:-preview)?$")
_UNDATED_ACCEPTING = frozenset({"v1", "preview", "latest"})

_INCLUDE_USAGE = b'"stream_options":{"include_usage":true}'
_INCLUDE_USAGE_MEMBER = b'"include_usage":true'


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """Fields read from a request body (all optional: a body may be absent or not JSON)."""

    model: str | None = None
    stream: bool = False
    include_usage: bool | None = None
    """``stream_options.include_usage`` as sent: ``None`` when the caller did not set it."""
    background: bool = False
    choices: int = 1
    """Chat ``n``: how many choices a stream interleaves."""
    service_tier: str | None = None
    """The ``service_tier`` asked for (folded by ``tiers.tier_name``)."""
    input_characters: int | None = None
    """The length of a string ``input`` (what a speech request asks to be spoken, billed per character)."""
    image_variant: str | None = None
    """An image request's price variant (``units.image_variant``: its quality and size)."""


def parse_body(body: bytes | None) -> tuple[RequestInfo, dict[str, Any] | None]:
    """Read the fields meter needs; returns the parsed object too (for estimates and content capture)."""
    if not body:
        return RequestInfo(), None
    try:
        obj = json.loads(body)
    except RecursionError:
        # Nested too deep to parse (~1,000 levels): still metered, from what needs no parse.
        return RequestInfo(model=model_hint(body), stream=stream_hint(body)), None
    except (ValueError, UnicodeDecodeError):
        return RequestInfo(), None
    if not isinstance(obj, dict):
        return RequestInfo(), None
    model = obj.get("model")
    options = obj.get("stream_options")
    include_usage = options.get("include_usage") if isinstance(options, dict) else None
    return (
        RequestInfo(
            model=model if isinstance(model, str) and model else None,
            stream=obj.get("stream") is True,
            include_usage=include_usage if isinstance(include_usage, bool) else None,
            background=obj.get("background") is True,
            choices=obj["n"] if isinstance(obj.get("n"), int) and obj["n"] > 0 else 1,
            service_tier=tier_name(obj.get("service_tier")),
            input_characters=len(text) if isinstance(text := obj.get("input"), str) else None,
            image_variant=image_variant(obj.get("quality"), obj.get("size")) if "prompt" in obj else None,
        ),
        obj,
    )


_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')


def model_hint(body: bytes | None) -> str | None:
    """The body's ``model`` without a full parse, for calls where nothing else is needed.

    On deployment paths Azure ignores the body's model (the deployment is in the
    path), so this is informational; the first ``"model":"..."`` wins.
    """
    if not body:
        return None
    m = _MODEL.search(body)
    return m.group(1).decode("utf-8", "replace") if m else None


_SERVICE_TIER = re.compile(rb'"service_tier"\s*:\s*"([^"\\]{1,40})"')


def service_tier_hint(body: bytes | None) -> str | None:
    """The ``service_tier`` asked for, without a full parse (the first one in the body wins)."""
    if not body or b'"service_tier"' not in body:
        return None
    m = _SERVICE_TIER.search(body)
    return tier_name(m.group(1).decode("ascii", "replace")) if m else None


_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')


def stream_hint(body: bytes | None) -> bool:
    """Does the body ask for a stream? Without a parse (in a JSON string the quotes would be escaped)."""
    if not body or b'"stream"' not in body:
        return False
    return b'"stream":true' in body or _STREAM_TRUE.search(body) is not None


def accepts_stream_options(route: Route) -> bool:
    """Will this endpoint accept ``stream_options``? Unknown or old api-versions: no."""
    if route.v1 or route.provider == "openai":
        return True
    version = route.api_version
    if version is None:
        return False
    if version in _UNDATED_ACCEPTING:
        return True
    m = _DATED_VERSION.match(version)
    return m is not None and m.group(1) >= _FIRST_DATE_WITH_STREAM_OPTIONS


def with_include_usage(route: Route, info: RequestInfo, body: bytes | None,
                       parsed: dict[str, Any] | None) -> bytes | None:
    """The rewritten body, or ``None`` when the request must go out unchanged.

    The option is spliced in before the closing brace, so every other byte of
    the caller's body stays as it was (no re-serialisation, no key reordering).
    """
    if route.api != "chat" or not info.stream or info.include_usage is not None or body is None:
        return None
    if parsed is None or not accepts_stream_options(route):
        return None
    if "stream_options" in parsed:
        # Splice into the caller's own object, so no other byte changes (a re-serialised body
        # turned 1.0e-1 into 0.1 and \u00e9 into é).
        if not isinstance(parsed["stream_options"], dict):
            return None
        span = partial.member_value(body, "stream_options")
        if span is None or body[span[0]:span[0] + 1] != b"{":
            return None
        start, stop = span
        inside = body[start + 1:stop - 1].strip()
        return body[:start + 1] + _INCLUDE_USAGE_MEMBER + (b"," if inside else b"") + body[start + 1:]
    end = body.rstrip().rfind(b"}")
    if end < 0:
        return None
    return body[:end] + b"," + _INCLUDE_USAGE + body[end:]


def estimate_input_tokens(parsed: dict[str, Any] | None) -> int:
    """A rough input-token estimate (4 characters a token) for calls that reported no usage.

    Only used when the service sent no usage (old api-version stream, stream cut
    short); the record is then flagged ``usage_source="estimated"``.
    """
    if parsed is None:
        return 0
    chars = 0
    items = 0
    for key in ("messages", "input", "instructions", "prompt"):
        value = parsed.get(key)
        if value is None:
            continue
        stack: list[Any] = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                chars += len(item)
            elif isinstance(item, list):
                items += len(item)
                stack.extend(item)
            elif isinstance(item, dict):
                for k in ("content", "text", "input", "output"):
                    if k in item:
                        stack.append(item[k])
    return (chars + 3) // 4 + 3 * items
