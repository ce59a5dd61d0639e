"""The proxy's upstream pool (``meter.apps.proxy.pool``) against scripted servers on loopback sockets.

Each server here is a few lines of asyncio writing exact bytes, so the cases httpx2's transport
handled for the proxy before can be replayed byte for byte: the same answers must come out of
both transports (status, header fields, raw body), and the pool must reuse, drop and close its
connections as a keep-alive client should.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2
import pytest

from meter.apps.proxy.pool import UpstreamTransport

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]
"""Writes the answer to one request head; returns whether the connection stays open for another."""

TIMEOUT = httpx2.Timeout(5.0).as_dict()


class Upstream:
    """A loopback HTTP/1.1 server that reads request heads (and ``content-length`` bodies) and runs ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.client_closed = asyncio.Event()  # a connection ended by the client (EOF while the server waited)
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Upstream:
        if self._server is None:  # else started by the test (TLS)
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.client_closed.set()
                    return
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                if b"\r\ntransfer-encoding: chunked\r\n" in head.lower():
                    self.requests.append(head + await reader.readuntil(b"\r\n0\r\n\r\n"))
                else:
                    self.requests.append(head + await reader.readexactly(length))
                if not await self.answer(head, writer):
                    return
        except ConnectionError:
            self.client_closed.set()
        finally:
            writer.close()


def request(url: str, method: str = "GET", content: bytes | None = None) -> httpx2.Request:
    return httpx2.Request(method, url, content=content, extensions={"timeout": TIMEOUT})


async def fetch(transport: httpx2.AsyncBaseTransport, url: str, method: str = "GET",
                content: bytes | None = None) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
    response = await transport.handle_async_request(request(url, method, content))
    try:
        chunks = [chunk async for chunk in response.aiter_raw()]
    finally:
        await response.aclose()
    return response.status_code, response.headers.raw, chunks


def fixed(raw: bytes, keep: bool = True) -> Answer:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        await writer.drain()
        return keep

    return answer


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"


async def test_sequential_requests_share_one_keepalive_connection() -> None:
    async with Upstream(fixed(OK)) as upstream:
        pool = UpstreamTransport(upstream.url, max_connections=4)
        for _ in range(5):
            status, _, chunks = await fetch(pool, upstream.url + "/x")
            assert (status, b"".join(chunks)) == (200, b'{"ok":true}')
        await pool.aclose()
    assert upstream.connections == 1 and pool.connections_opened == 1
    assert len(upstream.requests) == 5


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    """The server answers and then hangs up (no ``Connection: close``); the next request goes on a new one."""
    async with Upstream(fixed(OK, keep=False)) as upstream:
        pool = UpstreamTransport(upstream.url)
        assert (await fetch(pool, upstream.url + "/a"))[0] == 200
        for _ in range(200):  # the server's FIN arrives while the connection is idle in the pool
            if not pool._idle[-1].open:
                break
            await asyncio.sleep(0.01)
        status, _, chunks = await fetch(pool, upstream.url + "/b", "POST", b'{"n": 2}')
        await pool.aclose()
    assert (status, b"".join(chunks)) == (200, b'{"ok":true}')
    assert upstream.connections == 2 and len(upstream.requests) == 2  # each request sent once


async def test_a_request_already_sent_is_not_sent_again() -> None:
    """The server takes the request and hangs up without an answer: an error, never a second copy upstream."""
    async with Upstream(fixed(b"", keep=False)) as upstream:
        pool = UpstreamTransport(upstream.url)
        with pytest.raises(httpx2.RemoteProtocolError):
            await fetch(pool, upstream.url + "/bill-me-once", "POST", b"{}")
        await pool.aclose()
    assert len(upstream.requests) == 1


async def test_request_bodies_arrive_whole_small_large_and_chunked() -> None:
    """A small body leaves in the write of its head, a large one in a write after it, a chunked one framed."""
    large = bytes(range(256)) * 32768  # 8 MiB
    async with Upstream(fixed(OK)) as upstream:
        pool = UpstreamTransport(upstream.url)
        await fetch(pool, upstream.url + "/small", "POST", b'{"a": 1}')
        await fetch(pool, upstream.url + "/large", "POST", large)
        chunked = httpx2.Request("POST", upstream.url + "/chunked", headers={"transfer-encoding": "chunked"},
                                 content=b"hello", extensions={"timeout": TIMEOUT})
        response = await pool.handle_async_request(chunked)
        await response.aread()
        await pool.aclose()
    small, big, framed = upstream.requests
    assert small.lower().endswith(b'\r\ncontent-length: 8\r\n\r\n{"a": 1}')
    assert big.endswith(b"\r\n\r\n" + large)
    assert framed.endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert upstream.connections == 1


