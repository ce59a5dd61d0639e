"""Self-tests for tests/support: the replay server (real sockets, real httpx/httpx2) and the case loader."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest

from tests.support.cases import OWN_CASES, SHARED_CONFORMANCE, Case, load_cases
from tests.support.replay import (
    CannedResponse,
    ReplayServer,
    case_response,
    normalize_path,
    serve_case,
    split_sse_events,
)

TRANSPORT_ERRORS = (httpx.TransportError, httpx2.TransportError)
Client = httpx.Client | httpx2.Client


@pytest.fixture
def srv() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture(params=["httpx2", "httpx"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    c: Client = httpx2.Client(timeout=5.0) if request.param == "httpx2" else httpx.Client(timeout=5.0)
    with c:
        yield c


@pytest.fixture(scope="module")
def own_cases() -> list[Case]:
    return load_cases(OWN_CASES)


def _case(cases: list[Case], prefix: str) -> Case:
    return next(c for c in cases if c.name.startswith(prefix))


SSE_CHUNKS = [b'data: {"n":1}\n\n', b'data: {"n":2}\n\n', b"data: [DONE]\n\n"]


# --------------------------------------------------------------------------- server


def test_keep_alive_two_requests_one_connection(srv: ReplayServer, client: Client) -> None:
    srv.add("POST", "/openai/v1/chat/completions", CannedResponse.json(200, {"ok": True}))
    url = srv.url + "/openai/v1/chat/completions"
    r1 = client.post(url, json={"a": 1})
    r2 = client.post(url + "?api-version=preview", content=b"raw-bytes")
    assert r1.status_code == r2.status_code == 200
    assert r1.json() == r2.json() == {"ok": True}
    assert srv.connections_accepted == 1
    assert [r.body for r in srv.requests] == [b'{"a":1}', b"raw-bytes"]
    assert srv.requests[1].path == "/openai/v1/chat/completions?api-version=preview"
    assert srv.requests[0].json() == {"a": 1}
    assert srv.requests[0].header("CONTENT-TYPE") == "application/json"


def test_chunked_sse_arrives_chunk_by_chunk(srv: ReplayServer, client: Client) -> None:
    srv.add(
        "POST",
        "/sse",
        CannedResponse(200, [("Content-Type", "text/event-stream")], list(SSE_CHUNKS), chunk_delay_s=0.08),
    )
    pieces: list[tuple[float, bytes]] = []
    with client.stream("POST", srv.url + "/sse", json={}) as resp:
        assert resp.headers["transfer-encoding"] == "chunked"
        start = time.monotonic()
        for piece in resp.iter_raw():
            pieces.append((time.monotonic() - start, piece))
    assert [p for _, p in pieces] == SSE_CHUNKS
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(pieces)]
    assert all(g >= 0.05 for g in gaps), gaps


def test_content_length_body_and_fifo_times(srv: ReplayServer, client: Client) -> None:
    srv.add("GET", "/x", CannedResponse(200, [], [b"first"], chunked=False), times=2)
    srv.add("GET", "/x", CannedResponse(201, [], [b"second"], chunked=False))
    srv.add("GET", "/x", CannedResponse(202, [], [b"last"], chunked=False))
    got = [client.get(srv.url + "//x?q=1") for _ in range(5)]
    assert [(r.status_code, r.content) for r in got] == [
        (200, b"first"),
        (200, b"first"),
        (201, b"second"),
        (202, b"last"),
        (202, b"last"),
    ]
    assert got[0].headers["content-length"] == "5"
    assert "transfer-encoding" not in got[0].headers


def test_chunked_request_body_is_dechunked(srv: ReplayServer, client: Client) -> None:
    srv.add("POST", "/upload", CannedResponse(204, [], []))

    def gen() -> Iterator[bytes]:
        yield b"hello "
        yield b"world"

    r = client.post(srv.url + "/upload", content=gen())
    assert r.status_code == 204
    assert srv.requests[0].header("transfer-encoding") == "chunked"
    assert srv.requests[0].body == b"hello world"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_encodings_decoded_by_client(srv: ReplayServer, client: Client, encoding: str) -> None:
    body = json.dumps({"text": "x" * 500}).encode()
    srv.add(
        "GET", "/enc", CannedResponse(200, [("Content-Type", "application/json")], [body], encoding=encoding)
    )
    with client.stream("GET", srv.url + "/enc") as resp:
        raw = b"".join(resp.iter_raw())
    assert resp.headers["content-encoding"] == encoding
    assert raw != body and len(raw) < len(body)
    if encoding == "zstd":
        import zstandard

        assert zstandard.ZstdDecompressor().decompress(raw) == body
    decoders = httpx2._decoders if isinstance(client, httpx2.Client) else httpx._decoders
    if encoding not in decoders.SUPPORTED_DECODERS:
        # httpx2 on Python < 3.14 decodes zstd only with backports.zstd installed; it then
        # passes the encoded bytes through unchanged.
        assert client.get(srv.url + "/enc").content == raw
        return
    assert client.get(srv.url + "/enc").content == body


def test_gzip_case_decoded_by_client(srv: ReplayServer, client: Client, own_cases: list[Case]) -> None:
    case = _case(own_cases, "19-")
    assert case.response_header("content-encoding") == "gzip"
    url = serve_case(srv, case)
    resp = client.request(case.method, url, json=case.request_body)
    assert resp.status_code == 200
    assert resp.headers["content-encoding"] == "gzip"
    assert resp.content == case.body
    assert resp.json()["id"] == case.expected["response_id"]


def test_reset_after_chunks_raises_transport_error(srv: ReplayServer, client: Client) -> None:
    srv.add(
        "POST",
        "/drop",
        CannedResponse(200, [("Content-Type", "text/event-stream")], list(SSE_CHUNKS), reset_after_chunks=1),
    )
    received: list[bytes] = []
    with pytest.raises(TRANSPORT_ERRORS), client.stream("POST", srv.url + "/drop") as resp:
        for piece in resp.iter_raw():
            received.append(piece)
    assert b"".join(received) in (b"", SSE_CHUNKS[0])


def test_hang_after_chunks_times_out_and_shuts_down_fast() -> None:
    t0 = time.monotonic()
    with ReplayServer() as server, httpx2.Client(timeout=httpx2.Timeout(5.0, read=0.3)) as c:
        server.add("GET", "/hang", CannedResponse(200, [], list(SSE_CHUNKS), hang_after_chunks=1))
        received: list[bytes] = []
        with pytest.raises(httpx2.ReadTimeout), c.stream("GET", server.url + "/hang") as resp:
            for piece in resp.iter_raw():
                received.append(piece)
        assert received == [SSE_CHUNKS[0]]
    assert time.monotonic() - t0 < 2.0


def test_unmatched_path_is_404(srv: ReplayServer, client: Client) -> None:
    srv.add("POST", "/known", CannedResponse.json(200, {}))
    r = client.get(srv.url + "/known")  # wrong method
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NoReplay"
    r = client.post(srv.url + "/unknown/path?x=1", json={})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NoReplay"
    assert len(srv.requests) == 2
    srv.clear()
    assert srv.requests == []
    assert client.post(srv.url + "/known").status_code == 404


async def test_async_httpx2_stream(srv: ReplayServer) -> None:
    srv.add("POST", "/a", CannedResponse(200, [("Content-Type", "text/event-stream")], list(SSE_CHUNKS)))
    async with httpx2.AsyncClient(timeout=5.0) as c, c.stream("POST", srv.url + "/a") as resp:
        pieces = [p async for p in resp.aiter_raw()]
    assert pieces == SSE_CHUNKS


def test_split_sse_events_keeps_bytes() -> None:
    for body in (
        b"data: a\n\ndata: b\n\n",
        b"data: a\r\n\r\ndata: b\r\n\r\n",
        b": c\n\nevent: x\ndata: 1\ndata: 2\n\n\n\ndata: tail",
        b"",
    ):
        assert b"".join(split_sse_events(body)) == body
    assert split_sse_events(b"data: a\n\ndata: b\n\n") == [b"data: a\n\n", b"data: b\n\n"]
    assert normalize_path("//openai//v1/x?y=//z") == "/openai/v1/x"


# --------------------------------------------------------------------------- cases


def test_load_own_cases(own_cases: list[Case]) -> None:
    assert len(own_cases) >= 16
    for case in own_cases:
        assert case.expected.get("api") in ("chat", "responses", "embeddings"), case.name
        assert case.expected["stream"] == case.is_sse, case.name
        assert case.host in ("myres.openai.azure.com", "api.openai.com"), case.name
        assert case.path.startswith("/") and case.url.endswith(case.path)
        resp = case_response(case)
        assert resp.body == case.body
        if case.is_sse:
            assert resp.chunked and len(resp.chunks) > 1
        assert not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in resp.headers)


def test_every_own_case_replays_byte_exact(own_cases: list[Case]) -> None:
    with ReplayServer() as server, httpx2.Client(timeout=5.0) as c:
        for case in own_cases:
            url = serve_case(server, case, times=1)
            body: Any = case.request_body
            resp = c.request(case.method, url, json=body) if body is not None else c.request(case.method, url)
            assert resp.status_code == case.status, case.name
            assert resp.content == case.body, case.name
        assert server.connections_accepted == 1


def test_serve_case_split_bytes(srv: ReplayServer, own_cases: list[Case]) -> None:
    case = _case(own_cases, "05-")
    url = serve_case(srv, case, split=7)
    assert len(case_response(case, split=7).chunks) == -(-len(case.body) // 7)
    with httpx2.Client() as c:
        assert c.post(url).content == case.body


def test_load_shared_conformance() -> None:
    if not SHARED_CONFORMANCE.is_dir():
        pytest.skip(f"shared conformance corpus not present at {SHARED_CONFORMANCE}")
    cases = load_cases(SHARED_CONFORMANCE)
    assert len(cases) == 30
    assert all(c.api in ("chat", "responses", "embeddings") for c in cases)
    double_slash = _case(cases, "06-")
    assert double_slash.path.startswith("//openai/")
    assert double_slash.route.startswith("/openai/deployments/")
