"""The metering worker (``Meter(metering="worker")``, the default): the caller's thread does only what
cannot wait; the record, the span, the sinks and the subscribers come on the worker, in order, nothing
lost when it falls behind, drained at a scrape, at ``flush``, ``close`` and exit, and not replayed by a
forked child. Real SDK calls to the emulator on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

import meter
from meter.apps.emulator import Emulator
from tests.support.emulator_fixtures import API_KEY, API_VERSION, emu, fresh_emulator_log

__all__ = ["emu", "fresh_emulator_log"]

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "hello"}]


def _client(emu: Emulator, m: meter.Meter) -> openai.AzureOpenAI:
    return meter.wrap(openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=API_VERSION,
                                         max_retries=0), meter=m)


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    yield CollectorRegistry()


def _json_calls_then_a_stream(client: openai.AzureOpenAI, json_calls: int) -> None:
    for _ in range(json_calls):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    with client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,  # type: ignore[arg-type]
                                        stream=True) as stream:
        for _ in stream:
            pass


def test_worker_is_the_default_and_records_come_on_it(emu: Emulator, registry: CollectorRegistry) -> None:
    threads: list[str] = []
    m = meter.Meter(on_record=lambda r: threads.append(threading.current_thread().name), registry=registry,
                    otel=False)
    assert m.metering == "worker"
    _json_calls_then_a_stream(_client(emu, m), 1)
    assert m.flush(5.0)
    assert threads == ["meter-metering", "meter-metering"]
    assert not m.faults


def test_inline_mode_gives_the_record_on_the_callers_thread(emu: Emulator, registry: CollectorRegistry) -> None:
    threads: list[str] = []
    m = meter.Meter(on_record=lambda r: threads.append(threading.current_thread().name), registry=registry,
                    otel=False, metering="inline")
    _client(emu, m).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert threads == [threading.current_thread().name]  # already there: no flush
    with pytest.raises(ValueError, match="metering must be"):
        meter.Meter(metering="later", registry=registry)  # type: ignore[arg-type]


def test_a_body_naming_the_deployment_is_parsed_on_the_worker_exactly(
        emu: Emulator, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Responses body names the deployment, which sets the price: it is parsed whole (a nested
    ``"model"`` written first, in ``metadata``, is not taken for it), and on the worker, not on the
    caller's thread."""
    import meter.hub as hub

    parsed_on: list[str] = []
    parse = hub.parse_body

    def spying(body: bytes | None) -> Any:
        parsed_on.append(threading.current_thread().name)
        return parse(body)

    monkeypatch.setattr(hub, "parse_body", spying)
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, registry=registry, otel=False)
    client = _client(emu, m)
    # the body as another client may write it (the SDK puts "model" first)
    client.post("/responses", cast_to=object,
                body={"metadata": {"model": "gpt-4.1"}, "model": "gpt-4o-mini", "input": "hello"})
    assert m.flush(5.0)
    assert [(r.request_model, r.deployment) for r in records] == [("gpt-4o-mini", "gpt-4o-mini")]
    cost = records[0].cost
    assert cost is not None and cost.total is not None and (cost.model or "").startswith("gpt-4o-mini-")
    assert parsed_on == ["meter-metering"]


def test_the_span_keeps_the_calls_own_times_and_the_callers_parent(emu: Emulator,
                                                                   registry: CollectorRegistry) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, tracer_provider=provider, registry=registry)
    client = _client(emu, m)
    with provider.get_tracer("app").start_as_current_span("handler") as parent:
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    m.flush(5.0)
    spans = [s for s in exporter.get_finished_spans() if s.name != "handler"]
    assert len(spans) == len(records) == 3
    parent_ctx = parent.get_span_context()
    for span, record in zip(spans, records, strict=True):
        assert span.parent is not None and span.parent.span_id == parent_ctx.span_id  # opened on the worker
        assert span.context.trace_id == parent_ctx.trace_id
        assert record.span_id == format(span.context.span_id, "016x")
        started_us = int(record.started_at.timestamp() * 1_000_000)
        assert span.start_time is not None
        assert abs(span.start_time // 1000 - started_us) <= 1  # the call's own start, not when the worker ran
        assert span.end_time is not None
        assert abs((span.end_time - span.start_time) / 1e9 - record.duration_s) < 0.005


def test_a_scrape_shows_every_call_that_has_ended(emu: Emulator, registry: CollectorRegistry) -> None:
    gate = threading.Event()
    seen: list[meter.CallRecord] = []

    def hold_first(record: meter.CallRecord) -> None:
        seen.append(record)
        if len(seen) == 1:
            gate.wait(5.0)  # the worker is held here, after the first call's sinks, before the second call's

    m = meter.Meter(on_record=hold_first, registry=registry, otel=False)
    client = _client(emu, m)
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    threading.Timer(0.3, gate.set).start()
    text = generate_latest(registry).decode()  # waits for the worker (bounded), then reads
    lines = [line for line in text.splitlines() if line.startswith('llm_requests_total{api="chat"')]
    assert len(lines) == 1 and lines[0].endswith(" 2.0"), text[:3000]


def test_a_worker_behind_loses_nothing_calls_go_inline_counted(emu: Emulator, registry: CollectorRegistry) -> None:
    gate = threading.Event()
    records: list[tuple[str, str]] = []

    def slow(record: meter.CallRecord) -> None:
        if threading.current_thread().name == "meter-metering":
            gate.wait(10.0)
        records.append((record.response_id or "", threading.current_thread().name))

    m = meter.Meter(on_record=slow, registry=registry, otel=False)
    assert m._worker is not None
    m._worker.max_queued = 2
    client = _client(emu, m)
    for _ in range(6):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    inline = [name for _, name in records if name != "meter-metering"]
    assert len(inline) >= 3, records  # the queue was full: metered on the caller's own thread
    assert m.faults["metering_inline"] == len(inline)
    gate.set()
    assert m.flush(5.0)
    assert len(records) == 6 and len({rid for rid, _ in records}) == 6  # every call once


def test_close_drains_then_calls_go_inline(emu: Emulator, registry: CollectorRegistry) -> None:
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, registry=registry, otel=False)
    client = _client(emu, m)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert m.close(5.0)
    assert len(records) == 1
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert len(records) == 2  # after close: on the caller's thread, at once
    assert "metering_inline" not in m.faults  # closing is not falling behind


