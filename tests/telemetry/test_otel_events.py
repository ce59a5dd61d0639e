"""The per-call event ``gen_ai.client.inference.operation.details``, exported over real OTLP and decoded.

An SDK LoggerProvider with the OTLP/HTTP log exporter sends to a real receiver on loopback,
which decodes the protobufs. Each call is one log record carrying the usage, the exact cost
(as the attribute double), the tags and the call's trace context; no content unless
capture is on; nothing at all unless asked.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

import meter
from meter import names
from meter.sinks.otel_events import EVENT_NAME
from tests.support.otlp_receiver import OtlpReceiver

URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"


def azure(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json={
        "id": "chatcmpl-ev", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "SECRET-OUT"}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 180, "total_tokens": 1380,
                  "prompt_tokens_details": {"cached_tokens": 1024}}})


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def _run(receiver: OtlpReceiver, **options: object) -> tuple[list[meter.CallRecord], LoggerProvider]:
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=receiver.logs_endpoint)))
    records: list[meter.CallRecord] = []
    m = meter.Meter(registry=CollectorRegistry(), tracer_provider=TracerProvider(), logger_provider=provider,
                    on_record=records.append, **options)  # type: ignore[arg-type]
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with meter.attribute(team="search"):
        for _ in range(3):
            client.post(URL, json={"messages": [{"role": "user", "content": "SECRET-IN"}]})
    m.flush()  # the records and the events are made on the metering thread
    provider.force_flush()
    return records, provider


def test_one_event_per_call_with_usage_cost_tags_and_trace(receiver: OtlpReceiver) -> None:
    records, provider = _run(receiver, otel_events=True)
    logs = receiver.wait_for_logs(3)
    assert len(logs) == 3 and {log.event_name for log in logs} == {EVENT_NAME}
    assert len(records) == 3
    by_span = {log.span_id: log for log in logs}
    for record in records:
        log = by_span[record.span_id]
        assert log.trace_id == record.trace_id and log.scope == names.INSTRUMENTATION_SCOPE
        a = log.attributes
        assert a[names.USAGE_INPUT_TOKENS] == 1200 and a[names.USAGE_CACHE_READ_INPUT_TOKENS] == 1024
        assert a[names.USAGE_OUTPUT_TOKENS] == 180
        assert a[names.USAGE_COST_AMOUNT] == pytest.approx(float(record.cost.total), rel=1e-12)
        assert a[names.COST_TABLE_VERSION] == record.cost.table_version
        assert a[names.ATTRIBUTE_PREFIX + "team"] == "search"
        assert a[names.OPERATION_NAME] == "chat" and a[names.RESPONSE_MODEL] == "gpt-4o-2024-11-20"
        assert a[names.REQUEST_MODEL] == "gpt-4o" and a[names.SERVER_ADDRESS] == "x.openai.azure.com"
        assert names.INPUT_MESSAGES not in a and names.OUTPUT_MESSAGES not in a
    raw = b"".join(receiver.raw_bodies)
    assert b"SECRET-IN" not in raw and b"SECRET-OUT" not in raw
    provider.shutdown()


def test_content_only_when_capture_is_on(receiver: OtlpReceiver) -> None:
    _, provider = _run(receiver, otel_events=True, capture_content=True)
    logs = receiver.wait_for_logs(3)
    assert "SECRET-IN" in logs[0].attributes[names.INPUT_MESSAGES]
    assert "SECRET-OUT" in logs[0].attributes[names.OUTPUT_MESSAGES]
    provider.shutdown()


def test_off_unless_asked(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT", raising=False)
    _, provider = _run(receiver)
    assert receiver.logs == []
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT", "true")
    _run(receiver)
    assert len(receiver.wait_for_logs(3)) == 3
    provider.shutdown()