async def test_an_answer_closed_unread_leaves_nothing_for_the_next() -> None:
    """The whole answer arrived but nobody read it (the caller left): the connection is clean for the next."""
    answers = iter([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst", OK])

    async def next_answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        return await fixed(next(answers))(head, writer)

    async with Upstream(next_answer) as upstream:
        pool = UpstreamTransport(upstream.url)
        response = await pool.handle_async_request(request(upstream.url + "/first"))
        await asyncio.sleep(0.05)  # its body is in
        await response.aclose()
        status, _, chunks = await fetch(pool, upstream.url + "/second")
        await pool.aclose()
    assert (status, b"".join(chunks)) == (200, b'{"ok":true}')


async def test_a_request_waits_for_a_free_connection_up_to_the_pool_timeout() -> None:
    async with Upstream(_endless) as upstream:
        pool = UpstreamTransport(upstream.url, max_connections=1)
        holding = await pool.handle_async_request(request(upstream.url + "/stream"))
        waiting = httpx2.Request("GET", upstream.url + "/", extensions={"timeout": httpx2.Timeout(0.2).as_dict()})
        with pytest.raises(httpx2.PoolTimeout):
            await pool.handle_async_request(waiting)
        later = asyncio.ensure_future(pool.handle_async_request(request(upstream.url + "/later")))
        await asyncio.sleep(0.05)
        assert not later.done()
        await holding.aclose()  # cut mid-stream: closed, and the waiting request gets a new connection
        await (await later).aclose()
        await pool.aclose()
    assert upstream.connections == 2 and pool.connections_opened == 2


CASES = {
    "content-length": OK,
    "chunked, with extensions and trailers": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Two: a\r\nx-two: b\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: dropped\r\n\r\n"),
    "informational first": b"HTTP/1.1 100 Continue\r\n\r\n" + OK,
    "no content": b"HTTP/1.1 204 No Content\r\nX-A:  padded \t\r\n\r\n",
    "gzip bytes stay encoded": (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n"
                                b"\x1f\x8b\x08\x00"),
}


@pytest.mark.parametrize("raw", list(CASES.values()), ids=list(CASES))
async def test_answers_are_what_httpx2s_transport_gives(raw: bytes) -> None:
    async with Upstream(fixed(raw)) as upstream:
        ours, theirs = UpstreamTransport(upstream.url), httpx2.AsyncHTTPTransport()
        got, want = await fetch(ours, upstream.url + "/"), await fetch(theirs, upstream.url + "/")
        await ours.aclose()
        await theirs.aclose()
    assert (got[0], got[1], b"".join(got[2])) == (want[0], want[1], b"".join(want[2]))


async def test_the_answer_to_head_has_no_body_whatever_its_length_says() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
    async with Upstream(fixed(raw)) as upstream:
        ours, theirs = UpstreamTransport(upstream.url), httpx2.AsyncHTTPTransport()
        got = await asyncio.wait_for(fetch(ours, upstream.url + "/", "HEAD"), 2)
        want = await fetch(theirs, upstream.url + "/", "HEAD")
        assert (await fetch(ours, upstream.url + "/", "HEAD"))[0] == 200  # on a new connection
        await ours.aclose()
        await theirs.aclose()
    assert (got[0], got[1], got[2]) == (want[0], want[1], []) == (200, want[1], [])


async def test_a_body_that_runs_to_the_close_ends_there_and_its_connection_is_not_kept() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"
    async with Upstream(fixed(raw, keep=False)) as upstream:
        pool = UpstreamTransport(upstream.url)
        status, _, chunks = await fetch(pool, upstream.url + "/")
        await fetch(pool, upstream.url + "/")
        await pool.aclose()
    assert (status, b"".join(chunks)) == (200, b"until the end")
    assert upstream.connections == 2


async def test_a_head_split_across_reads() -> None:
    async def trickle(head: bytes, writer: asyncio.StreamWriter) -> bool:
        for i in range(0, len(OK), 7):
            writer.write(OK[i:i + 7])
            await writer.drain()
            await asyncio.sleep(0.005)
        return True

    async with Upstream(trickle) as upstream:
        pool = UpstreamTransport(upstream.url)
        status, headers, chunks = await fetch(pool, upstream.url + "/")
        assert (await fetch(pool, upstream.url + "/"))[0] == 200
        await pool.aclose()
    assert status == 200 and headers == [(b"Content-Type", b"application/json"), (b"Content-Length", b"11")]
    assert b"".join(chunks) == b'{"ok":true}'
    assert upstream.connections == 1


async def _endless(head: bytes, writer: asyncio.StreamWriter) -> bool:
    """A chunked stream that never ends on its own: one event, then one every 10 ms."""
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    while True:
        writer.write(b"d\r\ndata: {...}\n\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)


async def test_a_consumer_leaving_mid_stream_closes_the_upstream_connection() -> None:
    async with Upstream(_endless) as upstream:
        pool = UpstreamTransport(upstream.url)
        response = await pool.handle_async_request(request(upstream.url + "/stream"))

        async def consume() -> None:
            async for _ in response.aiter_raw():
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.1)
        task.cancel()  # what the proxy's disconnect watcher does
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await response.aclose()
        await asyncio.wait_for(upstream.client_closed.wait(), 2)
        assert not pool._idle  # the cut connection was not kept
        await pool.aclose()


async def test_a_slow_consumer_stops_the_upstream() -> None:
    """Reading one chunk and stopping: the server can push only what the socket buffers hold."""
    total = 256 * 1024 * 1024
    sent = 0

    async def flood(head: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        block = b"x" * 65536
        while sent < total:
            writer.write(block)
            await writer.drain()
            sent += len(block)
        return False

    async with Upstream(flood) as upstream:
        pool = UpstreamTransport(upstream.url)
        response = await pool.handle_async_request(request(upstream.url + "/big"))
        chunks = response.aiter_raw()
        assert await chunks.__anext__()
        last, stable = -1, 0
        while stable < 10:
            await asyncio.sleep(0.05)
            stable = stable + 1 if sent == last else 0
            last = sent
        await response.aclose()
        await pool.aclose()
    assert sent < total // 8, f"the server pushed {sent >> 20} MiB past a consumer that stopped"


async def test_timeouts_and_refusals_are_httpx2s_errors() -> None:
    async def silent(head: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async with Upstream(silent) as upstream:
        pool = UpstreamTransport(upstream.url)
        slow = httpx2.Request("GET", upstream.url + "/", extensions={"timeout": httpx2.Timeout(0.1).as_dict()})
        with pytest.raises(httpx2.ReadTimeout):
            await pool.handle_async_request(slow)
        with pytest.raises(httpx2.UnsupportedProtocol):  # only its one upstream
            await pool.handle_async_request(request("http://127.0.0.2:1/"))
        await pool.aclose()
    closed = UpstreamTransport(upstream.url)
    with pytest.raises(httpx2.ConnectError):
        await closed.handle_async_request(request(upstream.url + "/"))


async def test_a_header_that_would_split_the_head_is_refused() -> None:
    pool = UpstreamTransport("http://127.0.0.1:9")
    bad = request("http://127.0.0.1:9/")
    bad.headers["x-evil"] = "a\r\nx-injected: 1"
    with pytest.raises(httpx2.LocalProtocolError):
        await pool.handle_async_request(bad)


def _self_signed() -> tuple[bytes, bytes]:
    """A certificate for 127.0.0.1 and its key (PEM), made here: the test needs no files and no network."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meter test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


async def test_an_https_upstream_is_verified_and_pooled(tmp_path: Path) -> None:
    cert, key = _self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    upstream = Upstream(fixed(OK))
    upstream._server = await asyncio.start_server(upstream._serve, "127.0.0.1", 0, ssl=server_side)
    upstream.port = upstream._server.sockets[0].getsockname()[1]
    url = f"https://127.0.0.1:{upstream.port}"
    async with upstream:
        trusting = UpstreamTransport(url, ssl_context=ssl.create_default_context(cadata=cert.decode()))
        for _ in range(3):
            status, _, chunks = await fetch(trusting, url + "/tls")
            assert (status, b"".join(chunks)) == (200, b'{"ok":true}')
        await trusting.aclose()
        default = UpstreamTransport(url)  # httpx2's verification: a self-signed certificate is refused
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await fetch(default, url + "/tls")
        await default.aclose()
    assert trusting.connections_opened == 1 and len(upstream.requests) == 3
