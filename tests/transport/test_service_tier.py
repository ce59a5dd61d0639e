"""The service tier (issue 22, item 1): asked for, served, priced, through the real openai SDK on loopback.

Azure says which tier served a call in the body (``service_tier``) and in ``x-ms-service-tier``;
Priority is billed at its own rates (gpt-4.1 Global Priority input 3.5 USD a million tokens against
2 at Global Standard), so a call is priced at the tier the service says served it, else at the one
it asked for, flagged as assumed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import openai
import pytest

import meter
from meter.core.tiers import SERVICE_TIERS, priced_tier, tier_name
from tests.support.replay import CannedResponse, ReplayServer
from tests.transport.conftest import Records

API_VERSION = "2025-04-01-preview"
PATH = "/openai/deployments/gpt-41/chat/completions"
USAGE = {"prompt_tokens": 1_000_000, "completion_tokens": 0, "total_tokens": 1_000_000}


def _chat(tier: str | None, headers: list[tuple[str, str]] | None = None) -> CannedResponse:
    body: dict[str, Any] = {
        "id": "chatcmpl-tier", "object": "chat.completion", "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": USAGE,
    }
    if tier is not None:
        body["service_tier"] = tier
    return CannedResponse.json(200, body, headers=headers)


def _call(server: ReplayServer, records: Records, response: CannedResponse, **request: Any) -> meter.CallRecord:
    server.add("POST", PATH, response)
    m = meter.Meter(otel=False, prometheus=False, on_record=records.append)
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=API_VERSION,
                                           max_retries=0), meter=m)
    client.chat.completions.create(model="gpt-41", messages=[{"role": "user", "content": "hi"}], **request)
    m.flush()
    return records.one()


def test_a_priority_call_is_priced_at_the_priority_rates(server: ReplayServer, records: Records) -> None:
    record = _call(server, records, _chat("priority", [("x-ms-service-tier", "priority")]),
                   service_tier="priority")
    assert (record.requested_service_tier, record.service_tier, record.service_tier_assumed) == (
        "priority", "priority", False)
    assert record.deployment_type == "GlobalPriority"
    assert record.cost is not None and record.cost.total == Decimal("3.5")


def test_priority_asked_for_but_standard_served_is_priced_at_standard(server: ReplayServer,
                                                                       records: Records) -> None:
    record = _call(server, records, _chat("default"), service_tier="priority")
    assert (record.requested_service_tier, record.service_tier, record.service_tier_assumed) == (
        "priority", "default", False)
    assert record.deployment_type == "GlobalStandard"
    assert record.cost is not None and record.cost.total == Decimal("2")


def test_the_header_says_which_tier_served_when_the_body_does_not(server: ReplayServer, records: Records) -> None:
    record = _call(server, records, _chat(None, [("x-ms-service-tier", "Priority")]))
    assert (record.requested_service_tier, record.service_tier, record.service_tier_assumed) == (
        None, "priority", False)
    assert record.cost is not None and record.cost.total == Decimal("3.5")


def test_without_an_answer_the_requested_tier_is_priced_and_flagged_assumed(server: ReplayServer,
                                                                            records: Records) -> None:
    record = _call(server, records, _chat(None), service_tier="priority")
    assert (record.service_tier, record.service_tier_assumed) == ("priority", True)
    assert record.cost is not None and record.cost.total == Decimal("3.5")
    assert record.cost.assumed_deployment_type  # Global, not Data Zone, is a guess too


def test_flex_has_its_own_deployment_type_and_is_unpriced_until_its_meters_are_in_the_table(
        server: ReplayServer, records: Records) -> None:
    record = _call(server, records, _chat("flex", [("x-ms-service-tier", "flex")]), service_tier="flex")
    assert record.deployment_type == "GlobalFlex"
    assert record.cost is not None and record.cost.total is None  # unknown, never the standard price or 0


def test_a_call_that_names_no_tier_is_priced_as_before(server: ReplayServer, records: Records) -> None:
    record = _call(server, records, _chat(None))
    assert (record.requested_service_tier, record.service_tier, record.service_tier_assumed) == (None, None, False)
    assert record.deployment_type == "GlobalStandard"
    assert record.cost is not None and record.cost.total == Decimal("2")


def test_a_stream_reads_the_tier_from_its_chunks(server: ReplayServer, records: Records) -> None:
    chunk = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": "gpt-4.1-2025-04-14",
             "service_tier": "priority", "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}]}
    last = {**chunk, "choices": [], "usage": USAGE}
    body = [f"data: {json.dumps(c)}\n\n".encode() for c in (chunk, last)] + [b"data: [DONE]\n\n"]
    server.add("POST", PATH, CannedResponse(200, [("Content-Type", "text/event-stream")], body))
    m = meter.Meter(otel=False, prometheus=False, on_record=records.append)
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=API_VERSION,
                                           max_retries=0), meter=m)
    for _ in client.chat.completions.create(model="gpt-41", messages=[{"role": "user", "content": "hi"}],
                                            stream=True):
        pass
    m.flush()
    record = records.one()
    assert record.service_tier == "priority" and record.deployment_type == "GlobalPriority"


@pytest.mark.parametrize("hostile", ["PRIORITY\x00", "a\ud800b", "x" * 10_000, "premium"])
def test_a_tier_no_one_knows_is_other_never_the_text_itself(hostile: str) -> None:
    assert tier_name(hostile) == "other"


def test_the_tier_vocabulary() -> None:
    assert [tier_name(t) for t in ("default", " Flex ", "AUTO", "scale")] == ["default", "flex", "auto", "scale"]
    assert tier_name(None) is None and tier_name("") is None and tier_name(3) is None
    assert "other" in SERVICE_TIERS
    assert priced_tier("default", "priority") == ("default", False)
    assert priced_tier(None, "auto") == ("default", True)
    assert priced_tier(None, None) == (None, False)


def test_the_span_carries_the_tiers_by_the_openai_conventions(server: ReplayServer) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from meter import names
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver() as receiver:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_endpoint)))
        m = meter.Meter(prometheus=False, tracer_provider=provider)
        client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=API_VERSION,
                                               max_retries=0), meter=m)
        server.add("POST", PATH, _chat("default"))
        server.add("POST", PATH, _chat(None))
        for _ in range(2):
            client.chat.completions.create(model="gpt-41", messages=[{"role": "user", "content": "hi"}],
                                           service_tier="priority")
        m.flush()  # the spans end on the metering thread
        provider.force_flush()
        spans = receiver.wait_for_spans(2)
        provider.shutdown()
    served, assumed = sorted((s.attributes for s in spans), key=lambda a: names.SERVICE_TIER_ASSUMED in a)
    assert served[names.OPENAI_REQUEST_SERVICE_TIER] == "priority"
    assert served[names.OPENAI_RESPONSE_SERVICE_TIER] == "default"
    assert names.SERVICE_TIER_ASSUMED not in served
    assert assumed[names.OPENAI_REQUEST_SERVICE_TIER] == "priority"
    assert names.OPENAI_RESPONSE_SERVICE_TIER not in assumed  # the service never said: not a response attribute
    assert assumed[names.SERVICE_TIER_ASSUMED] is True


def test_prometheus_folds_the_tier_into_the_deployment_type_label(server: ReplayServer) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    m = meter.Meter(otel=False, registry=registry)
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=API_VERSION,
                                           max_retries=0), meter=m)
    server.add("POST", PATH, _chat("priority"))
    server.add("POST", PATH, _chat(None))
    for _ in range(2):
        client.chat.completions.create(model="gpt-41", messages=[{"role": "user", "content": "hi"}])
    requests = [line for line in generate_latest(registry).decode().splitlines()
                if line.startswith("llm_requests_total{")]
    assert len(requests) == 2, requests
    assert {line.split('deployment_type="')[1].split('"')[0] for line in requests} == {
        "GlobalPriority", "GlobalStandard"}
