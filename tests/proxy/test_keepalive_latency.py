"""Keep-alive requests are not held back by Nagle's algorithm (the 40 ms delayed-ACK stall).

uvicorn writes a response head and its body separately. If the accepted socket keeps
Nagle on, the body waits for the client's delayed ACK of the head: 40 ms on Linux, on
every request after the first on a connection. The servers meter starts must turn it
off: the embedded emulator and proxy (``background.bind``) and ``meter proxy``.
The threshold is generous (a stalled request takes 40 ms or more, a healthy one ~1 ms).
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time

import httpx2

from meter.apps.background import bind
from meter.apps.emulator import Emulator
from meter.apps.proxy import ProxyServer
from tests.proxy.test_cli import _free_port

STALL_MS = 20.0
PATH = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"


def _median_ms(url: str) -> float:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    with httpx2.Client(base_url=url, headers={"api-key": "emulator-key"}, timeout=10) as client:
        client.post(PATH, json=body).read()
        times = []
        for _ in range(12):
            t0 = time.perf_counter()
            response = client.post(PATH, json=body)
            response.read()
            times.append((time.perf_counter() - t0) * 1e3)
            assert response.status_code == 200
    return statistics.median(times)


def test_the_bound_socket_says_tcp_so_accepted_sockets_get_nodelay() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_embedded_emulator_and_proxy_answer_keepalive_requests_without_a_stall() -> None:
    with Emulator() as emu, ProxyServer(emu.url) as proxy:
        assert _median_ms(emu.url) < STALL_MS
        assert _median_ms(proxy.url) < STALL_MS


def test_meter_proxy_command_answers_keepalive_requests_without_a_stall() -> None:
    port = _free_port()
    with Emulator() as emu:
        process = subprocess.Popen([sys.executable, "-m", "meter", "proxy", "--upstream", emu.url, "--port", str(port),
                                    "--metrics-port", str(_free_port())],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 15
            while True:
                try:
                    httpx2.get(url + "/ready?")
                    break
                except httpx2.ConnectError:
                    assert time.monotonic() < deadline and process.poll() is None, "the proxy did not start"
                    time.sleep(0.05)
            assert _median_ms(url) < STALL_MS
        finally:
            process.terminate()
            process.wait(15)
