"""An in-process inner transport that yields exactly the given chunks.

Real sockets cannot promise where a body is split (TCP coalesces writes), so
the tests that must control every chunk boundary (hypothesis splits, closing
at each event boundary) use this inner transport. Everything above it is the
real stack: the httpx/httpx2 client, the metered transport and its stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any


def chunk_transport(stack: Any, status: int, headers: list[tuple[str, str]], chunks: list[bytes],
                    fail_after: int | None = None, exc: BaseException | None = None) -> Any:
    """A sync+async transport for ``stack`` (httpx or httpx2) replaying ``chunks`` per request."""

    class Stream(stack.SyncByteStream, stack.AsyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.closed = False

        def __iter__(self) -> Iterator[bytes]:
            for i, chunk in enumerate(chunks):
                if fail_after is not None and i == fail_after:
                    raise exc or stack.ReadError("connection reset")
                yield chunk

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for chunk in self:
                yield chunk

        def close(self) -> None:
            self.closed = True

        async def aclose(self) -> None:
            self.closed = True

    class Transport(stack.BaseTransport, stack.AsyncBaseTransport):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.streams: list[Stream] = []

        def _response(self) -> Any:
            stream = Stream()
            self.streams.append(stream)
            return stack.Response(status, headers=headers, stream=stream)

        def handle_request(self, request: Any) -> Any:
            return self._response()

        async def handle_async_request(self, request: Any) -> Any:
            return self._response()

    return Transport()