def _run(script: str, emu: Emulator, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EMU": emu.url, "TMP": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True,
                          text=True, timeout=60)


def test_exit_without_close_writes_every_record_to_the_ledger(emu: Emulator, tmp_path: Path) -> None:
    done = _run(f"""
        import os, openai, meter
        m = meter.Meter(ledger=os.path.join(os.environ["TMP"], "l.sqlite"), otel=False, prometheus=False)
        c = meter.wrap(openai.AzureOpenAI(azure_endpoint=os.environ["EMU"], api_key="{API_KEY}",
                                          api_version="{API_VERSION}", max_retries=0), meter=m)
        for _ in range(20):
            c.chat.completions.create(model="gpt-4o-mini", messages={MESSAGES!r})
        # no flush, no close: the exit drains the worker, then the ledger
    """, emu, tmp_path)
    assert done.returncode == 0, done.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "l.sqlite") as db:
        assert db.execute("select count(*) from calls").fetchone()[0] == 20


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_never_replays_the_parents_queue(emu: Emulator, tmp_path: Path) -> None:
    done = _run(f"""
        import os, threading, openai, meter
        seen = []
        gate = threading.Event()
        def hold(record):
            gate.wait(5.0)
            seen.append(record.response_id)
        m = meter.Meter(on_record=hold, otel=False, prometheus=False)
        c = meter.wrap(openai.AzureOpenAI(azure_endpoint=os.environ["EMU"], api_key="{API_KEY}",
                                          api_version="{API_VERSION}", max_retries=0), meter=m)
        for _ in range(3):
            c.chat.completions.create(model="gpt-4o-mini", messages={MESSAGES!r})
        pid = os.fork()  # the parent's queue holds its calls' jobs now
        if pid == 0:
            gate.set()
            c.chat.completions.create(model="gpt-4o-mini", messages={MESSAGES!r})
            m.flush(5.0)
            print("child", len(seen), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        gate.set()
        m.flush(5.0)
        print("parent", len(seen), flush=True)
    """, emu, tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split("\n")[:2]) == ["child 1", "parent 3"], done.stdout


def test_budget_settles_on_the_worker_and_flush_shows_it(emu: Emulator, registry: CollectorRegistry) -> None:
    budgets: list[dict[str, Any]] = [{"name": "all", "period": "day", "limit_usd": "100"}]
    m = meter.Meter(budgets=budgets, registry=registry, otel=False)
    _client(emu, m).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    m.flush(5.0)
    assert m.budgets is not None
    (status,) = m.budgets.store.status()
    assert status.reserved == 0 and status.spent > 0


def test_calls_racing_close_each_get_one_record(emu: Emulator, registry: CollectorRegistry) -> None:
    """No job lands behind the worker's stop: a call that ends while ``close`` runs is metered there or
    on its own thread, once."""
    records: list[meter.CallRecord] = []
    lock = threading.Lock()

    def keep(record: meter.CallRecord) -> None:
        with lock:
            records.append(record)

    m = meter.Meter(on_record=keep, registry=registry, otel=False)
    client = _client(emu, m)
    made = [0] * 8
    go = threading.Event()

    def work(i: int) -> None:
        go.wait()
        for _ in range(40):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
            made[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: widen any check-then-put race
    try:
        go.set()
        threading.Event().wait(0.3)
        assert m.close(10.0)
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(interval)
    m.flush(5.0)
    assert sum(made) == 320 and len(records) == 320
    assert len({r.response_id for r in records}) == 320
    text = generate_latest(registry).decode()  # the sinks had every call too (a lost start job loses them)
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("llm_requests_total{"))
    assert counted == 320, text[:2000]


