"""The proxy's own HTTP parser (httptools, ``meter.apps.proxy.protocol``) on what llhttp reads its own way.

llhttp stops parsing at the end of a head that asks for an upgrade and hands
what follows over as upgrade data: the body of such a request must never be
forwarded as empty, nor a request hidden behind it be forwarded at all. Raw
bytes over real sockets, with a recording upstream.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import meter
from meter.apps.proxy import ProxyServer
from tests.reliability.test_proxy_attacks import _exchange
from tests.support.recorder import RecordingServer

HIDDEN = b"GET /openai/hidden HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream: RecordingServer) -> Iterator[ProxyServer]:
    with ProxyServer(upstream.url, meter=meter.Meter(otel=False, prometheus=False, price_book=False)) as server:
        yield server


def test_an_upgrade_request_with_a_body_is_refused_and_reaches_nothing(proxy: ProxyServer,
                                                                      upstream: RecordingServer) -> None:
    before = len(upstream.seen)
    body = b'{"messages": []}'
    head = (b"POST /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    answer, lived = _exchange(proxy.port, head + body + HIDDEN)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1 and lived is not None
    assert len(upstream.seen) == before


def test_an_upgrade_request_without_a_body_is_answered_plainly_and_the_connection_closed(
        proxy: ProxyServer, upstream: RecordingServer) -> None:
    before = len(upstream.seen)
    head = b"GET /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"
    answer, lived = _exchange(proxy.port, head + HIDDEN)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert lived is not None and lived < 2.0  # closed after the answer, not left to the keep-alive timeout (5 s)
    assert [seen.request_line for seen in upstream.seen[before:]] == [b"GET /openai/models HTTP/1.1"]
    assert b"upgrade" not in upstream.seen[-1].head.lower()  # hop-by-hop: never forwarded
