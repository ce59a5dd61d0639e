"""``ProxyApp``: the metering reverse proxy as a raw ASGI callable.

Why raw ASGI and not Starlette: a transparent proxy needs exact control over
what goes on the wire. Starlette's responses add or normalise headers
(``content-type``, ``content-length``) and its request body helpers buffer or
re-chunk; here the status, the header list and every raw body chunk of the
upstream answer are handed to the server as they are, and nothing else is.

Each request: read the body (the meter reads the request from memory) within
``body_timeout``, then wait for a concurrency slot, send the request upstream
through ``meter.AsyncMeteredTransport`` (around the proxy's own keep-alive pool,
``meter.apps.proxy.pool``), and relay the answer chunk by chunk with ``aiter_raw``
(no decoding, no re-encoding). The next upstream chunk is read only after
``send`` returned, and the server's ``send`` waits while its write buffer is
full; the pool stops reading a connection whose bytes are not taken, so a slow
client slows the upstream instead of filling memory. A watcher on ``receive`` notices the caller leaving and cancels
the relay at once (even while the upstream is still thinking), which closes the
upstream response: the meter records that call as ``aborted``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any
from urllib.parse import quote

import httpx2

from meter.adapters.transport import AsyncMeteredTransport
from meter.apps.proxy.asgi import (
    CLIENT_CLOSED,
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    read_body,
    send_error,
    wait_for_disconnect,
)
from meter.apps.proxy.headers import Header, HeadersTooLarge, read_request_head, response_headers
from meter.apps.proxy.target import BadTarget, HostPolicy, upstream_url
from meter.hub import Meter

logger = logging.getLogger("meter.proxy")

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0
"""Seconds to receive a whole request body: 64 MiB at about 2 MB/s, a chat request many times over."""
_LENGTH_ALWAYS = frozenset({"POST", "PUT", "PATCH", "QUERY"})
"""Methods httpx2 sends a ``Content-Length: 0`` for when the body is empty (as ``httpx2.Request`` does)."""
_CACHED = 256
"""Targets and ``Host`` values remembered once checked (each check is a pure function of them)."""
_CACHED_BYTES = 1024
"""Only those up to this size are remembered: the memory they hold stays under ``2 * _CACHED`` KiB."""
_REFUSED_METHODS = frozenset({"CONNECT", "TRACE"})
"""Not a reverse proxy's to forward: tunnels, and echoes of the caller's headers (its key)."""


class _Exchange:
    """What the access log line says about one request (never headers, bodies or the query string).

    ``status`` stays ``CLIENT_CLOSED`` unless an answer was sent to the end.
    """

    def __init__(self) -> None:
        self.status = CLIENT_CLOSED
        self.sent_bytes = 0


def upstream_base(upstream: str) -> httpx2.URL:
    """The validated upstream URL (``http``/``https`` with a host); its path, if any, prefixes every request."""
    url = httpx2.URL(upstream)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"the upstream must be an http(s) URL with a host, got {upstream!r}")
    if url.query or url.fragment:
        raise ValueError("the upstream URL must not have a query string or a fragment")
    return url


class ProxyApp:
    """An ASGI app relaying every request to ``upstream`` through a metered transport.

    ``meter`` defaults to ``Meter(hosts=[upstream host], inject_stream_usage=False)``:
    the proxy promises to add nothing to responses, and injecting
    ``stream_options.include_usage`` would add a usage chunk the caller did not
    ask for (streams without it get estimated usage); pass a meter of your own
    to choose otherwise (list the upstream host in its ``hosts`` so OpenAI-style
    ``/v1/...`` paths are metered; Azure ``/openai/...`` paths are on any host).

    Requests beyond ``max_concurrency`` wait for a slot up to ``queue_timeout``
    seconds, then get a 503 (waiting rather than refusing at once absorbs
    bursts; the timeout keeps a queue from growing without end). A slot is taken
    only once the whole body is in, and held to the last relayed byte: a caller
    that sends a head and stalls mid-body holds no slot, so it cannot starve
    the others; it gets a 408 and its connection is closed after ``body_timeout``
    seconds (the time to receive the whole body, not a gap between bytes, so a
    trickle cannot stretch it). Memory is bounded by ``max_concurrency *
    max_request_bytes`` for requests in flight, plus the upstream bytes held per
    stream (64 KiB and one read: ``meter.apps.proxy.connection.HIGH_WATER``), plus
    the bodies being received: each at most ``max_request_bytes``, only bytes
    the caller sent, and for at most ``body_timeout``. The head's own bound is
    the server's (``ProxyServer(head_timeout=...)``).
    ``transport`` replaces the inner pool (``meter.apps.proxy.pool.UpstreamTransport``,
    or ``httpx2.AsyncHTTPTransport`` where httptools is not installed) with any httpx2
    transport (custom TLS, an egress proxy: environment proxy variables are not read).

    Requests go only to the upstream: the URL is built from the upstream's
    scheme, host and port and the caller's origin-form path and query (see
    ``meter.apps.proxy.target``); other request targets, ``CONNECT``/``TRACE``, a
    ``Host`` the proxy does not answer to (``allowed_hosts`` adds names, ``"*"``
    any) get a 400 / 405, and headers past the limits in ``meter.apps.proxy.headers``
    a 431, a request with both ``Content-Length`` and ``Transfer-Encoding`` a 400, before
    anything is forwarded. Refusals sent before the body was read close the connection.
    """

    def __init__(self, upstream: str, meter: Meter | None = None, *, max_concurrency: int = 64,
                 connect_timeout: float = 10.0, read_timeout: float = 300.0, queue_timeout: float = 60.0,
                 max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, body_timeout: float = DEFAULT_BODY_TIMEOUT,
                 transport: httpx2.AsyncBaseTransport | None = None,
                 allowed_hosts: Iterable[str] | None = None) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if body_timeout <= 0:
            raise ValueError("body_timeout must be positive")
        base = upstream_base(upstream)
        self._base = base
        # The Host field httpx2 writes for the upstream URL (every request goes to that one origin).
        self._host_field: Header = httpx2.Request("GET", base).headers.raw[0]
        self._urls: dict[tuple[bytes, bytes], httpx2.URL] = {}  # targets already checked, and their URL
        self._hosts_seen: set[tuple[bytes | None, str | None]] = set()  # Host values already accepted
        self._hosts = HostPolicy(allowed_hosts)
        self.upstream = str(base).rstrip("/")
        self.meter = meter if meter is not None else Meter(hosts=[base.host], inject_stream_usage=False)
        self.max_concurrency = max_concurrency
        self.queue_timeout = queue_timeout
        self.max_request_bytes = max_request_bytes
        self.body_timeout = body_timeout
        # write and pool share the read timeout; the pool never waits anyway: it has a connection per slot
        self._timeout = httpx2.Timeout(read_timeout, connect=connect_timeout).as_dict()
        inner = transport or _pool(base, max_concurrency)
        # The transport is called directly, not through an AsyncClient: a client would keep upstream
        # cookies in one jar shared by every caller and log each full URL (query string included) at INFO.
        self.transport = AsyncMeteredTransport(inner, meter=self.meter)
        self._slots = asyncio.Semaphore(max_concurrency)
        self.receiving = 0  # requests whose body is being read (they hold no slot)
        self.in_flight = 0  # requests holding a slot (waiting upstream or relaying)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets are not proxied
            return
        started = time.monotonic()
        exchange = _Exchange()
        answered = False

        async def tracked(message: Any) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self._handle(scope, receive, tracked, exchange)
        except Exception as exc:
            # A bug here must not become the server's 500 page with a traceback, nor log one that could
            # quote the request: a one-line log with the exception's type, and Azure's error shape.
            logger.error("internal error on %s %s: %s", scope["method"], _printable(scope["path"]),
                         type(exc).__name__)
            if not answered:
                exchange.status = await send_error(send, 500, "ProxyInternalError", "the proxy failed on this request",
                                                   close=True)
        finally:
            logger.info("%s %s %d %.3fs %dB", scope["method"], _printable(scope["path"]), exchange.status,
                        time.monotonic() - started, exchange.sent_bytes)

    async def aclose(self) -> None:
        """Close the upstream connection pool."""
        await self.transport.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: Scope, receive: Receive, send: Send, exchange: _Exchange) -> None:
        try:
            url, fields = self._target(scope)
        except HeadersTooLarge as exc:
            exchange.status = await send_error(send, 431, "ProxyHeadersTooLarge", str(exc), close=True)
            return
        except _MethodRefused as exc:
            exchange.status = await send_error(send, 405, "ProxyMethodNotAllowed", str(exc), close=True)
            return
        except (BadTarget, _AmbiguousLength) as exc:
            exchange.status = await send_error(send, 400, "ProxyBadRequest", str(exc), close=True)
            return
        body = await self._receive_body(receive, send, exchange)
        if body is None:
            return
        try:
            if self._slots.locked():
                await asyncio.wait_for(self._slots.acquire(), self.queue_timeout)
            else:
                await self._slots.acquire()  # a slot is free: taken at once, no timer and no task for wait_for
        except TimeoutError:
            exchange.status = await send_error(send, 503, "ProxyOverloaded",
                                               "too many concurrent requests; retry later")
            return
        self.in_flight += 1
        try:
            request = self._upstream_request(scope["method"], url, fields, body)
            await _until_disconnect(receive, self._relay(request, send, exchange))
        finally:
            self.in_flight -= 1
            self._slots.release()

    async def _receive_body(self, receive: Receive, send: Send, exchange: _Exchange) -> bytes | None:
        """The whole body, read before any slot is taken; ``None`` once answered (408, 413) or the caller left.

        Slots are for the upstream: a caller stalling mid-body costs a connection
        and the bytes it sent, and only for ``body_timeout`` seconds.
        """
        self.receiving += 1
        try:
            async with asyncio.timeout(self.body_timeout):
                return await read_body(receive, self.max_request_bytes)
        except TimeoutError:
            exchange.status = await send_error(send, 408, "ProxyRequestTimeout",
                                               f"the request body did not arrive within {self.body_timeout:g} s",
                                               close=True)
        except BodyTooLarge:
            exchange.status = await send_error(send, 413, "ProxyRequestTooLarge",
                                               f"the request body exceeds {self.max_request_bytes} bytes", close=True)
        finally:
            self.receiving -= 1
        return None

    def _target(self, scope: Scope) -> tuple[httpx2.URL, list[Header]]:
        """Check the request head, build the upstream URL and pick the header fields to forward; raises
        before anything is forwarded. Targets and ``Host`` values that passed are remembered (up to
        ``_CACHED`` of each): the checks are pure functions of them, and a proxy sees the same few again."""
        fields, host, problem = read_request_head(scope["headers"])
        if problem is not None:  # the server refuses it first; this is for servers that do not
            raise _AmbiguousLength(f"the request's length is ambiguous: {problem}")
        method: str = scope["method"]
        if method in _REFUSED_METHODS:
            raise _MethodRefused(f"{method} is not forwarded by this proxy")
        if host is None and scope.get("http_version", "1.1") != "1.0":
            raise BadTarget("an HTTP/1.1 request must have a Host header")  # RFC 9112 section 3.2
        server = scope.get("server")
        local = server[0] if server else None
        if (host, local) not in self._hosts_seen:
            self._hosts.check(None if host is None else host.decode("latin-1"), local)
            if host is None or len(host) <= _CACHED_BYTES:
                if len(self._hosts_seen) >= _CACHED:
                    self._hosts_seen.clear()
                self._hosts_seen.add((host, local))
        raw_path: bytes = scope.get("raw_path") or quote(scope["path"]).encode()
        query: bytes = scope.get("query_string", b"")
        url = self._urls.get((raw_path, query))
        if url is None:
            url = upstream_url(self._base, raw_path, query)
            if len(raw_path) + len(query) <= _CACHED_BYTES:
                if len(self._urls) >= _CACHED:
                    self._urls.clear()
                self._urls[(raw_path, query)] = url
        return url, fields

    def _upstream_request(self, method: str, url: httpx2.URL, fields: list[Header], body: bytes) -> httpx2.Request:
        """The request as ``httpx2.Request(method, url, headers=fields, content=...)`` builds it (``Host`` first, a
        ``Content-Length`` where httpx2 puts one), made from a header list complete already: one ``Headers``
        instead of two and none of httpx2's lookups of its own auto headers."""
        if body:
            head = [self._host_field, *fields, (b"Content-Length", b"%d" % len(body))]
        elif method in _LENGTH_ALWAYS:
            head = [self._host_field, (b"Content-Length", b"0"), *fields]
        else:
            head = [self._host_field, *fields]
        request = httpx2.Request(method, url, headers=head, stream=httpx2.ByteStream(body),
                                 extensions={"timeout": self._timeout})
        request.read()  # the body in memory as ``request.content``, which the meter reads
        return request

    async def _relay(self, request: httpx2.Request, send: Send, exchange: _Exchange) -> None:
        try:
            response: httpx2.Response = await self.transport.handle_async_request(request)
        except httpx2.TimeoutException:
            exchange.status = await send_error(send, 504, "ProxyUpstreamTimeout", "the upstream did not answer in time")
            return
        except httpx2.TransportError as exc:
            exchange.status = await send_error(send, 502, "ProxyUpstreamError",
                                               f"the upstream could not be reached ({type(exc).__name__})")
            return
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": response_headers(response.headers.raw)})
            async for chunk in _body(response) if response.is_stream_consumed else response.aiter_raw():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    exchange.sent_bytes += len(chunk)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            exchange.status = response.status_code
        except httpx2.TransportError as exc:
            # The head is out, so no error answer is possible: returning without finishing the body makes
            # the server cut the connection, and the client sees a truncated response, not a clean end.
            exchange.status = 502
            logger.warning("upstream failed mid-response (%s); cutting the client connection", type(exc).__name__)
        finally:
            await response.aclose()


