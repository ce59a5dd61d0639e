"""Property 4: concurrency. Many threads and a thousand asyncio streams through one Meter.

16 threads call the emulator over real sockets, each under its own
``meter.attribute(team=...)``; 1,000 asyncio streams interleave chunk by chunk
through one async client. Afterwards the Prometheus counters equal the sums
over the records exactly (per team too), every record carries its own caller's
team (no crosstalk), nothing deadlocked (everything runs under timeouts), and
the process's memory after a second identical round is back where the first
left it.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from prometheus_client import CollectorRegistry

import meter
from meter import names
from meter.apps.emulator import Emulator
from tests.reliability.conftest import soak
from tests.support.emulator_fixtures import API_KEY, API_VERSION

PACKAGE = Path(meter.__file__).parent
"""meter's own files: a filter on a folder name would match a checkout, or a venv, named ``meter``."""

NS = names.DEFAULT_NAMESPACE


def _sum(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return sum(s.value for m in registry.collect() for s in m.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _check_totals(registry: CollectorRegistry, records: list[meter.CallRecord]) -> None:
    by_team: dict[str, list[meter.CallRecord]] = defaultdict(list)
    for record in records:
        by_team[record.attributes["team"]].append(record)
    per_team: dict[tuple[str, str], float] = defaultdict(float)  # (sample name, team) -> sum, in one pass
    for metric in registry.collect():
        for sample in metric.samples:
            per_team[sample.name, sample.labels.get("team", "")] += sample.value
    assert sum(v for (name, _), v in per_team.items() if name == names.requests_total(NS)) == len(records)
    for team, mine in by_team.items():
        exact = [r for r in mine if r.usage is not None and r.usage_source != "estimated"]
        assert per_team[names.requests_total(NS), team] == len(mine)
        assert per_team[names.input_tokens_total(NS), team] == sum(r.usage.input_tokens for r in exact)
        assert per_team[names.output_tokens_total(NS), team] == sum(r.usage.output_tokens for r in exact)
        cost = sum(float(r.cost.total) for r in exact if r.cost is not None and r.cost.total is not None)
        assert per_team[names.cost_usd_total(NS), team] == pytest.approx(cost, rel=1e-12)


def test_sixteen_threads_through_one_meter(emu: Emulator, figures: dict[str, object]) -> None:
    registry = CollectorRegistry()
    records: list[meter.CallRecord] = []
    lock = threading.Lock()

    def keep(record: meter.CallRecord) -> None:
        with lock:
            records.append(record)

    m = meter.Meter(on_record=keep, otel=False, registry=registry, label_keys=("team",))
    client = meter.wrap(httpx2.Client(limits=httpx2.Limits(max_connections=32)), meter=m)
    per_thread = soak(25, 400)
    errors: list[BaseException] = []
    url = f"{emu.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version={API_VERSION}"

    def worker(team: str) -> None:
        try:
            with meter.attribute(team=team):
                for i in range(per_thread):
                    body = {"messages": [{"role": "user", "content": f"{team} call {i}"}], "stream": i % 2 == 0}
                    with client.stream("POST", url, headers={"api-key": API_KEY}, json=body) as response:
                        for _ in response.iter_raw():
                            pass
                    assert response.status_code == 200
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"t{i:02d}",), daemon=True) for i in range(16)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    seconds = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert errors == []
    assert m.flush(60)
    assert len(records) == 16 * per_thread
    assert Counter(r.attributes["team"] for r in records) == {f"t{i:02d}": per_thread for i in range(16)}
    assert all(r.usage is not None and r.usage_source in ("response", "stream") for r in records)
    _check_totals(registry, records)
    assert sum(e["usage"]["total_tokens"] for e in emu.usage_log) == sum(
        r.usage.total_tokens for r in records if r.usage)  # the emulator's bill, exactly
    client.close()
    figures["concurrency: 16 threads"] = f"{len(records)} calls in {seconds:.1f} s, counters = records exactly"


