"""``UpstreamTransport``: the proxy's keep-alive pool to its one upstream, an ``httpx2.AsyncBaseTransport``.

An httpx2 transport, so ``meter.AsyncMeteredTransport`` wraps it as it wrapped httpx2's own, and
the proxy's relay reads the answer with ``aiter_raw`` as before: the status, the header fields and
the body's raw bytes (de-chunked, never decoded) are what httpx2's transport gave. The work per
request is smaller (see ``meter.apps.proxy.connection``): the head is built once from the request's
own header list, head and body leave in one write, the answer is parsed by llhttp.

The pool: at most ``max_connections`` connections, each serving one request at a time and kept
open between requests (``keepalive_expiry`` seconds idle at most, httpx2's 5 s by default); the
most recently used idle connection goes first. A request waits for a free connection for the
``pool`` timeout (the proxy's own slots make that wait rare). A connection found closed when it
is taken (the peer closed it while idle, or the first write fails at once: nothing of the request
left) is dropped and the request goes on another one, as httpcore2 does with idle connections; once
any byte of a request was written it is never sent again (a chat call must not be billed twice).
An answer not read to its end (the caller left, an error) closes its connection, and so does an
answer to ``HEAD`` (llhttp cannot be told that its ``Content-Length`` announces no body, so it is
stopped after the head).

Timeouts come from the request's ``timeout`` extension (``httpx2.Timeout.as_dict()``), with
httpcore2's meaning: ``connect`` (TCP and TLS), ``read`` per wait for bytes, ``write`` per wait for the
kernel to take the request, ``pool`` for a free connection. TLS uses ``httpx2.create_ssl_context()``,
the verification httpx2 does by default (certifi, ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), with ALPN
``http/1.1``. Only the origin given at construction is served: any other URL is refused (the proxy
forwards only to its upstream).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from typing import Any, Self

import httpx2

from meter.apps.proxy.connection import UpstreamConnection

logger = logging.getLogger("meter.proxy.upstream")
"""DEBUG traces of the connection layer, named as httpcore2's were (never a target, header or body)."""

DEFAULT_KEEPALIVE_EXPIRY = 5.0
"""httpx2's default: an idle connection older than this is closed instead of used."""
ONE_WRITE_MAX = 256 * 1024
"""Bodies up to this size are copied after the head to leave in one write; larger ones are written after it."""
_NOT_TOKEN = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
_NOT_VALUE = re.compile(rb"[\x00\r\n]")


