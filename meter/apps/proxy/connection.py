"""One keep-alive connection to the upstream: an asyncio protocol writing a request, reading its answer with llhttp.

Why not httpx2's own pool: measured in the proxy (docs/benchmarks.md, issue 25), httpcore2, its h11
and anyio's cancel scopes were 71-74 % of the event loop's time. Here a request is one ``write`` (head
and body together), the answer is parsed in C (``httptools.HttpResponseParser``, llhttp) as it arrives
in ``data_received``, and the consumer waits on one future only when nothing is buffered.

One exchange at a time (no pipelining). What the answer's consumer sees is what httpcore2 gives
httpx2's ``aiter_raw``: the status, the header fields as received (names as spelled, values without
surrounding whitespace, as h11 gives them), and the body's bytes as they came, de-chunked (llhttp
drops chunk sizes, extensions and trailers, as h11 does), never decoded. Informational answers
(``1xx`` but ``101``) are skipped, as httpcore2 skips them; a ``101`` is an error, since the proxy
never forwards ``Upgrade``. Bytes read but not taken are held up to
``HIGH_WATER``; past it the socket is not read until the consumer takes them (backpressure).

Errors are httpx2's, as httpx2's transport raises them: ``ReadTimeout`` / ``WriteTimeout`` past the
per-read / per-write bound, ``RemoteProtocolError`` when the peer closes before the answer or its body
ends or sends what is not HTTP, ``ReadError`` when the connection is reset.
"""

from __future__ import annotations

import asyncio

import httptools
import httpx2

HIGH_WATER = 64 * 1024
"""Body bytes held for a consumer that has not taken them before reading pauses (plus one read, 256 KiB)."""


class _Stop(Exception):
    """Raised from a parser callback to stop it: after the head of an answer to ``HEAD`` (which has no body),
    or at the start of a second answer to one request."""


def _expire(waiter: asyncio.Future[None], error: type[httpx2.TimeoutException]) -> None:
    if not waiter.done():
        waiter.set_exception(error("timed out"))


class UpstreamConnection(asyncio.Protocol):
    """One connection: ``send`` a request, then ``head`` and ``next_chunk`` until ``None``; ``reusable`` after.

    ``open`` turns false when the peer closes, the connection fails or is closed, or the peer sends
    bytes no request asked for: such a connection is never given another request.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.open = True
        self.busy = False  # a request is out and its answer not done with
        self.idle_since = 0.0
        self._close_after = False  # the exchange in progress says the connection ends with it
        self._head_is_all = False  # the request was ``HEAD``
        self._informational = False
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.error: Exception | None = None
        self._body: list[bytes] = []
        self._held = 0
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None

    # -- the exchange, from the transport's side ---------------------------------------------------------

    def send(self, data: bytes, body: bytes | None, *, head_is_all: bool, close_after: bool) -> bool:
        """Start an exchange: one write of ``data`` (and ``body`` if separate); ``False`` if nothing was sent.

        ``False`` means the connection was found closed before the write or the write failed at once
        (the first ``send`` system call raised, so not one byte of this request left): the request may
        go on another connection. A failure after that is the answer's (``head``), never retried.
        """
        transport = self.transport
        if not self.open or transport is None or transport.is_closing():
            return False
        self.busy = True
        self._head_is_all = head_is_all
        self._close_after = close_after
        self.status, self.reason, self.headers = 0, b"", []
        self.head_done = self.complete = self.keep_alive = False
        self.error = None
        self._body, self._held = [], 0  # an answer closed unread but whole left its bytes: not this one's
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        transport.write(data)
        if transport.is_closing():  # the send failed in ``write`` itself: nothing of it was sent
            self.busy = False
            self.open = False
            return False
        if body is not None:
            transport.write(body)
        return True

    async def drained(self, timeout: float | None) -> None:
        """Wait until the request's bytes are handed to the kernel (at most ``timeout`` s, else ``WriteTimeout``).

        A connection lost meanwhile ends the wait: the peer may have answered before closing (a 413), as
        httpcore2 reads an answer after a failed write; if not, ``head`` raises.
        """
        if not self._writing_paused or not self.open:
            return
        waiter = self._loop.create_future()
        self._drain = waiter
        timer = None if timeout is None else self._loop.call_later(timeout, _expire, waiter, httpx2.WriteTimeout)
        try:
            await waiter
        finally:
            self._drain = None
            if timer is not None:
                timer.cancel()

    async def head(self, timeout: float | None) -> None:
        """Wait for the answer's head (each wait for bytes at most ``timeout`` s, else ``ReadTimeout``)."""
        while not self.head_done:
            if self.error is not None:
                raise self.error
            await self._wait(timeout)

    async def next_chunk(self, timeout: float | None) -> bytes | None:
        """The body bytes received since the last call (waiting for some), ``None`` at the end of the body."""
        while True:
            if self._body:
                return self._take()
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            await self._wait(timeout)

    def reusable(self) -> bool:
        """Whether the exchange ended cleanly on a connection that stays open for the next one."""
        return (self.complete and self.keep_alive and self.open and not self._close_after
                and self.transport is not None and not self.transport.is_closing())

    def release(self, now: float) -> None:
        """The exchange is over and the connection idle (only when ``reusable``)."""
        self.busy = False
        self.idle_since = now

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    def _take(self) -> bytes:
        body = self._body
        chunk = body[0] if len(body) == 1 else b"".join(body)
        self._body = []
        self._held = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    async def _wait(self, timeout: float | None) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        timer = None if timeout is None else self._loop.call_later(timeout, _expire, waiter, httpx2.ReadTimeout)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.error is None and not self.complete:
            self.error = error
        self.close()
        self._wake()

    # -- asyncio protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # bytes no request asked for (while idle): this connection cannot be trusted
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self._head_is_all and self.head_done:  # stopped on purpose after a HEAD answer's head
                self.complete = True
                self.open = False  # the parser is spent: the connection is not reused
            else:
                self._fail(httpx2.RemoteProtocolError(f"the upstream's answer is not valid HTTP: {exc}"))
                return
        if self._held > HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self.open = False
        if self.busy and self.head_done and not self.complete and self._until_eof():
            self.complete = True
        return None  # the transport closes itself; ``connection_lost`` follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.busy and not self.complete and self.error is None:
            if self.head_done and exc is None and self._until_eof():
                self.complete = True
            elif exc is not None:
                self.error = httpx2.ReadError(str(exc) or type(exc).__name__)
            elif self.head_done:
                self.error = httpx2.RemoteProtocolError(
                    "peer closed connection without sending complete message body")
            else:
                self.error = httpx2.RemoteProtocolError("Server disconnected without sending a response.")
        self._wake()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- llhttp callbacks ---------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request: stop here (the connection is closed)
            raise _Stop

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.head_done:  # after the head: a chunked body's trailer fields, dropped as h11 drops them
            self.headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if status < 200 and status != 101:  # ``100 Continue`` and the like: the answer is still to come
            self._informational = True
            self.headers = []
            self.reason = b""
            return
        if status == 101:  # switching protocols: never asked for (``upgrade`` is not forwarded)
            raise _Stop
        self.status = status
        self.keep_alive = parser.should_keep_alive()  # read here: llhttp resets it once the message ends
        self.head_done = True
        if self._head_is_all:
            raise _Stop

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._held += len(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.complete = True

    def _until_eof(self) -> bool:
        """Whether the answer's body runs to the connection's end (no ``Content-Length``, not chunked)."""
        if self.status in (204, 304):
            return False
        coding = b""
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding":
                coding = value.rsplit(b",", 1)[-1].strip().lower()
        return coding != b"chunked"
