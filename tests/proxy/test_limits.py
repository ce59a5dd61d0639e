"""Bounded concurrency, timeouts and upstream failures: the proxy's own answers, in Azure's error shape."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import httpx2
import pytest

from meter.apps.emulator import Emulator, EmulatorConfig
from meter.apps.proxy import ProxyServer
from tests.proxy.conftest import API_KEY, API_VERSION, Metered
from tests.proxy.upstream import ScriptedUpstream
from tests.support.waiting import wait_until

CHAT = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=" + API_VERSION
BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
SLOW = 0.4


@pytest.fixture(scope="module")
def slow_emu() -> Any:
    with Emulator(EmulatorConfig(latency_s=SLOW)) as running:
        yield running


def _parallel(url: str, count: int) -> tuple[float, list[int]]:
    statuses: list[int] = []

    def call() -> None:
        statuses.append(httpx2.post(url, headers={"api-key": API_KEY}, json=BODY, timeout=10).status_code)

    threads = [threading.Thread(target=call) for _ in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, statuses


def test_requests_beyond_max_concurrency_wait_for_a_slot(slow_emu: Emulator) -> None:
    """Six calls of 0.4 s each through two slots take three rounds; with six slots, one."""
    with ProxyServer(slow_emu.url, meter=Metered(slow_emu.url).meter, max_concurrency=2) as proxy:
        elapsed, statuses = _parallel(proxy.url + CHAT, 6)
    assert statuses == [200] * 6
    assert elapsed >= 3 * SLOW
    with ProxyServer(slow_emu.url, meter=Metered(slow_emu.url).meter, max_concurrency=6) as proxy:
        elapsed, statuses = _parallel(proxy.url + CHAT, 6)
    assert statuses == [200] * 6
    assert elapsed < 3 * SLOW


def test_a_request_that_waits_too_long_for_a_slot_gets_503(slow_emu: Emulator) -> None:
    with ProxyServer(slow_emu.url, meter=Metered(slow_emu.url).meter, max_concurrency=1,
                     queue_timeout=0.05) as proxy:
        statuses: list[int] = []

        def call() -> None:
            statuses.append(httpx2.post(proxy.url + CHAT, headers={"api-key": API_KEY}, json=BODY,
                                        timeout=10).status_code)

        first = threading.Thread(target=call)
        first.start()
        # The second comes while the first holds the one slot (its upstream answers after SLOW): on a busy
        # machine two threads started together could otherwise arrive one after the other's end.
        wait_until(lambda: proxy.app.in_flight == 1, timeout=5.0)
        call()
        first.join()
        assert sorted(statuses) == [200, 503]
        response = httpx2.get(proxy.url + "/anything")  # the slot is free again
        assert response.status_code == 404


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_upstream_down_is_a_502_in_azures_error_shape() -> None:
    upstream = f"http://127.0.0.1:{_free_port()}"
    metered = Metered(upstream)
    with ProxyServer(upstream, meter=metered.meter) as proxy:
        response = httpx2.post(proxy.url + CHAT, headers={"api-key": "sk-never-echoed"}, json=BODY)
    assert response.status_code == 502
    assert response.json() == {"error": {"code": "ProxyUpstreamError",
                                         "message": "the upstream could not be reached (ConnectError)"}}
    assert response.headers["content-type"] == "application/json"
    (record,) = metered.wait_records(1)
    assert (record.outcome, record.error_type) == ("transport_error", "ConnectError")


def test_upstream_too_slow_is_a_504(slow_emu: Emulator) -> None:
    metered = Metered(slow_emu.url)
    with ProxyServer(slow_emu.url, meter=metered.meter, read_timeout=0.05) as proxy:
        response = httpx2.post(proxy.url + CHAT, headers={"api-key": API_KEY}, json=BODY)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "ProxyUpstreamTimeout"
    (record,) = metered.wait_records(1)
    assert record.outcome == "transport_error"


def test_a_body_cut_short_upstream_is_cut_short_for_the_client() -> None:
    """Once the head is relayed there is no error answer left: the client must see the truncation."""
    with ScriptedUpstream() as upstream, ProxyServer(upstream.url) as proxy, httpx.Client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(proxy.url + "/cut")


def test_an_oversized_request_body_is_refused(slow_emu: Emulator) -> None:
    billed = len(slow_emu.usage_log)
    with ProxyServer(slow_emu.url, meter=Metered(slow_emu.url).meter, max_request_bytes=1000) as proxy:
        response = httpx2.post(proxy.url + CHAT, headers={"api-key": API_KEY}, content=b"x" * 5000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "ProxyRequestTooLarge"
    assert len(slow_emu.usage_log) == billed  # never sent upstream


def test_bad_upstreams_are_refused_up_front() -> None:
    for bad in ("ftp://host", "not a url", "https://host/path?x=1"):
        with pytest.raises(ValueError):
            ProxyServer(bad)