def _pool(base: httpx2.URL, size: int) -> httpx2.AsyncBaseTransport:
    """The upstream pool: meter's own (``meter.apps.proxy.pool``, llhttp) where httptools is installed, which
    ``meter[proxy]`` brings; else httpx2's (an app served by another ASGI server without the extra)."""
    try:
        from meter.apps.proxy.pool import UpstreamTransport
    except ImportError:
        return httpx2.AsyncHTTPTransport(limits=httpx2.Limits(max_connections=size, max_keepalive_connections=size))
    return UpstreamTransport(base, max_connections=size)


async def _body(response: httpx2.Response) -> AsyncIterator[bytes]:
    """An answer already in memory, at once: meter's own (a hard budget's 429, the request never sent), whose
    body was read when it was made. Others are relayed from ``aiter_raw`` itself (no generator around it)."""
    yield response.content


class _MethodRefused(ValueError):
    """A method the proxy does not forward (answered 405)."""


class _AmbiguousLength(ValueError):
    """Both ``Content-Length`` and ``Transfer-Encoding`` (answered 400, and the connection closed)."""


async def _until_disconnect(receive: Receive, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` in this task, cancelling it if the caller disconnects first (the relay then closes the upstream).

    One watcher task per request, not a second task for the work and an ``asyncio.wait`` over both:
    the work runs here, and the watcher cancels this task when ``http.disconnect`` arrives. That
    cancel is ours to take back (``uncancel``); any other cancellation (server shutdown) goes on.
    """
    task = asyncio.current_task()
    assert task is not None
    watch = asyncio.ensure_future(wait_for_disconnect(receive))
    gone = over = False

    def caller_left(done: asyncio.Future[None]) -> None:
        # Runs from the loop, maybe after the work ended (the callback was already queued): then nothing.
        nonlocal gone
        if not over and not done.cancelled() and done.exception() is None:
            gone = True
            task.cancel()

    watch.add_done_callback(caller_left)
    try:
        await work
    except asyncio.CancelledError:
        if not gone or task.uncancel() > 0:  # not (only) ours: a shutdown or an outer cancel goes on
            raise
    finally:
        over = True
        watch.remove_done_callback(caller_left)
        watch.cancel()
        work.close()  # a no-op once it ran; closes it if it never started


def _printable(path: str) -> str:
    """The path as one log line can hold it (control characters escaped, no log forging)."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")