def test_a_dropped_meter_leaves_no_thread_behind(emu: Emulator) -> None:
    """Nothing keeps a Meter's worker alive but the Meter: dropped without close(), its thread ends."""
    import gc

    def workers() -> int:
        return sum(1 for t in threading.enumerate() if t.name == "meter-metering" and t.is_alive())

    before = workers()
    for _ in range(20):
        m = meter.Meter(otel=False, prometheus=False)
        _client(emu, m).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
        m.flush(5.0)
        del m
    gc.collect()
    deadline = time.monotonic() + 5.0
    while workers() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert workers() <= before, workers()


def test_a_call_is_one_hand_off_to_the_worker(emu: Emulator, registry: CollectorRegistry) -> None:
    """A call's start and end go to the worker as one job, when it ends: one queue hand-off (and at most one
    wake-up) on the caller's thread per call, a JSON call or a stream."""
    m = meter.Meter(registry=registry, otel=False)
    worker = m._worker
    assert worker is not None
    submitted: list[str] = []
    submit = worker.submit

    def counting(job: Any) -> bool:
        submitted.append(threading.current_thread().name)
        return submit(job)

    worker.submit = counting  # type: ignore[method-assign]
    _json_calls_then_a_stream(_client(emu, m), 3)
    assert m.flush(5.0)
    assert submitted == [threading.current_thread().name] * 4
    assert not m.faults


@pytest.fixture
def short_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    import meter.worker

    monkeypatch.setattr(meter.worker, "POLL_FOR_S", 0.3)


class _CountingEvent(threading.Event):
    """An ``Event`` that counts its ``set`` calls (each one a wake-up the worker's thread may be given)."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


def test_a_busy_worker_is_not_woken_and_an_idle_one_sleeps(short_polls: None) -> None:
    """Jobs handed over while the worker polls (``POLL_FOR_S`` after its queue empties) cost no wake-up and
    still run within a poll step; after that it sleeps with no deadline (an idle process does not wake up)
    and the next job wakes it once."""
    from meter.worker import POLL_S, MeteringWorker

    worker = MeteringWorker(name="meter-test-worker")
    wake = _CountingEvent()
    worker._state.wake = wake  # before the first job: the thread takes it when it starts
    ran: list[float] = []
    try:
        assert worker.submit(lambda: ran.append(time.monotonic()))
        assert worker.flush(5.0)
        sets = wake.sets  # the flush's own wake-up
        for _ in range(5):
            handed = time.monotonic()
            assert worker.submit(lambda: ran.append(time.monotonic()))
            deadline = time.monotonic() + 5.0
            while len(ran) < 2 + _ and time.monotonic() < deadline:
                time.sleep(0.001)
            assert ran[-1] - handed < POLL_S + 0.05  # found within a poll step
        assert wake.sets == sets  # polling: the caller woke no one
        deadline = time.monotonic() + 5.0
        while not worker._state.parked and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker._state.parked  # asleep with no deadline after POLL_FOR_S without a job
        handed = time.monotonic()
        assert worker.submit(lambda: ran.append(time.monotonic()))
        assert wake.sets == sets + 1  # woken once
        assert worker.flush(5.0)
        assert ran[-1] - handed < 1.0 and len(ran) == 7
    finally:
        assert worker.close(5.0)


def _busy_call() -> None:
    """About half a millisecond of pure Python, then the GIL given up for an instant, as the SDK does for each
    call's idempotency key (``os.urandom``): a caller that never waits on a socket."""
    total = 0
    for i in range(12_000):
        total += i
    os.urandom(16)


def test_a_worker_behind_a_busy_caller_is_handed_the_interpreter() -> None:
    """A caller that never waits starves a thread that wants the GIL (CPython's 5 ms forced switch never comes
    while the caller hands the GIL back and takes it again at once). The worker gets it anyway: a caller that
    finds it behind (``BEHIND_S``) lets it in, so the jobs run while the caller is busy, not all at its end."""
    from meter.worker import MeteringWorker

    worker = MeteringWorker(name="meter-test-worker")
    ran: list[float] = []
    try:
        submitted = 0
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            _busy_call()
            assert worker.submit(lambda: ran.append(time.monotonic()))
            submitted += 1
        during = sum(1 for t in ran if t < end)
        assert worker.flush(10.0) and len(ran) == submitted
        assert during >= submitted // 2, f"only {during} of {submitted} jobs ran while the caller was busy"
    finally:
        assert worker.close(5.0)
