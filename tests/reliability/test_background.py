"""Defect 10: a background Responses call was counted twice (an estimate, then the real usage).

A background create whose stream drops is still running on the service; its
later ``GET …?stream=true&starting_after=N`` brings the real usage. The dropped
create's record carries an estimate flagged ``provisional``; the resume's record
carries the service's usage with ``supersedes_estimate=True``; the metric
totals hold the real usage once and the estimate nowhere. A non-background
stream that drops is final: its estimate is counted (in the estimate series).
"""

from __future__ import annotations

import httpx2
import pytest
from prometheus_client import CollectorRegistry

import meter
from meter import names
from tests.support.cases import OWN_CASES, load_cases
from tests.support.replay import ReplayServer, case_response, split_sse_events

CASE = {c.name.split("-", 1)[0]: c for c in load_cases(OWN_CASES)}["13"]
RESPONSE_ID = CASE.expected["response_id"]
LABELS = {"api": "responses", "deployment": "gpt-5-mini", "model": "gpt-5-mini", "deployment_type": "GlobalStandard",
          "provider": "azure.ai.openai"}


def _run(background: bool) -> tuple[list[meter.CallRecord], CollectorRegistry]:
    registry = CollectorRegistry()
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, registry=registry)
    events = split_sse_events(CASE.body)
    with ReplayServer() as srv:
        cut = case_response(CASE)
        cut.reset_after_chunks = 8  # created, in_progress, two deltas, then the connection drops
        srv.add("POST", "/openai/v1/responses", cut)
        srv.add("GET", f"/openai/v1/responses/{RESPONSE_ID}", case_response(CASE))
        with httpx2.Client(transport=meter.MeteredTransport(httpx2.HTTPTransport(), meter=m)) as client:
            body = b'{"model":"gpt-5-mini","stream":true,"input":"write a poem","background":%s}' % (
                b"true" if background else b"false")
            with pytest.raises(httpx2.TransportError), client.stream(
                    "POST", srv.url + "/openai/v1/responses", content=body) as response:
                for _ in response.iter_raw():
                    pass
            client.get(srv.url + f"/openai/v1/responses/{RESPONSE_ID}?stream=true&starting_after=1")
    assert len(events) > 6
    assert m.flush(10)  # the records come on the metering worker
    return records, registry


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_real_usage_supersedes_a_provisional_estimate_and_totals_hold_it_once() -> None:
    records, registry = _run(background=True)
    create, resume = records
    assert (create.operation, create.outcome, create.usage_source) == ("create", "transport_error", "estimated")
    assert create.provisional and not create.supersedes_estimate
    assert create.response_id == RESPONSE_ID
    assert (resume.operation, resume.usage_source, resume.repeat) == ("resume", "stream", False)
    assert resume.supersedes_estimate and not resume.provisional
    assert resume.usage is not None and resume.usage.output_tokens == CASE.expected["usage"]["output_tokens"]
    ns = names.DEFAULT_NAMESPACE
    assert _value(registry, names.output_tokens_total(ns)) == resume.usage.output_tokens
    assert _value(registry, names.input_tokens_total(ns)) == resume.usage.input_tokens
    assert _value(registry, names.estimated_output_tokens_total(ns)) == 0  # the estimate is in no total
    assert _value(registry, names.estimated_cost_usd_total(ns)) == 0
    assert _value(registry, names.cost_usd_total(ns)) == pytest.approx(float(resume.cost.total))
    assert _value(registry, names.estimated_requests_total(ns)) == 1  # the call is still counted as estimated


def test_a_dropped_foreground_stream_keeps_a_final_estimate() -> None:
    records, registry = _run(background=False)
    create, resume = records
    assert create.usage_source == "estimated" and not create.provisional
    assert not resume.supersedes_estimate
    ns = names.DEFAULT_NAMESPACE
    assert create.usage is not None
    assert _value(registry, names.estimated_output_tokens_total(ns)) == create.usage.output_tokens > 0
    assert _value(registry, names.output_tokens_total(ns)) == CASE.expected["usage"]["output_tokens"]
