"""``meter proxy`` against going straight to the emulator: throughput, p50 and p99, streaming and not.

Processes on loopback: the emulator, the proxy (metering with pricing and
Prometheus, as ``meter proxy`` runs), the same proxy with the meter bypassed
(``unmetered``: what the proxy itself costs, apart from metering) and the load,
which runs ``concurrency`` threads each sending its share of a fixed number of
requests and reading every answer to its end. Direct, proxied and unmetered phases
alternate for several rounds; each phase reports requests per second and latency
percentiles, and the result is the median per target. Each phase also reads the CPU
time its server process used (Linux ``/proc``), per request: on a shared machine the
latencies measure the scheduler as much as the proxy, the CPU time much less so.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import textwrap
from typing import Any

from benchmarks.subproc import ROOT, run_python

_EMULATOR = """
    import sys
    from meter.apps.emulator import Emulator
    with Emulator() as emu:
        print(emu.url, flush=True)
        sys.stdin.read()
"""

_PROXY = """
    import sys
    from prometheus_client import CollectorRegistry
    import meter
    from meter.apps.proxy import ProxyServer
    server = ProxyServer(sys.argv[1], meter=meter.Meter(registry=CollectorRegistry(), otel=False))
    if sys.argv[2:] == ["unmetered"]:  # the inner transport alone: the proxy without the meter
        server.app.transport = server.app.transport.inner
    with server as proxy:
        print(proxy.url, flush=True)
        sys.stdin.read()
"""

_LOAD = """
    import json, socket, threading, time, httpx2
    url, total, concurrency, stream = {url!r}, {total}, {concurrency}, {stream}
    path = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    body = {{"messages": [{{"role": "user", "content": "How does Azure OpenAI billing work?"}}], "stream": stream}}
    latencies, errors, lock = [], [], threading.Lock()

    def worker(count):
        # TCP_NODELAY: the client writes the request head and body separately; with Nagle on, the
        # body waits for the server's delayed ACK (40 ms on Linux) and every request measures that.
        transport = httpx2.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        with httpx2.Client(base_url=url, headers={{"api-key": "emulator-key"}}, timeout=30,
                           transport=transport) as client:
            client.post(path, json=body).read()  # connect first: the phase measures requests, not handshakes
            for _ in range(count):
                t0 = time.perf_counter()
                response = client.post(path, json=body)
                response.read()
                elapsed = time.perf_counter() - t0
                with lock:
                    (latencies if response.status_code == 200 else errors).append(elapsed)

    threads = [threading.Thread(target=worker, args=(total // concurrency,)) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(json.dumps({{"requests": len(latencies), "errors": len(errors), "rps": len(latencies) / wall,
                       "p50_ms": pick(0.5) * 1e3, "p99_ms": pick(0.99) * 1e3}}))
"""


def _serve(code: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"server did not start: {url!r}")
    return proc, url


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of process ``pid`` (all its threads) so far; ``None`` off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def _children_cpu_seconds() -> float:
    """CPU seconds of this process's finished children (the load processes, once each has been waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def run(rounds: int, requests: int, stream_requests: int, concurrency: int) -> dict[str, Any]:
    emulator, upstream = _serve(_EMULATOR)
    try:
        proxy, proxied = _serve(_PROXY, upstream)
        bare, unmetered = _serve(_PROXY, upstream, "unmetered")
        try:
            out: dict[str, Any] = {"concurrency": concurrency}
            # Saturated (``concurrency`` clients: throughput, and latency with queueing) and one client
            # at a time (latency alone: what the proxy adds to one call on an idle machine).
            plan = (("json", requests, concurrency), ("stream", stream_requests, concurrency),
                    ("json, 1 client", max(50, requests // 8), 1),
                    ("stream, 1 client", max(20, stream_requests // 4), 1))
            for mode, total, clients in plan:
                phases: dict[str, list[dict[str, Any]]] = {"direct": [], "proxy": [], "unmetered": []}
                for _ in range(rounds):
                    for target, url, server in (("direct", upstream, emulator), ("proxy", proxied, proxy),
                                                ("unmetered", unmetered, bare)):
                        code = _LOAD.format(url=url, total=total, concurrency=clients, stream=mode.startswith("stream"))
                        before, load_before = _cpu_seconds(server.pid), _children_cpu_seconds()
                        phase = run_python(code, timeout=600)
                        after, load_after = _cpu_seconds(server.pid), _children_cpu_seconds()
                        count = phase["requests"] + clients  # and the one connecting request per client
                        # The server's CPU per request (the emulator's for ``direct``); -1 where it cannot be read.
                        phase["server_cpu_us"] = -1.0 if before is None or after is None else (
                            (after - before) / count * 1e6)
                        phase["load_cpu_us"] = (load_after - load_before) / count * 1e6  # the client's, start-up too
                        phases[target].append(phase)
                summary = {target: {key: statistics.median(p[key] for p in runs) for key in runs[0]}
                           for target, runs in phases.items()}
                summary["throughput_ratio"] = summary["proxy"]["rps"] / summary["direct"]["rps"]
                summary["p50_added_ms"] = summary["proxy"]["p50_ms"] - summary["direct"]["p50_ms"]
                summary["p99_added_ms"] = summary["proxy"]["p99_ms"] - summary["direct"]["p99_ms"]
                summary["unmetered_ratio"] = summary["unmetered"]["rps"] / summary["direct"]["rps"]
                summary["unmetered_p50_added_ms"] = summary["unmetered"]["p50_ms"] - summary["direct"]["p50_ms"]
                out[mode] = summary
            return out
        finally:
            _stop(bare)
            _stop(proxy)
    finally:
        _stop(emulator)
