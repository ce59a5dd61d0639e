"""Which headers cross the proxy, in each direction.

A reverse proxy must not forward hop-by-hop headers (RFC 9110 section 7.6.1):
they describe one connection, not the message, and forwarding them breaks
framing (``transfer-encoding``) or keep-alive. Everything else passes as sent,
including ``api-key`` and ``authorization``, which the upstream needs and which
nothing here ever logs or stores.
"""

from __future__ import annotations

from collections.abc import Iterable

Header = tuple[bytes, bytes]

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection", b"te",
    b"trailer", b"transfer-encoding", b"upgrade",
})

MAX_HEADER_COUNT = 100
"""Header fields per request (Apache's ``LimitRequestFields`` default)."""
MAX_HEADER_BYTES = 16 * 1024
"""Bytes of one header field, name and value (an Entra ID bearer token is a few KiB)."""
MAX_HEADERS_TOTAL_BYTES = 64 * 1024
"""Bytes of all header fields together; also the server's limit on an incomplete request head."""


class HeadersTooLarge(ValueError):
    """The request's headers exceed the proxy's limits; the message says which (sent to the caller)."""


# Request-only: ``host`` names the proxy (the upstream's comes from the URL), ``content-length`` is
# recomputed from the body as forwarded (the meter may rewrite it), ``expect`` was answered by the
# proxy's own server before the body was read.
_REQUEST_ONLY = frozenset({b"host", b"content-length", b"expect"})
_REQUEST_DROP = HOP_BY_HOP | _REQUEST_ONLY


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip().lower() for token in value.split(b",") if token.strip()]


def _keep(headers: Iterable[Header], drop: frozenset[bytes]) -> list[Header]:
    """One pass: names lower-cased, ``drop`` and ``proxy-*`` left out; the names a ``Connection`` field lists
    (it is itself in ``drop``) are left out after it, from the whole list."""
    kept: list[Header] = []
    listed: list[bytes] | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered in drop or lowered.startswith(b"proxy-"):
            if lowered == b"connection":
                listed = _tokens(value) if listed is None else listed + _tokens(value)
            continue
        kept.append((lowered, value))
    if listed:
        return [field for field in kept if field[0] not in listed]
    return kept


def read_request_head(headers: Iterable[Header]) -> tuple[list[Header], bytes | None, str | None]:
    """What the proxy needs of a request's header fields, in one pass (the three functions above and the
    ``Host`` lookup each walked the list; they are kept as the reference in ``tests/proxy/test_request_building.py``):
    raises ``HeadersTooLarge`` past the count, the per-field size or the total size; returns the fields to forward
    (all but hop-by-hop, ``proxy-*``, ``host``, ``content-length``, ``expect``), the first ``Host`` value
    (``None``: none) and why the request's length is ambiguous (``Content-Length`` with ``Transfer-Encoding``,
    RFC 9112 section 6.1: refused, never guessed at), or ``None``."""
    kept: list[Header] = []
    listed: list[bytes] | None = None
    host: bytes | None = None
    has_length = has_coding = False
    total = count = 0
    drop = _REQUEST_DROP
    for name, value in headers:
        size = len(name) + len(value)
        total += size
        count += 1
        if size > MAX_HEADER_BYTES:
            raise HeadersTooLarge(f"a request header field exceeds {MAX_HEADER_BYTES} bytes")
        if count > MAX_HEADER_COUNT:
            raise HeadersTooLarge(f"the request has more than {MAX_HEADER_COUNT} header fields")
        if total > MAX_HEADERS_TOTAL_BYTES:
            raise HeadersTooLarge(f"the request headers exceed {MAX_HEADERS_TOTAL_BYTES} bytes in all")
        lowered = name.lower()
        if lowered in drop or lowered.startswith(b"proxy-"):
            if lowered == b"host":
                if host is None:
                    host = value
            elif lowered == b"content-length":
                has_length = True
            elif lowered == b"transfer-encoding":
                has_coding = True
            elif lowered == b"connection":
                listed = _tokens(value) if listed is None else listed + _tokens(value)
            continue
        kept.append((lowered, value))
    if listed:
        kept = [field for field in kept if field[0] not in listed]
    problem = "Content-Length together with Transfer-Encoding" if has_length and has_coding else None
    return kept, host, problem


def response_headers(headers: Iterable[Header]) -> list[Header]:
    """The upstream's headers as sent to the caller: all but hop-by-hop.

    ``content-length`` is kept: the body is relayed raw (never decoded), so it is
    exactly as long as the upstream said, and a client reading a truncated relay
    then sees the truncation instead of a clean end.
    """
    return _keep(headers, HOP_BY_HOP)


DEFAULT_HEAD_TIMEOUT = 10.0
"""Seconds to receive a whole request head, counted from when the connection waits for one."""
