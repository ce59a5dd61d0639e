"""The proxy's HTTP/1.1 server protocol: uvicorn's h11 protocol, strict about framing and bounded in time.

Why the proxy names its protocol instead of taking uvicorn's default: uvicorn
picks httptools when it is installed and h11 otherwise, and the two differ on
exactly the points below, so the proxy's behaviour would depend on what else
happens to be installed. h11 always comes with uvicorn, and the head-size limit
(``h11_max_incomplete_event_size``) is an h11 setting.

Framing (RFC 9112 sections 6.1 and 5.2): h11 lets ``Transfer-Encoding`` win over
``Content-Length`` and silently unfolds obs-fold header lines (a line starting
with a space or a tab continues the previous one). A front end that reads
either the other way sees other message boundaries, and a request hidden in a
body reaches the upstream (request smuggling). Such a request gets a 400 and the
connection is closed before the proxy app sees it; nothing after it on that
connection is read.

Time: uvicorn bounds nothing while a head arrives (its keep-alive timer stops
at the first byte, and a new connection has none), so a connection that sends
half a head, or nothing, lived for ever. Here a head must be complete within
``head_timeout`` seconds of the connection waiting for it (accepted, or done with
the previous exchange), else the connection is closed without an answer, as
nginx does. The body's own bound is the app's (``ProxyApp(body_timeout=...)``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from meter.apps.proxy.headers import DEFAULT_HEAD_TIMEOUT, MAX_HEADERS_TOTAL_BYTES, framing_problem

_HEAD_END = re.compile(rb"\n\r?\n")
"""Where h11 ends a head: a blank line, with or without its CR."""
_FOLD = re.compile(rb"\n[ \t]")
"""An obs-fold line: a header line that starts with a space or a tab."""


class _HeadScan:
    """Watches the raw bytes of one request head for an obs-fold line, which h11 would unfold unseen.

    Only the head is looked at (a body may well have lines starting with
    spaces): scanning stops at the head's blank line. The last two bytes are
    kept, so a fold or a head end split across packets is seen all the same.
    """

    def __init__(self) -> None:
        self.folded = False
        self._done = False
        self._tail = b""

    def feed(self, data: bytes) -> None:
        if self._done or self.folded or not data:
            return
        window = self._tail + data
        end = _HEAD_END.search(window)
        head = window if end is None else window[:end.start() + 1]
        self.folded = _FOLD.search(head) is not None
        self._done = end is not None
        self._tail = window[-2:]


class StrictConnection(h11.Connection):
    """An h11 server connection that refuses ambiguous framing (``RemoteProtocolError``: uvicorn's 400 and close).

    Each head is scanned as its bytes arrive: while the client is ``IDLE`` every
    byte received belongs to the next head, and a head pipelined behind the
    previous exchange is scanned from the buffer when the next cycle starts.
    ``on_idle`` is called whenever the connection starts waiting for a new head.
    """

    def __init__(self, max_incomplete_event_size: int, on_idle: Callable[[], None]) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)
        self._head = _HeadScan()
        self._on_idle = on_idle

    def receive_data(self, data: bytes) -> None:
        if self.their_state is h11.IDLE:
            self._head.feed(data)
        super().receive_data(data)

    def start_next_cycle(self) -> None:
        super().start_next_cycle()
        self._head = _HeadScan()
        self._head.feed(self.trailing_data[0])
        self._on_idle()

    def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        event = super().next_event()
        if isinstance(event, h11.Request):
            problem = "an obs-fold header line" if self._head.folded else framing_problem(event.headers)
            if problem is not None:
                raise h11.RemoteProtocolError(f"refused: {problem}", error_status_hint=400)
        return event


class ProxyProtocol(H11Protocol):
    """uvicorn's h11 protocol with a ``StrictConnection`` and a clock on every request head.

    uvicorn builds one per connection from its config alone, so the head timeout
    is a class attribute: ``proxy_protocol(seconds)`` makes the class to hand it.
    """

    head_timeout: float = DEFAULT_HEAD_TIMEOUT

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limit = config.h11_max_incomplete_event_size
        self.conn = StrictConnection(MAX_HEADERS_TOTAL_BYTES if limit is None else limit, self._wait_for_head)
        self._head_clock: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a head arrived (or the connection is done)
            self._stop_head_clock()

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
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.conn.send(h11.ConnectionClosed())
            self.transport.close()


def proxy_protocol(head_timeout: float = DEFAULT_HEAD_TIMEOUT) -> type[ProxyProtocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``, with ``head_timeout`` seconds per head."""
    if head_timeout <= 0:
        raise ValueError("head_timeout must be positive")
    seconds = head_timeout

    class BoundProxyProtocol(ProxyProtocol):
        head_timeout = seconds

    return BoundProxyProtocol
