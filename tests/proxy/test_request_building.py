"""The request head read in one pass and the upstream request built from a complete header list.

Both replaced slower code that did the same (``check_limits``, ``framing_problem``, ``request_headers``
and a ``Host`` lookup, each a walk of the list; ``httpx2.Request(content=...)`` adding its own
``Host`` and ``Content-Length``): these tests hold the new code to the old results.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from meter.apps.proxy import app as proxy_app
from meter.apps.proxy.app import ProxyApp
from meter.apps.proxy.headers import (
    HOP_BY_HOP,
    MAX_HEADER_BYTES,
    MAX_HEADER_COUNT,
    MAX_HEADERS_TOTAL_BYTES,
    Header,
    HeadersTooLarge,
    read_request_head,
)
from meter.apps.proxy.target import BadTarget

# -- the reference: the separate walks the one-pass reader replaced (each as it was in meter.apps.proxy.headers) --


def check_limits(headers: list[Header]) -> None:
    """Raise ``HeadersTooLarge`` past the count, the per-field size or the total size."""
    total = 0
    for count, (name, value) in enumerate(headers, 1):
        size = len(name) + len(value)
        total += size
        if size > MAX_HEADER_BYTES:
            raise HeadersTooLarge(f"a request header field exceeds {MAX_HEADER_BYTES} bytes")
        if count > MAX_HEADER_COUNT:
            raise HeadersTooLarge(f"the request has more than {MAX_HEADER_COUNT} header fields")
        if total > MAX_HEADERS_TOTAL_BYTES:
            raise HeadersTooLarge(f"the request headers exceed {MAX_HEADERS_TOTAL_BYTES} bytes in all")


def framing_problem(headers: list[Header]) -> str | None:
    """Why a request's length is ambiguous (both ``Content-Length`` and ``Transfer-Encoding``), or ``None``."""
    names = {name.lower() for name, _ in headers}
    if b"content-length" in names and b"transfer-encoding" in names:
        return "Content-Length together with Transfer-Encoding"
    return None


def request_headers(headers: list[Header]) -> list[Header]:
    """The caller's headers as sent upstream: all but hop-by-hop, ``proxy-*``, ``host``, ``content-length``,
    ``expect``, and the names a ``Connection`` field lists (wherever they stand); names lower-cased."""
    drop = HOP_BY_HOP | {b"host", b"content-length", b"expect"}
    listed: list[bytes] = []
    kept: list[Header] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in drop or lowered.startswith(b"proxy-"):
            if lowered == b"connection":
                listed += [token.strip().lower() for token in value.split(b",") if token.strip()]
            continue
        kept.append((lowered, value))
    return [field for field in kept if field[0] not in listed]


HEADS: list[list[Header]] = [
    [],
    [(b"host", b"proxy"), (b"api-key", b"k"), (b"content-type", b"application/json"), (b"content-length", b"2")],
    [(b"Host", b"a"), (b"HOST", b"b"), (b"X-Kept", b"1")],  # the first Host counts; names lower-cased
    [(b"connection", b"keep-alive, X-Foo"), (b"x-foo", b"gone"), (b"x-bar", b"kept"), (b"Connection", b"x-bar")],
    [(b"x-early", b"gone"), (b"connection", b" X-EARLY ,, close")],  # a listed name before the Connection field
    [(b"proxy-authorization", b"p"), (b"proxy-x", b"1"), (b"te", b"trailers"), (b"upgrade", b"h2c"),
     (b"keep-alive", b"5"), (b"trailer", b"x"), (b"expect", b"100-continue"), (b"authorization", b"Bearer t")],
    [(b"content-length", b"3"), (b"Transfer-Encoding", b"chunked")],
    [(b"transfer-encoding", b"chunked"), (b"x-a", b"")],
]


@pytest.mark.parametrize("head", HEADS)
def test_one_pass_gives_what_the_separate_filters_give(head: list[Header]) -> None:
    host = next((value for name, value in head if name.lower() == b"host"), None)
    check_limits(head)
    assert read_request_head(head) == (request_headers(head), host, framing_problem(head))


@pytest.mark.parametrize("head", [
    [(b"x-big", b"v" * MAX_HEADER_BYTES)],
    [(b"x-%d" % i, b"v") for i in range(MAX_HEADER_COUNT + 1)],
    [(b"x-%d" % i, b"v" * (MAX_HEADER_BYTES - 10)) for i in range(MAX_HEADERS_TOTAL_BYTES // MAX_HEADER_BYTES + 1)],
    [(b"x-many", b"v")] * (MAX_HEADER_COUNT - 1) + [(b"x-big", b"v" * MAX_HEADER_BYTES)],  # the first bound met wins
])
def test_one_pass_refuses_what_check_limits_refuses(head: list[Header]) -> None:
    with pytest.raises(HeadersTooLarge) as expected:
        check_limits(head)
    with pytest.raises(HeadersTooLarge) as got:
        read_request_head(head)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("upstream", ["http://127.0.0.1:9", "https://example.test", "http://example.test:8080/pre"])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "QUERY", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("body", [b"", b'{"messages": []}'])
def test_the_upstream_request_is_the_one_httpx2_builds(upstream: str, method: str, body: bytes) -> None:
    app = ProxyApp(upstream)
    fields = [(b"api-key", b"secret"), (b"content-type", b"application/json"), (b"x-dup", b"1"), (b"x-dup", b"2")]
    url = httpx2.URL(upstream.rstrip("/") + "/openai/deployments/d/chat/completions?api-version=1")
    built = app._upstream_request(method, url, list(fields), body)
    # What the proxy built before: httpx2 adds Host first, and a Content-Length where it decides to.
    reference = httpx2.Request(method, url, headers=fields,
                               content=body if body or method in ("POST", "PUT", "PATCH") else None,
                               extensions={"timeout": app._timeout})
    assert built.headers.raw == reference.headers.raw
    assert built.content == reference.content == body  # in memory, where the meter reads it
    assert (built.method, built.url, built.extensions) == (reference.method, reference.url, reference.extensions)
    assert b"".join(built.stream) == body  # type: ignore[arg-type]


def _scope(path: bytes, host: bytes = b"127.0.0.1", query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "method": "POST", "http_version": "1.1", "path": path.decode(), "raw_path": path,
            "query_string": query, "headers": [(b"host", host)], "server": ("127.0.0.1", 1)}


def test_checked_targets_and_hosts_are_remembered_within_bounds() -> None:
    app = ProxyApp("http://127.0.0.1:9")
    url, _ = app._target(_scope(b"/openai/x", query=b"api-version=1"))
    assert app._target(_scope(b"/openai/x", query=b"api-version=1"))[0] is url  # remembered
    for i in range(proxy_app._CACHED * 2):
        app._target(_scope(b"/p/%d" % i))
        assert len(app._urls) <= proxy_app._CACHED
    app._target(_scope(b"/" + b"a" * proxy_app._CACHED_BYTES))
    assert not any(len(path) > proxy_app._CACHED_BYTES for path, _ in app._urls)  # long targets: not kept
    # Refusals are never remembered as passes: the same bad Host, target or query is refused each time.
    for _ in range(2):
        with pytest.raises(BadTarget):
            app._target(_scope(b"/openai/x", host=b"evil.example"))
        with pytest.raises(BadTarget):
            app._target(_scope(b"/openai/../x"))
        with pytest.raises(BadTarget):
            app._target(_scope(b"/openai/x", query=b"a=<b>"))
    for i in range(proxy_app._CACHED * 2):
        app._target(_scope(b"/", host=b"localhost:%d" % i))
        assert len(app._hosts_seen) <= proxy_app._CACHED
