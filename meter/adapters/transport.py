"""``MeteredTransport`` and ``AsyncMeteredTransport``: wrap any httpx or httpx2 transport.

Both stacks expose the same transport interface (``handle_request`` /
``handle_async_request`` taking a ``Request`` and returning a ``Response`` whose
``stream`` is read lazily), so one pair of classes serves both; the request's
own type tells which stack a call belongs to. The sync and async twins differ
only by ``await``: everything else lives in ``start`` below and in the core.
"""

from __future__ import annotations

import importlib
from contextvars import ContextVar
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

import httpx2

from meter.adapters.parts import RequestPart, ResponsePart
from meter.budgets import RefusalAnswer
from meter.core.call import Call
from meter.core.headers import RawHeaders
from meter.hub import Meter, default_meter, default_meter_or_none

_STACKS: dict[type, ModuleType] = {}

Req = TypeVar("Req", bound=RequestPart)
Resp = TypeVar("Resp", bound=ResponsePart)
Req_contra = TypeVar("Req_contra", bound=RequestPart, contravariant=True)
Resp_co = TypeVar("Resp_co", bound=ResponsePart, covariant=True)


class SyncInner(Protocol[Req_contra, Resp_co]):
    """The transport a ``MeteredTransport`` wraps: either stack's, typed by what meter calls on it."""

    def handle_request(self, request: Req_contra, /) -> Resp_co: ...

    def close(self) -> None: ...


class AsyncInner(Protocol[Req_contra, Resp_co]):
    """The transport an ``AsyncMeteredTransport`` wraps."""

    async def handle_async_request(self, request: Req_contra, /) -> Resp_co: ...

    async def aclose(self) -> None: ...


_metering: ContextVar[bool] = ContextVar("meter_metering", default=False)
"""True while a metered transport sends a request it meters: a metered transport nested
inside it (``MeteredTransport(MeteredTransport(inner))``, or one hidden in another
wrapper) then passes the request straight through, so one HTTP attempt is one record.
A context variable rather than a request extension: it is set around the inner call
only, and a request object reused with ``client.send(request)`` carries nothing over."""


def _stack(request: RequestPart) -> ModuleType:
    """The adapter module for the request's stack (``httpx`` or ``httpx2``), by request type."""
    kind = type(request)
    stack = _STACKS.get(kind)
    if stack is None:
        top = kind.__module__.split(".", 1)[0]
        stack = importlib.import_module("meter.adapters._httpx2" if top == "httpx2" else "meter.adapters._httpx")
        _STACKS[kind] = stack
    return stack


def _body(request: RequestPart) -> bytes | None:
    """The request body if it is already in memory; a streaming upload is never read."""
    try:
        content = request.content
    except Exception:
        return None
    return content if isinstance(content, bytes) else None


def _in_memory(stack: ModuleType, response: ResponsePart, call: Call) -> bool:
    """Meter a body that is already in memory (mock transports, pre-read responses) at once.

    Such a response may be marked read already, so its stream would never be
    iterated or closed through a wrapper; its bytes are at hand, so no waiting.
    """
    stream = response.stream
    if not isinstance(stream, stack.ByteStream):
        return False
    for chunk in stream:
        call.on_chunk(chunk)
    call.on_end()
    return True


def start(meter: Meter, request: Req) -> tuple[Call, Req, RefusalAnswer | None] | None:
    """Begin metering ``request``; returns the call, the request to send (maybe rewritten) and, when a
    hard budget refuses the call, meter's own answer to give instead of sending it.

    Never raises: a fault lets the request through unmetered (and is counted).
    """
    with meter.guard["begin"]:
        url = request.url
        begun = meter.begin(request.method, url.host, url.port, url.path, url.query.decode("ascii", "replace"),
                            request.headers, lambda: _body(request))
        if begun is None:
            return None
        call, new_body, refusal = begun
        if refusal is not None:
            return call, request, refusal
        if new_body is not None:
            with meter.guard["rewrite"]:
                headers = request.headers.copy()
                headers["content-length"] = str(len(new_body))
                same_stack: Any = type(request)  # httpx.Request or httpx2.Request: rebuild with its own class
                request = same_stack(
                    method=request.method,
                    url=request.url,
                    headers=headers,
                    content=new_body,
                    extensions=request.extensions,
                )
        return call, request, None
    return None


