"""Defect 12, the smaller ones, each pinned: attach faults, a chunk racing a close, embeddings ids,
``price_tables`` as one path, content cut inside the JSON (see tests/telemetry/test_otel.py),
stream_options re-serialised (see tests/core/test_request.py), prefixed gateway paths (see
tests/core/test_route.py), and the estimate rule (see test_background.py and tests/telemetry)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import meter
from meter.adapters import transport as transport_mod
from meter.core.headers import RawHeaders

CHAT = "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
BODY = {"id": "c1", "model": "gpt-4o-2024-11-20", "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def test_a_fault_in_attach_emits_the_record_and_ends_the_span(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, tracer_provider=provider, prometheus=False, price_book=False)

    def broken(request: Any) -> Any:
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(transport_mod, "_stack", broken)
    handler = httpx2.MockTransport(lambda request: httpx2.Response(200, json=BODY))
    with httpx2.Client(transport=meter.MeteredTransport(handler, meter=m)) as client:
        response = client.post(CHAT, json={"messages": []})
    assert response.status_code == 200 and response.json() == BODY  # the caller got it untouched
    assert m.flush(10)
    (record,) = records
    assert (record.outcome, record.status_code, record.usage) == ("ok", 200, None)
    assert m.faults == {"attach": 1}
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes["meter.outcome"] == "ok"


def test_a_close_during_a_chunk_waits_for_it() -> None:
    """A close from another thread while a chunk is half read: the record is built after the chunk, from
    a state no chunk is changing (before: from the half-read one, or a ``record`` fault on a dict that
    changed size while it was read)."""
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)
    begun = m.begin("POST", "res.openai.azure.com", None, "/openai/deployments/d/chat/completions",
                    "api-version=2024-10-21", {}, lambda: b'{"stream":true,"n":2}')
    assert begun is not None
    call, _, _ = begun
    call.on_response(200, RawHeaders([(b"content-type", b"text/event-stream")]))
    halfway = threading.Event()

    class SlowReasons(dict[int, str]):
        def __setitem__(self, key: int, value: str) -> None:
            super().__setitem__(key, value)
            if key == 0:  # between the two choices of one chunk
                halfway.set()
                time.sleep(0.3)

    call.obs.finish_reasons = SlowReasons()
    chunk = (b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"},'
             b'{"index":1,"delta":{},"finish_reason":"length"}],"usage":null}\n\n')
    reader = threading.Thread(target=call.on_chunk, args=(chunk,))
    reader.start()
    assert halfway.wait(5)
    call.on_close()
    reader.join()
    assert m.flush(10)
    (record,) = records
    assert record.finish_reasons == ("stop", "length")
    assert "record" not in m.faults


def test_embeddings_responses_keep_their_id() -> None:
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)
    body = {"id": "emb-7f3a", "object": "list", "model": "embed-v-4-0", "data": [],
            "usage": {"prompt_tokens": 4, "total_tokens": 4}}
    handler = httpx2.MockTransport(lambda request: httpx2.Response(200, json=body))
    with httpx2.Client(transport=meter.MeteredTransport(handler, meter=m)) as client:
        client.post("https://acct.services.ai.azure.com/openai/v1/embeddings", json={"model": "embed-v-4-0"})
    assert m.flush(10)
    (record,) = records
    assert (record.api, record.response_id, record.response_model) == ("embeddings", "emb-7f3a", "embed-v-4-0")


def test_price_tables_takes_a_single_path(tmp_path: Path) -> None:
    table = tmp_path / "contoso.toml"
    table.write_text('[table]\nversion = "contoso-1"\npublished = 2026-01-01\n\n[[price]]\nmodel = "contoso-llm"\n'
                     'deployment_type = "GlobalStandard"\neffective_from = 2026-01-01\ninput = "1.00"\n'
                     'output = "2.00"\nsource = "test"\n')
    for tables in (str(table), table, [str(table)]):
        records: list[meter.CallRecord] = []
        m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_tables=tables)
        body = {**BODY, "model": "contoso-llm", "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 0}}
        handler = httpx2.MockTransport(lambda request, body=body: httpx2.Response(200, json=body))
        with httpx2.Client(transport=meter.MeteredTransport(handler, meter=m)) as client:
            client.post(CHAT, json={"messages": []})
        assert m.flush(10)
        assert str(records[0].cost.total) == "1.00", tables


def test_captured_content_is_valid_json_however_it_is_cut() -> None:
    from meter.sinks import content

    body = {"instructions": "sys " * 50, "input": [{"role": "user", "content": [{"type": "input_text",
                                                                                  "text": "é\"\\" * 100}]}]}
    for limit in (0, 1, 7, 50, 199, 200, 201, 10_000):
        text = content.input_messages(body, limit)
        assert text is not None
        messages = json.loads(text)
        kept = "".join(p["content"].removesuffix(content.TRUNCATED) for m in messages for p in m["parts"])
        assert len(kept) <= limit


def test_a_metering_thread_that_cannot_start_meters_the_call_inline_and_ends_its_hold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A process at its thread limit ("can't start new thread"): the call was left unmetered (a ``begin``
    fault) and its budget hold was never released, so a hard budget filled up with holds. Now it is metered
    on the caller's thread."""
    from decimal import Decimal

    from prometheus_client import CollectorRegistry

    real_start = threading.Thread.start

    def refuse(self: threading.Thread) -> None:
        if self.name == "meter-metering":
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", refuse)
    hard = {"name": "h", "match": {}, "period": "day", "limit_usd": "1", "enforce": "hard"}
    records: list[meter.CallRecord] = []
    threads: list[str] = []

    def keep(record: meter.CallRecord) -> None:
        threads.append(threading.current_thread().name)
        records.append(record)

    m = meter.Meter(otel=False, registry=CollectorRegistry(), budgets=[hard], on_record=keep)
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    handler = httpx2.MockTransport(lambda request: httpx2.Response(200, json={**BODY, "usage": usage}))
    with httpx2.Client(transport=meter.MeteredTransport(handler, meter=m)) as client:
        for _ in range(3):
            assert client.post(CHAT.replace("/d/", "/gpt-4o/"), json={"max_tokens": 1000, "messages": []}
                               ).status_code == 200
    assert m.flush(10)
    assert len(records) == 3 and set(threads) == {threading.current_thread().name}
    assert m.faults == {}
    assert m.budgets is not None
    [status] = m.budgets.store.status()
    assert (status.spent, status.reserved) == (3 * Decimal("0.0075"), Decimal(0))
