"""Defect: metrics vanished for a new registry, and the family cache grew forever.

Families were cached by ``id(registry)``: a new ``CollectorRegistry`` allocated at
a dead one's address got the dead one's families and exported nothing. Now the
cache holds registries weakly: every fresh registry gets its own families, and a
registry that is gone leaves nothing behind.
"""

from __future__ import annotations

import gc

import httpx2
from prometheus_client import CollectorRegistry, generate_latest

import meter
from meter.sinks import prometheus as sink

URL = "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
BODY = {"id": "c1", "model": "gpt-4o-2024-11-20", "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def _one_call(m: meter.Meter) -> None:
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=BODY))
    with httpx2.Client(transport=meter.MeteredTransport(transport, meter=m)) as client:
        client.post(URL, json={"messages": []})


def test_every_fresh_registry_exports_its_own_metrics() -> None:
    silent = 0
    for _ in range(40):
        registry = CollectorRegistry()
        m = meter.Meter(registry=registry, otel=False, price_book=False)
        _one_call(m)
        assert m.flush(10)
        text = generate_latest(registry).decode()
        if 'llm_input_tokens_total{api="chat"' not in text or "} 3.0" not in text:
            silent += 1
        del registry, m
        gc.collect()  # frees the registry so the next one may be allocated at the same address
    assert silent == 0


def test_the_cache_forgets_registries_that_are_gone() -> None:
    gc.collect()
    before = len(sink._shared)
    for _ in range(20):
        _one_call(meter.Meter(registry=CollectorRegistry(), otel=False, price_book=False))
    gc.collect()
    assert len(sink._shared) == before


def test_meters_sharing_a_live_registry_still_share_families() -> None:
    registry = CollectorRegistry()
    a = meter.Meter(registry=registry, otel=False, price_book=False)
    b = meter.Meter(registry=registry, otel=False, price_book=False)
    _one_call(a)
    _one_call(b)
    assert a.flush(10) and b.flush(10)
    assert 'llm_requests_total{api="chat"' in generate_latest(registry).decode()
    value = registry.get_sample_value("llm_input_tokens_total", {
        "api": "chat", "deployment": "d", "model": "gpt-4o-2024-11-20", "deployment_type": "", "provider":
        "azure.ai.openai", "outcome": "ok"})
    assert value == 6.0
