"""Plain HTTP through the proxy: the same bytes and headers as direct, and the request forwarded as sent."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import httpx
import pytest

from meter.apps.emulator import Emulator
from meter.apps.proxy import ProxyServer
from meter.apps.proxy.headers import HOP_BY_HOP
from tests.proxy.conftest import API_KEY, API_VERSION, Metered
from tests.proxy.upstream import FIXED_GZIP, FIXED_JSON, ScriptedUpstream

CHAT = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=" + API_VERSION


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as upstream:
        yield upstream


@pytest.fixture
def scripted_proxy(scripted: ScriptedUpstream) -> Iterator[ProxyServer]:
    with ProxyServer(scripted.url, meter=Metered(scripted.url).meter) as running:
        yield running


def _raw(url: str) -> tuple[list[tuple[str, str]], bytes]:
    with httpx.Client() as client, client.stream("GET", url) as response:
        return [(k.decode().lower(), v.decode()) for k, v in response.headers.raw], b"".join(response.iter_raw())


def _end_to_end(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    named = {token.strip().lower() for name, value in headers if name == "connection" for token in value.split(",")}
    return [(k, v) for k, v in headers if k.encode() not in HOP_BY_HOP and k not in named]


def test_gzip_body_and_headers_pass_untouched(scripted: ScriptedUpstream, scripted_proxy: ProxyServer) -> None:
    """Raw gzip bytes, repeated set-cookie, the upstream's date/server: all as sent; hop-by-hop dropped."""
    direct_headers, direct_body = _raw(scripted.url + "/fixed")
    headers, body = _raw(scripted_proxy.url + "/fixed")
    assert body == direct_body == FIXED_GZIP
    assert gzip.decompress(body) == FIXED_JSON
    assert headers == _end_to_end(direct_headers)  # the proxy adds nothing, not even date or server
    assert ("x-hop", "must-not-pass") not in headers and ("set-cookie", "b=2; Path=/") in headers
    with httpx.Client() as client:  # and a decoding client reads it like direct
        assert client.get(scripted_proxy.url + "/fixed").json() == json.loads(FIXED_JSON)


@pytest.mark.parametrize("stream", [False, True])
def test_emulator_headers_are_the_upstreams(proxy: ProxyServer, emu: Emulator, stream: bool) -> None:
    """Same header names in the same order as direct (values such as request ids differ per call)."""
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": stream}
    with httpx.Client(headers={"api-key": API_KEY}) as client:
        direct = client.post(emu.url + CHAT, json=body)
        proxied = client.post(proxy.url + CHAT, json=body)
    assert proxied.status_code == direct.status_code == 200
    names = [k.decode().lower() for k, _ in proxied.headers.raw]
    want = [k for k, _ in _end_to_end([(k.decode().lower(), v.decode()) for k, v in direct.headers.raw])]
    assert [n for n in names if n.encode() not in HOP_BY_HOP] == want
    assert proxied.headers["x-ms-region"] == direct.headers["x-ms-region"]


def test_the_request_is_forwarded_as_sent(scripted: ScriptedUpstream, scripted_proxy: ProxyServer) -> None:
    """Path (escapes kept), query, body and end-to-end headers as sent; hop-by-hop ones and `host` replaced."""
    headers = [("user-agent", "curl/8"), ("api-key", "k-123"), ("authorization", "Bearer t-456"), ("x-dup", "1"),
               ("x-dup", "2"), ("accept-encoding", "gzip"), ("te", "trailers"), ("proxy-authorization", "Basic eA=="),
               ("connection", "keep-alive, x-conn-only"), ("x-conn-only", "drop me"), ("keep-alive", "timeout=5")]
    with httpx.Client() as client:
        echoed = client.post(scripted_proxy.url + "/echo/a%2Fb/c?x=1&sig=%2B%3D&x=2", headers=headers,
                             content=b'{"model": "m"}').json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/echo/a%2Fb/c" and echoed["query"] == "x=1&sig=%2B%3D&x=2"
    assert echoed["body"] == '{"model": "m"}'
    sent = [("host", f"127.0.0.1:{scripted.port}"), ("accept", "*/*"), ("user-agent", "curl/8"),
            ("api-key", "k-123"), ("authorization", "Bearer t-456"), ("x-dup", "1"), ("x-dup", "2"),
            ("accept-encoding", "gzip"), ("content-length", "14")]
    assert [tuple(pair) for pair in echoed["headers"]] == sent


def test_bodiless_and_empty_bodies(scripted_proxy: ProxyServer) -> None:
    """A GET goes without a body (no content-length); an empty POST (a Responses cancel) says ``0``."""
    with httpx.Client() as client:
        got = dict((k, v) for k, v in client.get(scripted_proxy.url + "/echo").json()["headers"])
        posted = dict((k, v) for k, v in client.post(scripted_proxy.url + "/echo").json()["headers"])
    assert "content-length" not in got and "transfer-encoding" not in got
    assert posted["content-length"] == "0"
