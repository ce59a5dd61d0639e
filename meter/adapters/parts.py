"""The parts of an httpx / httpx2 request and response that meter touches, as protocols.

The transports accept either stack's objects (the SDK's httpx2, or a user's httpx
client), so they are typed by what they use, not by one library's classes; the
``TYPE_CHECKING`` block below has mypy prove that both stacks' real classes fit,
so a change in either library's types shows up as a type error here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol


class URLPart(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int | None: ...

    @property
    def path(self) -> str: ...

    @property
    def query(self) -> bytes: ...


class RequestHeadersPart(Protocol):
    """Case-insensitive lookups (``x-stainless-retry-count``), and a copy to rewrite a body's length."""

    def get(self, key: str, /) -> str | None: ...

    def copy(self) -> RequestHeadersPart: ...

    def __setitem__(self, key: str, value: str) -> None: ...


class ResponseHeadersPart(Protocol):
    @property
    def raw(self) -> list[tuple[bytes, bytes]]: ...


class RequestPart(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def url(self) -> URLPart: ...

    @property
    def headers(self) -> RequestHeadersPart: ...

    @property
    def content(self) -> bytes: ...

    @property
    def extensions(self) -> Mapping[str, Any]: ...


class ResponsePart(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> ResponseHeadersPart: ...

    stream: Any
    """Replaced by meter's wrapper: each stack's own stream type, so not narrowed here."""


if TYPE_CHECKING:  # mypy proves that both stacks' real classes fit the protocols above
    import httpx
    import httpx2

    def _httpx_fits(request: httpx.Request, response: httpx.Response) -> tuple[RequestPart, ResponsePart]:
        return request, response

    def _httpx2_fits(request: httpx2.Request, response: httpx2.Response) -> tuple[RequestPart, ResponsePart]:
        return request, response