class UpstreamTransport(httpx2.AsyncBaseTransport):
    """A keep-alive HTTP/1.1 pool to ``origin`` (``http://host:port`` or ``https://...``; its path is ignored)."""

    def __init__(self, origin: str | httpx2.URL, *, max_connections: int = 64,
                 keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        url = httpx2.URL(origin)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"the origin must be an http(s) URL with a host, got {str(origin)!r}")
        self._origin = (url.scheme, url.host, url.port)
        self._host = url.host
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self._ssl = ssl_context or httpx2.create_ssl_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[UpstreamConnection] = []  # the most recently used last
        self._closed = False
        self.connections_opened = 0  # a count, for tests and curiosity

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        if (url.scheme, url.host, url.port) != self._origin:
            raise httpx2.UnsupportedProtocol("this transport forwards only to its one upstream")
        if self._closed:
            raise httpx2.ConnectError("the upstream pool is closed")
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        head, close_after, framing = _head(request)
        try:
            body: bytes = request.content
        except httpx2.RequestNotRead:
            body = await request.aread()
        if framing is _CHUNKED:
            body = b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        elif body and framing is None:
            raise httpx2.LocalProtocolError("a request body needs a Content-Length or Transfer-Encoding header")
        if len(body) <= ONE_WRITE_MAX:
            data, rest = (head + body if body else head), None
        else:
            data, rest = head, body
        head_is_all = request.method == "HEAD"
        await self._take_slot(timeouts.get("pool"))
        conn: UpstreamConnection | None = None
        try:
            while True:
                conn, fresh = await self._connection(timeouts.get("connect"))
                if conn.send(data, rest, head_is_all=head_is_all, close_after=close_after):
                    break
                conn.close()
                if fresh:
                    raise httpx2.ConnectError("the upstream closed a new connection before the request")
            await conn.drained(timeouts.get("write"))
            await conn.head(timeouts.get("read"))
        except BaseException as exc:
            if conn is not None:
                conn.close()
            self._slots.release()
            logger.debug("receive_response_headers.failed exception=%s", type(exc).__name__)
            raise
        logger.debug("receive_response_headers.complete method=%s status=%d", request.method, conn.status)
        return httpx2.Response(conn.status, headers=conn.headers, stream=_Body(self, conn, timeouts.get("read")),
                               extensions={"http_version": b"HTTP/1.1", "reason_phrase": conn.reason})

    async def aclose(self) -> None:
        """Close the idle connections now and the others as their answers end; later requests fail."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _take_slot(self, timeout: float | None) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # free: no wait, no timer
            return
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx2.PoolTimeout("no upstream connection became free in time") from None

    async def _connection(self, timeout: float | None) -> tuple[UpstreamConnection, bool]:
        """An idle connection still open and not expired, else a new one; and whether it is new."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        idle = self._idle
        expiry = self.keepalive_expiry
        if idle and expiry is not None and now - idle[0].idle_since > expiry:
            idle.pop(0).close()  # the oldest, which the most-recent-first order may never reach again
        while idle:
            conn = idle.pop()
            if conn.open and (expiry is None or now - conn.idle_since <= expiry):
                return conn, False
            conn.close()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: UpstreamConnection(loop), self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None)
        except TimeoutError:
            raise httpx2.ConnectTimeout("connecting to the upstream timed out") from None
        except OSError as exc:  # ssl.SSLError included
            raise httpx2.ConnectError(str(exc) or type(exc).__name__) from exc
        self.connections_opened += 1
        logger.debug("connect.complete host=%r port=%d tls=%s", self._host, self._port, self._ssl is not None)
        return conn, True

    def _release(self, conn: UpstreamConnection) -> None:
        self._slots.release()
        if conn.reusable() and not self._closed:
            conn.release(asyncio.get_running_loop().time())
            self._idle.append(conn)
            logger.debug("response_closed.complete connection=kept")
        else:
            conn.close()
            logger.debug("response_closed.complete connection=closed")


class _Body(httpx2.AsyncByteStream):
    """An answer's body as it arrives; the connection goes back to the pool at its end, or is closed if cut."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: UpstreamTransport, conn: UpstreamConnection, timeout: float | None) -> None:
        self._pool = pool
        self._conn: UpstreamConnection | None = conn
        self._timeout = timeout

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        chunk = await conn.next_chunk(self._timeout)
        if chunk is None:
            self._end()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._end()

    def _end(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._release(conn)


_LENGTH = "length"
_CHUNKED = "chunked"


def _head(request: httpx2.Request) -> tuple[bytes, bool, str | None]:
    """The request line and header fields as bytes (``Host`` first, as h11 writes them), whether the
    request asks to close the connection after it, and how its body is framed (``_LENGTH``, ``_CHUNKED``
    or ``None``: no header says). Raises ``LocalProtocolError`` for what would split the head: a line
    break or NUL in the target or a value, a header name that is not a token."""
    raw = request.headers.raw
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    rest: list[bytes] = []
    close_after = False
    framing: str | None = None
    for name, value in raw:
        lowered = name.lower()
        if lowered == b"host":
            lines += (name, b": ", value, b"\r\n")
            continue
        if lowered == b"content-length":
            framing = _LENGTH
        elif lowered == b"transfer-encoding":
            if value.rsplit(b",", 1)[-1].strip().lower() != b"chunked":
                raise httpx2.LocalProtocolError("a request's Transfer-Encoding must end in chunked")
            framing = _CHUNKED
        elif lowered == b"connection" and b"close" in value.lower():
            close_after = True
        rest += (name, b": ", value, b"\r\n")
    lines += rest
    lines.append(b"\r\n")
    head = b"".join(lines)
    names = b"".join(name for name, _ in raw)
    values = b"".join(value for _, value in raw)
    if (_NOT_TOKEN.search(names) or _NOT_VALUE.search(values) or _NOT_VALUE.search(request.url.raw_path)
            or any(not name for name, _ in raw)):
        raise httpx2.LocalProtocolError("a request header or the target would split the request head")
    return head, close_after, framing