def refused(call: Call, request: Req, answer: RefusalAnswer, is_async: bool) -> Any:
    """Meter's own answer to a call a hard budget refused (the request is never sent), metered as a
    response so the call has its one record (status 429, ``budget_exceeded``)."""
    response = _stack(request).Response(answer.status, headers=list(answer.headers), content=answer.body,
                                        request=request)
    return attach(call, request, response, is_async)


def attach(call: Call, request: RequestPart, response: Resp, is_async: bool) -> Resp:
    """Hand the response head to the call and wrap the body so the call sees every chunk.

    Never raises: if the response cannot be followed, it goes to the caller as it
    came and the call's record is emitted now, with what is known (a fault counted).
    """
    try:
        call.on_response(response.status_code, RawHeaders(response.headers.raw))
        stack = _stack(request)
        if not _in_memory(stack, response, call):
            wrapper = stack.AsyncStream if is_async else stack.SyncStream
            response.stream = wrapper(response.stream, call)
    except Exception as exc:
        call.on_untracked(exc)
    return response


class MeteredTransport(httpx2.BaseTransport, Generic[Req, Resp]):
    """A sync transport that meters LLM calls and passes everything else straight through.

    ``inner`` is any httpx or httpx2 sync transport (``HTTPTransport``, a mock, a
    proxy transport). ``meter`` defaults to the process-wide ``meter.default_meter()``,
    looked up at each call (so ``set_default_meter`` applies) and built here, so a
    configuration error (a bad ``$METER_DEPLOYMENTS``) raises now, not inside a call.
    """

    def __init__(self, inner: SyncInner[Req, Resp], meter: Meter | None = None) -> None:
        self.inner = inner
        self.meter = meter
        if meter is None:
            default_meter()

    # One class serves both stacks, so it takes and returns the inner transport's own types
    # (``httpx.Request`` in, ``httpx.Response`` out, or httpx2's), not only httpx2's as its base says.
    def handle_request(self, request: Req) -> Resp:  # type: ignore[override]
        if _metering.get():
            return self.inner.handle_request(request)
        m = self.meter or default_meter_or_none()
        started = start(m, request) if m is not None else None
        if started is None:
            return self.inner.handle_request(request)
        call, request, refusal = started
        if refusal is not None:
            return cast(Resp, refused(call, request, refusal, is_async=False))
        token = _metering.set(True)
        try:
            response = self.inner.handle_request(request)
        except BaseException as exc:
            call.on_error(exc)
            raise
        finally:
            _metering.reset(token)
        return attach(call, request, response, is_async=False)

    def close(self) -> None:
        self.inner.close()


class AsyncMeteredTransport(httpx2.AsyncBaseTransport, Generic[Req, Resp]):
    """The async twin of ``MeteredTransport`` (any httpx or httpx2 async transport inside)."""

    def __init__(self, inner: AsyncInner[Req, Resp], meter: Meter | None = None) -> None:
        self.inner = inner
        self.meter = meter
        if meter is None:
            default_meter()

    async def handle_async_request(self, request: Req) -> Resp:  # type: ignore[override]  # see above
        if _metering.get():
            return await self.inner.handle_async_request(request)
        m = self.meter or default_meter_or_none()
        started = start(m, request) if m is not None else None
        if started is None:
            return await self.inner.handle_async_request(request)
        call, request, refusal = started
        if refusal is not None:
            return cast(Resp, refused(call, request, refusal, is_async=True))
        token = _metering.set(True)
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException as exc:
            call.on_error(exc)
            raise
        finally:
            _metering.reset(token)
        return attach(call, request, response, is_async=True)

    async def aclose(self) -> None:
        await self.inner.aclose()


if TYPE_CHECKING:  # mypy proves each stack's transports go in and that stack's own responses come out
    import httpx

    def _httpx_fits(inner: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        return MeteredTransport(inner).handle_request(request)

    def _httpx2_fits(inner: httpx2.HTTPTransport, request: httpx2.Request) -> httpx2.Response:
        return MeteredTransport(inner).handle_request(request)

    async def _httpx_async_fits(inner: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        return await AsyncMeteredTransport(inner).handle_async_request(request)

    async def _httpx2_async_fits(inner: httpx2.AsyncHTTPTransport, request: httpx2.Request) -> httpx2.Response:
        return await AsyncMeteredTransport(inner).handle_async_request(request)