# -- a thousand asyncio streams ------------------------------------------------------------------------------


def _events(team: str, n: int) -> list[bytes]:
    out = [b'data: {"id":"%s","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"x"},'
           b'"finish_reason":null}],"usage":null}\n\n' % team.encode() for _ in range(n)]
    out.append(b'data: {"id":"%s","model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":%d,'
               b'"completion_tokens":%d,"total_tokens":%d}}\n\n' % (team.encode(), len(team), n, len(team) + n))
    out.append(b"data: [DONE]\n\n")
    return out


class InterleavingTransport(httpx2.AsyncBaseTransport):
    """Answers each request with a stream that yields to the event loop between chunks."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        team = request.headers["x-team"]

        class Stream(httpx2.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                for chunk in _events(team, 20):
                    await asyncio.sleep(0)
                    yield chunk

        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Stream())


async def _round(client: httpx2.AsyncClient, m: meter.Meter, streams: int) -> None:
    async def one(i: int) -> None:
        team = f"a{i % 50:02d}-{i}"
        with meter.attribute(team=team):
            async with client.stream("POST", "https://r.openai.azure.com/openai/deployments/d/chat/completions"
                                     "?api-version=2024-10-21", headers={"x-team": team},
                                     content=b'{"stream":true}') as response:
                async for _ in response.aiter_raw():
                    pass

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(streams))), timeout=120)
    assert m.flush(60)  # every stream's record handed out (the metering worker)


async def test_a_thousand_concurrent_asyncio_streams(figures: dict[str, object]) -> None:
    registry = CollectorRegistry()
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, registry=registry, label_keys=("team",),
                    max_label_values=100_000)
    client = httpx2.AsyncClient(transport=meter.AsyncMeteredTransport(InterleavingTransport(), meter=m))
    streams = 1000
    started = time.monotonic()
    await _round(client, m, streams)
    seconds = time.monotonic() - started
    assert len(records) == streams
    for record in records:  # each stream's own team, and its own usage: no crosstalk
        team = record.attributes["team"]
        assert record.response_id == team
        assert record.usage is not None and record.usage.input_tokens == len(team)
        assert record.usage.output_tokens == 20 and record.outcome == "ok"
    _check_totals(registry, records)
    records.clear()
    await _round(client, m, streams)  # caches and pools settle over the first rounds
    gc.collect()
    rounds = soak(3, 20)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(rounds):
        records.clear()
        await _round(client, m, streams)
    records.clear()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    await client.aclose()
    # What is still allocated from meter's code after the rounds, compared with before them.
    mine = [tracemalloc.Filter(True, str(PACKAGE / "*"))]  # the package's own files, whatever the checkout is named
    grown = sum(d.size_diff for d in after.filter_traces(mine).compare_to(before.filter_traces(mine), "filename"))
    assert grown < 64 * 1024, f"meter's allocations grew {grown} bytes over {rounds} more rounds"
    figures["concurrency: 1000 asyncio streams"] = (f"{seconds:.2f} s a round; meter's live allocations after "
                                                    f"{rounds} more rounds {grown / 1024:+.1f} KiB")


def test_no_deadlock_when_subscribers_and_sinks_share_a_registry_across_threads() -> None:
    """Meters sharing a registry, each thread with its own meter: no lock-order deadlock."""
    registry = CollectorRegistry()
    meters = [meter.Meter(otel=False, registry=registry, price_book=False) for _ in range(4)]
    body = {"id": "c", "model": "m", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    done: list[Any] = []

    def worker(m: meter.Meter) -> None:
        transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=body))
        with httpx2.Client(transport=meter.MeteredTransport(transport, meter=m)) as c:
            for _ in range(300):
                c.post("https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
                       json={})
        done.append(m)

    threads = [threading.Thread(target=worker, args=(m,), daemon=True) for m in meters * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) == 8
    assert all(m.flush(60) for m in meters)
    assert _sum(registry, names.requests_total(NS)) == 8 * 300
