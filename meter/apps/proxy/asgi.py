"""The few ASGI types and helpers the proxy needs (no framework: see ``meter.apps.proxy.app``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Not an HTTP status any client sees: the access log's code for "the caller went away first" (as nginx logs it).
CLIENT_CLOSED = 499


async def send_error(send: Send, status: int, code: str, message: str, close: bool = False) -> int:
    """Answer with Azure's error shape, ``{"error": {"code", "message"}}``, so SDKs parse it as usual.

    Only the proxy's own failures are answered this way; ``message`` is written
    by the proxy (never an exception text that could echo a URL or a header).
    ``close`` adds ``connection: close``: the server then closes the connection
    after the answer, which it must when the request's body was not read (what
    follows on the connection is not known to be a request).
    """
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return status


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or ``None`` if the caller disconnected; raises ``BodyTooLarge`` past ``limit``.

    The body is read into memory because the meter reads the request (model,
    stream flag, input estimate) from an in-memory body; the limit keeps the
    proxy's memory bounded by ``max_concurrency * limit``.
    """
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(size)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


class BodyTooLarge(Exception):
    """The request body exceeded the proxy's ``max_request_bytes``."""


async def wait_for_disconnect(receive: Receive) -> None:
    """Return when the caller disconnects (once the body is read, ``receive`` only ever says that)."""
    while (await receive())["type"] != "http.disconnect":
        pass
