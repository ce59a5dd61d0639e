"""Property 7 (the proxy): hostile requests get a clear 4xx, reach nothing, and the proxy keeps serving.

Defect 4: the proxy pasted the raw request target onto the upstream URL, so
``@evil:8080/x`` made the upstream into userinfo and sent the caller's api-key
to ``evil``; other targets left the upstream's path prefix or gave a 500 with a
traceback. Defect 5: a 100 KB header or 8,000 headers were forwarded. Every
request here is sent as raw bytes over a real socket to a real proxy in front of
a recording upstream, with a second recording server as the attacker's host.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import socket
import time
from collections.abc import Iterator

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import meter
from meter.apps.proxy import ProxyServer
from meter.apps.proxy.headers import MAX_HEADER_BYTES, MAX_HEADER_COUNT
from meter.apps.proxy.target import BadTarget, upstream_url
from tests.reliability.conftest import soak
from tests.support.recorder import RecordingServer, raw_request
from tests.support.waiting import wait_until

KEY = "sk-ATTACK-7e1f0c9d"


@pytest.fixture(scope="module")
def evil() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture(scope="module", params=["", "/aoai"], ids=["no-prefix", "prefix"])
def proxy(request: pytest.FixtureRequest, upstream: RecordingServer) -> Iterator[ProxyServer]:
    m = meter.Meter(otel=False, prometheus=False, price_book=False)
    with ProxyServer(upstream.url + request.param, meter=m) as server:
        yield server


def _send(proxy: ProxyServer, target: str, extra: str = "", host: str | None = None) -> tuple[int, bytes]:
    host_line = f"Host: {host or f'127.0.0.1:{proxy.port}'}\r\n" if host != "" else ""
    head = f"GET {target} HTTP/1.1\r\n{host_line}api-key: {KEY}\r\n{extra}\r\n".encode("latin-1")
    answer = raw_request(proxy.port, head)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, answer


def _prefix(proxy: ProxyServer) -> str:
    return proxy.app.upstream.split(":", 2)[2].partition("/")[2]


HOSTILE_TARGETS = [
    "@{evil}/x",                       # the upstream becomes userinfo: https://upstream@evil/x
    ":{evil_port}/x",                  # the upstream's host with the attacker's port
    ".evil.example/x",                 # the upstream's name as a prefix of another domain
    "http://{evil}/x",                 # absolute-form
    "https://{evil}/x",
    "{evil}",                          # authority-form
    "*",                               # asterisk-form
    "/../other/",                      # out of the upstream's path prefix
    "/openai/../../other",
    "/%2e%2e/other",
    "/%2E./other",
    "/..%2Fother",
    "/openai/%2e%2e%5c%2e%2e%5cother",
    "/a%00b",
    "/x%zz",
    "/a b",
    "/a\\..\\b",
    "/a#frag",
    "/\u00e9",
]
# Not even HTTP to the proxy's parser (llhttp: a target must start with "/", "*" or a scheme, and be ASCII):
# refused by the server before the proxy app sees it. The app refuses the others, and these too under a
# laxer server (``upstream_url``, property-tested below).
SERVER_REFUSED = {"@{evil}/x", ":{evil_port}/x", ".evil.example/x", "{evil}", "/a b", "/\u00e9"}


@pytest.mark.parametrize("template", HOSTILE_TARGETS)
def test_hostile_targets_are_refused_and_reach_nothing(template: str, proxy: ProxyServer,
                                                       upstream: RecordingServer, evil: RecordingServer) -> None:
    target = template.format(evil=f"127.0.0.1:{evil.port}", evil_port=evil.port)
    before_up, before_evil = len(upstream.seen), len(evil.seen)
    status, answer = _send(proxy, target)
    assert status == 400, answer
    body = answer.partition(b"\r\n\r\n")[2]
    if template in SERVER_REFUSED:  # not even HTTP: the server refuses it before the proxy sees it
        assert body == b"Invalid HTTP request received."
    else:
        error = json.loads(body)["error"]
        assert error["code"] == "ProxyBadRequest" and error["message"]
    assert len(evil.seen) == before_evil, "the attacker's host was reached"
    assert len(upstream.seen) == before_up, "a refused request was forwarded"
    assert KEY.encode() not in answer and b"Traceback" not in answer


@pytest.mark.parametrize("method", ["CONNECT", "TRACE"])
def test_tunnels_and_traces_are_refused(method: str, proxy: ProxyServer, upstream: RecordingServer) -> None:
    before = len(upstream.seen)
    target = f"127.0.0.1:{proxy.port}" if method == "CONNECT" else "/openai/models"
    answer = raw_request(proxy.port, f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\napi-key: {KEY}\r\n\r\n"
                         .encode())
    assert answer.startswith((b"HTTP/1.1 405", b"HTTP/1.1 400")), answer
    assert len(upstream.seen) == before


def test_plain_targets_go_to_the_upstream_under_its_prefix(proxy: ProxyServer, upstream: RecordingServer) -> None:
    prefix = "/" + _prefix(proxy) if _prefix(proxy) else ""
    for target in ("/openai/deployments/d/chat/completions?api-version=2024-10-21",
                   "//openai/deployments/d/chat/completions?api-version=2024-10-21",  # the SDK's double slash
                   "/echo/a%2Fb/c?x=1&sig=%2B%3D", "/a.b/...c/x..y"):
        status, _ = _send(proxy, target)
        assert status == 200
        assert upstream.seen[-1].request_line == f"GET {prefix}{target} HTTP/1.1".encode()
        assert f"host: 127.0.0.1:{upstream.port}".encode() in upstream.seen[-1].head.lower()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "upstream.example", "10.9.8.7",
                                  "127.0.0.1@evil.example", "evil.example/x", "[::1", ""])
def test_a_foreign_or_malformed_host_is_refused(host: str, proxy: ProxyServer, upstream: RecordingServer) -> None:
    before = len(upstream.seen)
    status, answer = _send(proxy, "/openai/models", host=host)
    assert status == 400, answer
    assert len(upstream.seen) == before


@pytest.mark.parametrize("host", ["localhost:8080", "127.0.0.1", "127.0.0.2:1", "[::1]:80", "LOCALHOST."])
def test_loopback_hosts_are_accepted(host: str, proxy: ProxyServer) -> None:
    assert _send(proxy, "/openai/models", host=host)[0] == 200


def test_allowed_hosts_add_names(upstream: RecordingServer) -> None:
    m = meter.Meter(otel=False, prometheus=False, price_book=False)
    with ProxyServer(upstream.url, meter=m, allowed_hosts=["meter-proxy.internal"]) as named:
        assert _send(named, "/x", host="meter-proxy.internal:8080")[0] == 200
        assert _send(named, "/x", host="other.internal")[0] == 400
    with ProxyServer(upstream.url, meter=m, allowed_hosts=["*"]) as anyone:
        assert _send(anyone, "/x", host="whatever.example")[0] == 200
        assert _send(anyone, "/x", host="bad/host")[0] == 400


@pytest.mark.parametrize("extra", [
    "x-big: " + "a" * 100_000 + "\r\n",
    "x-big: " + "a" * (MAX_HEADER_BYTES + 1) + "\r\n",
    "".join(f"x-h{i}: v\r\n" for i in range(8_000)),
    "".join(f"x-h{i}: v\r\n" for i in range(MAX_HEADER_COUNT)),  # with host and api-key: over the count
    "".join(f"x-h{i}: {'v' * 1000}\r\n" for i in range(70)),  # each small, together over 64 KiB
], ids=["100KB", "over-field-limit", "8000-headers", "101-headers", "over-total"])
def test_oversized_headers_get_431_and_the_proxy_keeps_serving(extra: str, proxy: ProxyServer,
                                                               upstream: RecordingServer) -> None:
    before = len(upstream.seen)
    status, answer = _send(proxy, "/openai/models", extra)
    assert status in (431, 400), answer  # 400: the HTTP server's own head limit, when the head came in pieces
    assert len(upstream.seen) == before
    assert _send(proxy, "/openai/models")[0] == 200


def test_headers_at_the_limits_pass(proxy: ProxyServer, upstream: RecordingServer) -> None:
    extra = "".join(f"x-h{i}: v\r\n" for i in range(MAX_HEADER_COUNT - 2))  # + host + api-key = the limit
    assert _send(proxy, "/openai/models", extra)[0] == 200
    name = "x-big: "
    assert _send(proxy, "/openai/models", name + "a" * (MAX_HEADER_BYTES - len(name) + 2) + "\r\n")[0] == 200


def test_a_slow_oversized_head_is_cut_by_the_server(proxy: ProxyServer) -> None:
    """A head trickled in pieces never grows past the server's limit: it answers and closes."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
        conn.sendall(b"GET /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = b""
        try:
            for _ in range(400):
                conn.sendall(b"x-slow: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            answer = conn.recv(65536)
    assert answer == b"" or answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), answer[:200]
    assert _send(proxy, "/openai/models")[0] == 200


@settings(max_examples=soak(3000, 100_000), deadline=None)
@given(path=st.binary(max_size=60) | st.text(alphabet="/.%2eEfF5cC@:?#\\abx", max_size=30).map(str.encode),
       query=st.binary(max_size=20))
def test_any_target_stays_on_the_upstream_or_is_refused(path: bytes, query: bytes) -> None:
    """Whatever the bytes, the URL has the upstream's scheme, host and port, and its path stays under the prefix."""
    base = httpx2.URL("https://res.openai.azure.com:8443/aoai")
    try:
        url = upstream_url(base, path, query)
    except BadTarget:
        return
    assert (url.scheme, url.host, url.port) == ("https", "res.openai.azure.com", 8443)
    assert url.raw_path.startswith(b"/aoai/")
    resolved = posixpath.normpath(url.path)  # how an upstream resolving dot segments would read it
    assert resolved == "/aoai" or resolved.startswith("/aoai/")


# Issue 20 item 3: request smuggling, and slow clients holding the proxy's slots.

def _until_closed(conn: socket.socket, limit: float) -> tuple[bytes, float | None]:
    """What the server sends until it closes ``conn``, and how many seconds that took (``None``: open at ``limit``)."""
    started = time.monotonic()
    answer = b""
    while (remaining := started + limit - time.monotonic()) > 0:
        conn.settimeout(remaining)
        try:
            piece = conn.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return answer, time.monotonic() - started
        if not piece:
            return answer, time.monotonic() - started
        answer += piece
    return answer, None


def _exchange(port: int, *pieces: bytes, pause: float = 0.1, limit: float = 5.0) -> tuple[bytes, float | None]:
    """Send ``pieces`` on one connection (``pause`` apart), then read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as conn:
        for number, piece in enumerate(pieces):
            if number:
                time.sleep(pause)
            conn.sendall(piece)
        return _until_closed(conn, limit)


SMUGGLED = f"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\napi-key: {KEY}\r\n\r\n"
_CHUNKED_END = "0\r\n\r\n"


def _framed(framing: str) -> bytes:
    """A POST whose body ends, chunk-wise, before a second request hidden in it; ``framing`` are its length headers."""
    body = _CHUNKED_END + SMUGGLED
    return (f"POST /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\napi-key: {KEY}\r\n"
            + framing.format(length=len(body)) + "\r\n" + body).encode("latin-1")


FRAMING_ATTACKS = {
    "CL.TE": _framed("Content-Length: {length}\r\nTransfer-Encoding: chunked\r\n"),
    "TE.CL": _framed("Transfer-Encoding: chunked\r\nContent-Length: {length}\r\n"),
    "TE.CL-short": _framed("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
    "obs-fold-SP": b"GET /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\nx-folded: a\r\n b\r\n\r\n",
    "obs-fold-HT": b"GET /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\nx-folded: a\r\n\tb\r\n\r\n",
    "obs-fold-hides-TE": _framed("Content-Length: {length}\r\nx-pad: x\r\n Transfer-Encoding: chunked\r\n"),
}


def _refused_and_closed(answer: bytes, lived: float | None) -> None:
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # nothing after the refusal was answered
    assert lived is not None, "the connection was kept open after the refusal"


@pytest.mark.parametrize("attack", FRAMING_ATTACKS.values(), ids=FRAMING_ATTACKS.keys())
def test_ambiguous_framing_is_refused_and_the_connection_closed(attack: bytes, proxy: ProxyServer,
                                                                upstream: RecordingServer) -> None:
    """RFC 9112 6.1 and 5.2: Content-Length with Transfer-Encoding, and obs-fold, get a 400 and a close."""
    before = len(upstream.seen)
    answer, lived = _exchange(proxy.port, attack)
    _refused_and_closed(answer, lived)
    time.sleep(0.2)  # a forward that was under way would have arrived by now
    assert len(upstream.seen) == before, [seen.request_line for seen in upstream.seen[before:]]
    assert _send(proxy, "/openai/models")[0] == 200


@pytest.mark.parametrize("pieces", [
    (b"GET /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\nx-a: a\r\n", b" b\r\n\r\n"),
    (b"GET /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\nx-a: a\r", b"\n\tb\r\n\r\n"),
    (b"GET /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\nx-a: a\n", b" b\n\n"),
], ids=["split-before-fold", "split-inside-crlf", "bare-lf"])
def test_a_fold_split_across_packets_is_refused(pieces: tuple[bytes, ...], proxy: ProxyServer,
                                                upstream: RecordingServer) -> None:
    before = len(upstream.seen)
    _refused_and_closed(*_exchange(proxy.port, *pieces))
    time.sleep(0.2)
    assert len(upstream.seen) == before


def test_a_folded_head_pipelined_after_a_good_request_is_refused(proxy: ProxyServer,
                                                                 upstream: RecordingServer) -> None:
    """The second head was already buffered when the first answer went out: it is checked all the same."""
    before = len(upstream.seen)
    good = b"GET /openai/first HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    folded = b"GET /openai/second HTTP/1.1\r\nHost: 127.0.0.1\r\nx-a: a\r\n b\r\n\r\n"
    answer, lived = _exchange(proxy.port, good + folded)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert answer.count(b"HTTP/1.1 400") == 1 and answer.count(b"HTTP/1.1 ") == 2, answer
    assert lived is not None
    time.sleep(0.2)
    assert [seen.request_line.split(b" ")[1] for seen in upstream.seen[before:]] == [
        _prefix_bytes(proxy) + b"/openai/first"]


def _prefix_bytes(proxy: ProxyServer) -> bytes:
    return ("/" + _prefix(proxy) if _prefix(proxy) else "").encode()


def test_bodies_with_folded_looking_lines_and_pipelined_requests_still_pass(proxy: ProxyServer,
                                                                           upstream: RecordingServer) -> None:
    """Only heads are checked: a pretty-printed JSON body (lines starting with spaces) is the caller's business."""
    body = b'{\n  "messages": [\n\t{"role": "user"}\n  ]\n}\n\n \n'
    post = (b"POST /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    chunked = (b"POST /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n"
               + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    last = b"GET /openai/last HTTP/1.1\r\nHost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    before = len(upstream.seen)
    answer, lived = _exchange(proxy.port, post + chunked + post + last)
    assert answer.count(b"HTTP/1.1 200") == 4, answer
    assert lived is not None  # closed because the last request asked for it
    assert len(upstream.seen) == before + 4


def _meter() -> meter.Meter:
    return meter.Meter(otel=False, prometheus=False, price_book=False)


STALLED_HEAD = b"POST /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 1000\r\n\r\n"


def test_stalled_bodies_hold_no_slot_and_a_caller_is_served_at_once(upstream: RecordingServer,
                                                                    figures: dict[str, object]) -> None:
    """The issue's case: ``max_concurrency=2``, two callers send a head and 10 of 1000 body bytes, then stall."""
    with ProxyServer(upstream.url, meter=_meter(), max_concurrency=2, queue_timeout=2.0) as proxy:
        stalled = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(2)]
        try:
            for conn in stalled:
                conn.sendall(STALLED_HEAD + b"0123456789")
            time.sleep(0.3)  # they are in: the proxy is reading their bodies
            started = time.monotonic()
            status, answer = _send(proxy, "/openai/models")
            waited = time.monotonic() - started
            assert status == 200, answer
            # The served caller's slot is released just after its last byte is sent:
            # wait for that, with the two stalled bodies still being read.
            with contextlib.suppress(AssertionError):  # reported below through ``held``
                wait_until(lambda: proxy.app.receiving == 2 and proxy.app.in_flight == 0, timeout=2.0)
            held = proxy.app.in_flight
            assert proxy.app.receiving == 2
        finally:
            for conn in stalled:
                conn.close()
    figures["proxy slots held by 2 stalled bodies (max_concurrency 2)"] = held
    figures["proxy answer time beside 2 stalled bodies (s)"] = round(waited, 3)
    assert held == 0
    assert waited < 1.0


def test_a_stalled_body_gets_408_and_is_closed_after_the_body_timeout(upstream: RecordingServer,
                                                                     figures: dict[str, object]) -> None:
    before = len(upstream.seen)
    with ProxyServer(upstream.url, meter=_meter(), body_timeout=0.5) as proxy:
        answer, lived = _exchange(proxy.port, STALLED_HEAD + b"0123456789")
        assert proxy.app.receiving == 0 and proxy.app.in_flight == 0
    figures["proxy stalled-body connection lifetime, body_timeout 0.5 s (s)"] = lived and round(lived, 3)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "ProxyRequestTimeout"
    assert answer.count(b"HTTP/1.1 ") == 1
    assert lived is not None and 0.4 < lived < 1.5
    assert len(upstream.seen) == before


@pytest.mark.parametrize("sent", [b"", b"POST /openai/models HTTP/1.1\r\nHost: 127", STALLED_HEAD[:-2]],
                         ids=["nothing", "half-a-head", "head-without-blank-line"])
def test_a_connection_that_never_finishes_a_head_is_closed_after_the_head_timeout(
        sent: bytes, upstream: RecordingServer, figures: dict[str, object]) -> None:
    with ProxyServer(upstream.url, meter=_meter(), head_timeout=0.5) as proxy:
        answer, lived = _exchange(proxy.port, sent)
    figures[f"proxy unfinished-head connection lifetime ({len(sent)} bytes sent), head_timeout 0.5 s (s)"] = (
        lived and round(lived, 3))
    assert answer == b""
    assert lived is not None and 0.4 < lived < 1.5


def test_a_trickled_head_is_closed_after_the_head_timeout_however_busy(upstream: RecordingServer) -> None:
    """The bound is on the whole head, not between bytes: a header line every 0.1 s does not keep it open."""
    with ProxyServer(upstream.url, meter=_meter(), head_timeout=0.5) as proxy, \
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as conn:
        conn.sendall(b"GET /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        lived = None
        for number in range(50):
            try:
                conn.sendall(f"x-trickle-{number}: v\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                lived = time.monotonic() - started
                break
            _, closed = _until_closed(conn, 0.1)
            if closed is not None:
                lived = time.monotonic() - started
                break
    assert lived is not None and 0.4 < lived < 1.5


def test_the_head_clock_starts_again_for_each_request_on_a_connection(upstream: RecordingServer) -> None:
    """After an answer the next head is bounded too; heads and bodies sent within the bounds still pass."""
    with ProxyServer(upstream.url, meter=_meter(), head_timeout=1.0, body_timeout=1.0) as proxy, \
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as conn:
        for piece in (b"POST /openai/models HTTP/1.1\r\n", b"Host: 127.0.0.1\r\ncontent-length: 6\r\n\r\n",
                      b"abc", b"def"):
            conn.sendall(piece)
            time.sleep(0.2)
        first = b""
        while b"\r\n\r\nok" not in first:
            piece = conn.recv(65536)
            assert piece, first
            first += piece
        assert first.startswith(b"HTTP/1.1 200"), first
        conn.sendall(b"GET /openai/models HTTP/1.1\r\nHost: 12")
        answer, lived = _until_closed(conn, 5)
    assert answer == b"" and lived is not None and 0.8 < lived < 2.0


def test_slow_client_defaults() -> None:
    from meter.apps.proxy.headers import DEFAULT_HEAD_TIMEOUT

    app = ProxyServer("http://127.0.0.1:9", meter=_meter()).app
    assert (DEFAULT_HEAD_TIMEOUT, app.body_timeout) == (10.0, 30.0)


def test_under_a_plain_uvicorn_the_app_itself_refuses_both_lengths_and_closes(upstream: RecordingServer) -> None:
    """``create_proxy_app`` under another server's h11 (which lets Transfer-Encoding win): still a 400 and a close."""
    import uvicorn

    from meter.apps.background import BackgroundServer
    from meter.apps.proxy import create_proxy_app

    app = create_proxy_app(upstream.url, meter=_meter())
    server = BackgroundServer(lambda: uvicorn.Config(app, http="h11", lifespan="on", log_config=None), "127.0.0.1",
                              0, "plain-uvicorn")
    server.start()
    try:
        before = len(upstream.seen)
        answer, lived = _exchange(server.port, FRAMING_ATTACKS["CL.TE"])
        _refused_and_closed(answer, lived)
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "ProxyBadRequest"
        time.sleep(0.2)
        assert len(upstream.seen) == before
    finally:
        server.stop()


def test_a_refused_body_closes_the_connection(upstream: RecordingServer) -> None:
    """Past ``max_request_bytes`` the rest of the body is never read: the 413 closes the connection."""
    with ProxyServer(upstream.url, meter=_meter(), max_request_bytes=1000) as proxy, \
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as conn:
        conn.sendall(b"POST /openai/models HTTP/1.1\r\nHost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n"
                     + b"800\r\n" + b"x" * 0x800 + b"\r\n")
        answer, lived = _until_closed(conn, 5)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert lived is not None and lived < 1.0  # not left to the server's keep-alive timeout (5 s)
