"""The proxy's HTTP/1.1 server protocol: uvicorn's httptools protocol, strict, bounded in size and in time.

Why httptools and not h11: the proxy parses every request head once, on its way
in, and h11 (pure Python) took about a sixth of the proxy's CPU per request;
httptools is llhttp, in C. Why the protocol is named instead of left to
uvicorn's ``auto``: the two parsers differ on exactly the points below, so the
proxy's behaviour must not depend on what else happens to be installed.

Framing (RFC 9112 sections 6.1 and 5.2): llhttp refuses a request with both
``Content-Length`` and ``Transfer-Encoding``, a ``Transfer-Encoding`` that does
not end in ``chunked``, a repeated ``Content-Length``, obs-fold header lines and
bare-LF line ends, each with a 400 and the connection closed before the proxy
app sees the request; nothing after it on that connection is read. The app
refuses both lengths itself too, for servers that let one win. A refusal that
comes while an earlier request of the same connection is still being answered
(a pipelined bad head) is sent after that answer, not instead of it.

The request target is handed to the app as sent (``raw_path`` is the target up
to ``?``), not as httptools' URL parser reads it: that parser turns
``http://evil/x`` into ``/x``, and the app must see, and refuse, what came.

Size: llhttp has no limit on a head. Here the bytes received while a head is
incomplete are counted, and past ``MAX_HEADERS_TOTAL_BYTES`` the connection gets
a 400 and is closed (bytes that follow the end of a message in the same read
are not counted, so a head can reach the limit plus one read, 256 KiB, before
it is refused). Complete heads are checked field by field by the app (431).

Time: uvicorn bounds nothing while a head arrives (its keep-alive timer stops
at the first byte, and a new connection has none), so a connection that sends
half a head, or nothing, lived for ever. Here a head must be complete within
``head_timeout`` seconds of the connection waiting for it (accepted, or done with
the previous exchange), else the connection is closed without an answer, as
nginx does. The body's own bound is the app's (``ProxyApp(body_timeout=...)``).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from meter.apps.proxy.headers import DEFAULT_HEAD_TIMEOUT, MAX_HEADERS_TOTAL_BYTES

_INVALID = "Invalid HTTP request received."
"""uvicorn's own words for a request it cannot parse (the body of its 400)."""


class _HeadWithBody:
    """The transport one response is written to: its head waits for its first body bytes, and leaves with them.

    uvicorn writes a response head and each body chunk separately, and an idle
    socket sends each write at once: two segments, two system calls and two
    wake-ups of the client for every short answer. Here the head is held until
    the next write (the body, usually in the same turn of the event loop) or,
    at the latest, the end of the loop's current turn, so it is never delayed
    behind a body that is not there yet. ``100 Continue`` is not held.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif data.startswith(b"HTTP/1.1 ") and data[9:10] != b"1" and data.endswith(b"\r\n\r\n"):
            self._held = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class ProxyProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the raw request target, a head size bound and a clock on every head.

    uvicorn builds one per connection from its config alone, so the head timeout
    is a class attribute: ``proxy_protocol(seconds)`` makes the class to hand it.
    """

    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    max_head_bytes: int = MAX_HEADERS_TOTAL_BYTES

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # the next bytes belong to a request head
        self._head_bytes = 0
        self._head_clock: asyncio.TimerHandle | None = None
        self._refusal_pending = False
        self._upgrade_with_body = False
        self._reading = True  # False once nothing more on this connection is to be parsed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal_pending or not self._reading:
            return
        if self._in_head:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade_requested()
            return
        except httptools.HttpParserError:
            self._refuse()
            return
        if self._in_head and self._head_bytes > self.max_head_bytes:
            self._refuse()

    def _refuse(self) -> None:
        """A 400 and a close; after the answers in progress, if requests before this one are still being answered."""
        self._stop_head_clock()
        if self.cycle is not None and not self.cycle.response_complete and not self.transport.is_closing():
            self._refusal_pending = True  # nothing after the bad head is read (``data_received``)
            self.flow.pause_reading()
            return
        self.send_400_response(_INVALID)

    def _upgrade_requested(self) -> None:
        """``Connection: upgrade`` (h2c, websocket): llhttp stops parsing at the end of such a head.

        Nothing is upgraded. A head without a body is answered as a plain request
        and the connection closed after it (what follows is not parsed); one with
        a body gets a 400, since llhttp hands its bytes over as upgrade data, not
        as the body: forwarding it would send the upstream an empty body.
        """
        self._reading = False
        self.flow.pause_reading()
        if self._upgrade_with_body:
            self._refuse()
        elif self.cycle is not None:
            self.cycle.keep_alive = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_clock()
        self._upgrade_with_body = self.parser.should_upgrade() and any(
            name in (b"content-length", b"transfer-encoding") and value.strip() != b"0" for name, value in self.headers)
        if self._upgrade_with_body:
            return  # refused once the parser stops (``_upgrade_requested``); the app never sees it
        target = self.url
        self.url = b"/"  # uvicorn's URL parsing sees a plain path; the scope gets the target as sent, below
        super().on_headers_complete()
        self.cycle.transport = _HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]
        self.url = target
        raw_path, _, query = target.partition(b"?")
        path = raw_path.decode("latin-1")
        self.scope["path"] = unquote(path) if "%" in path else path
        self.scope["raw_path"] = raw_path
        self.scope["query_string"] = query

    def on_message_complete(self) -> None:
        if not self._upgrade_with_body:  # else the app never saw the request (and there may be no cycle)
            super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        if self._refusal_pending and not self.pipeline:
            self._refusal_pending = False
            self.server_state.total_requests += 1
            if not self.transport.is_closing():
                self.send_400_response(_INVALID)
            return
        waiting = not self.pipeline  # else the next head is in, and its answer starts now
        super().on_response_complete()
        if waiting and self._in_head and not self._refusal_pending and not self.transport.is_closing():
            self._wait_for_head()

    def _wait_for_head(self) -> None:
        """Start the clock for the next head (a new one each time: the bound is per head, not per connection)."""
        self._stop_head_clock()
        self._head_clock = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_head_clock(self) -> None:
        if self._head_clock is not None:
            self._head_clock.cancel()
            self._head_clock = None

    def _head_timed_out(self) -> None:
        self._head_clock = None
        if self._in_head and not self.transport.is_closing():
            self.transport.close()


def proxy_protocol(head_timeout: float = DEFAULT_HEAD_TIMEOUT) -> type[ProxyProtocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``, with ``head_timeout`` seconds per head."""
    if head_timeout <= 0:
        raise ValueError("head_timeout must be positive")
    seconds = head_timeout

    class BoundProxyProtocol(ProxyProtocol):
        head_timeout = seconds

    return BoundProxyProtocol
