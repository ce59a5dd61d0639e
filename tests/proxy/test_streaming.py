"""Streams go through chunk by chunk, a slow client slows the upstream, a client leaving aborts the call."""

from __future__ import annotations

import contextlib
import json
import time

import httpx2

from meter.apps.emulator import Emulator, EmulatorConfig
from meter.apps.proxy import ProxyServer
from tests.proxy.conftest import API_KEY, API_VERSION, Metered, wait_until
from tests.proxy.upstream import BIG_TOTAL, ScriptedUpstream

CHAT = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=" + API_VERSION


def _chat(max_tokens: int) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": "Pace yourself"}], "max_tokens": max_tokens, "stream": True}


def test_first_delta_arrives_long_before_the_end() -> None:
    """At 50 tokens/s a 40-token answer takes ~0.8 s; through the proxy the first delta still comes at once."""
    with Emulator(EmulatorConfig(tokens_per_s=50.0)) as emu:
        metered = Metered(emu.url)
        with ProxyServer(emu.url, meter=metered.meter) as proxy, httpx2.Client(timeout=10) as client:
            started = time.perf_counter()
            first = None
            with client.stream("POST", proxy.url + CHAT, headers={"api-key": API_KEY}, json=_chat(40)) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if first is None and '"content":"' in line and '"content":""' not in line:
                        first = time.perf_counter() - started
            total = time.perf_counter() - started
        assert first is not None
        assert total >= 0.7
        assert first < total / 3, (first, total)
        (record,) = metered.wait_records(1)
        assert record.outcome == "ok" and record.stream


def test_slow_client_does_not_make_the_proxy_buffer_the_stream() -> None:
    """The proxy reads upstream only as fast as the client reads it.

    The upstream offers a 512 MiB stream as fast as it can and counts what it
    handed over. The client reads one chunk, then stops. If the proxy buffered,
    the upstream would push all 512 MiB (the proxy reading it into memory);
    with backpressure the count stops growing once the socket buffers on the
    way are full (kernel buffers: tens of MiB at most on loopback). The test
    waits for the count to stop moving, which makes it independent of speed,
    and then asserts it stopped far short of the end. Hanging up then makes
    the proxy drop the upstream connection, and the meter record the call as
    aborted.
    """
    with ScriptedUpstream() as upstream:
        metered = Metered(upstream.url)
        with ProxyServer(upstream.url, meter=metered.meter) as proxy, httpx2.Client(timeout=10) as client:
            url = proxy.url + "/openai/deployments/big/chat/completions?api-version=" + API_VERSION
            with client.stream("POST", url, json=_chat(10)) as response:
                chunks = response.iter_raw()  # kept: a dropped generator would close the connection
                assert next(chunks).startswith(b"data: ")
                last, stable_since = -1, time.monotonic()
                deadline = time.monotonic() + 20
                while time.monotonic() - stable_since < 0.5 and time.monotonic() < deadline:
                    time.sleep(0.05)
                    if upstream.sent != last:
                        last, stable_since = upstream.sent, time.monotonic()
                held = upstream.sent
                assert not upstream.hung_up.is_set() and not metered.records  # a slow client is not a gone one
            assert held < BIG_TOTAL // 4, f"the upstream pushed {held >> 20} MiB past a stalled client"
            assert upstream.hung_up.wait(5), "the proxy kept reading upstream after the client left"
        (record,) = metered.wait_records(1)
        assert record.outcome == "aborted"


def test_client_leaving_mid_stream_aborts_the_upstream_call() -> None:
    """One record, ``aborted``, as soon as the caller hangs up (the upstream is not drained)."""
    with Emulator(EmulatorConfig(tokens_per_s=20.0)) as emu:
        metered = Metered(emu.url)
        with ProxyServer(emu.url, meter=metered.meter) as proxy, httpx2.Client(timeout=10) as client:
            started = time.perf_counter()
            with client.stream("POST", proxy.url + CHAT, headers={"api-key": API_KEY}, json=_chat(60)) as response:
                for line in response.iter_lines():
                    if line.startswith("data: ") and json.loads(line[6:]).get("choices"):
                        break
            (record,) = metered.wait_records(1)
            assert time.perf_counter() - started < 2.0  # 60 tokens at 20/s would take 3 s
        assert record.outcome == "aborted" and record.stream
        assert record.deployment == "gpt-4o-mini"


def test_client_leaving_before_the_answer_cancels_the_upstream_request() -> None:
    """A caller giving up while the model is still thinking frees the slot and the upstream at once."""
    with Emulator(EmulatorConfig(latency_s=3.0)) as emu:
        metered = Metered(emu.url)
        with ProxyServer(emu.url, meter=metered.meter, max_concurrency=1) as proxy:
            body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
            with contextlib.suppress(httpx2.ReadTimeout):
                httpx2.post(proxy.url + CHAT, headers={"api-key": API_KEY}, json=body, timeout=0.3)
            (record,) = metered.wait_records(1, timeout=2.0)
            assert record.outcome == "aborted"
            wait_until(lambda: proxy.app.in_flight == 0, timeout=2.0)
