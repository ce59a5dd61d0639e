"""OpenTelemetry through the real OTLP/HTTP exporters to a loopback receiver that decodes the protobufs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client import CollectorRegistry, generate_latest

import meter
from meter import names
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.replay import ReplayServer
from tests.telemetry.workload import CASES, KEY, MESSAGES, run_workload, serve_workload


class Telemetry:
    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_endpoint)))
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=receiver.metrics_endpoint),
                                               export_interval_millis=60_000)
        self.meter_provider = MeterProvider(metric_readers=[reader])
        self.records: list[meter.CallRecord] = []
        self.registry = CollectorRegistry()

    def meter(self, **options: Any) -> meter.Meter:
        return meter.Meter(on_record=self.records.append, tracer_provider=self.tracer_provider,
                           meter_provider=self.meter_provider, registry=self.registry, **options)

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    with OtlpReceiver() as receiver:
        t = Telemetry(receiver)
        yield t
        t.tracer_provider.shutdown()
        t.meter_provider.shutdown()


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as srv:
        serve_workload(srv)
        yield srv


def by_span_id(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {s.span_id: s for s in spans}


def test_spans_nest_under_the_callers_span_with_genai_attributes(
    telemetry: Telemetry, server: ReplayServer
) -> None:
    m = telemetry.meter(label_keys=("team",))
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as parent:
        run_workload(server, m)
    telemetry.flush()
    spans = telemetry.receiver.wait_for_spans(len(telemetry.records) + 1)
    ids = by_span_id(spans)
    parent_id = format(parent.get_span_context().span_id, "016x")
    assert len([r for r in telemetry.records if r.outcome == "ok"]) == 8
    for record in telemetry.records:
        span = ids[record.span_id or ""]
        assert span.kind == "CLIENT" and span.parent_span_id == parent_id
        assert span.trace_id == record.trace_id
        a = span.attributes
        assert a[names.PROVIDER_NAME] == "azure.ai.openai"
        assert a[names.SERVER_ADDRESS] == "127.0.0.1" and a[names.SERVER_PORT] == int(server.url.rsplit(":", 1)[1])
        assert a[names.OPERATION_NAME] == ("embeddings" if record.api == "embeddings" else "chat")
        assert span.name == f"{a[names.OPERATION_NAME]} {a[names.REQUEST_MODEL]}"
        assert a[names.REQUEST_MODEL] == record.deployment
        assert a[names.ATTRIBUTE_PREFIX + "team"] == record.attributes["team"]
        assert span.start_ns / 1e9 == pytest.approx(record.started_at.timestamp(), abs=1e-5)
        assert span.duration_s == pytest.approx(record.duration_s, abs=1e-6)
        if record.usage is not None:
            assert a[names.USAGE_INPUT_TOKENS] == record.usage.input_tokens
            assert a[names.USAGE_OUTPUT_TOKENS] == record.usage.output_tokens
            assert a[names.USAGE_CACHE_READ_INPUT_TOKENS] == record.usage.cached_input_tokens
            assert a[names.USAGE_REASONING_OUTPUT_TOKENS] == record.usage.reasoning_output_tokens
        if record.cost is not None and record.cost.total is not None:
            assert a[names.USAGE_COST_AMOUNT] == pytest.approx(float(record.cost.total))
            assert a[names.USAGE_COST_CURRENCY] == "USD"
            assert a[names.COST_TABLE_VERSION] == record.cost.table_version
            assert a[names.COST_BASIS] == "list"
        if record.response_model:
            assert a[names.RESPONSE_MODEL] == record.response_model
        if record.stream:
            assert a[names.REQUEST_STREAM] is True
        if record.time_to_first_token_s is not None:
            assert a[names.RESPONSE_TIME_TO_FIRST_CHUNK] == pytest.approx(record.time_to_first_token_s)
            (event,) = [e for e in span.events if e.name == names.FIRST_TOKEN_EVENT]
            assert span.start_ns <= event.time_ns <= span.end_ns
        if record.outcome == "ok":
            assert span.status_code == "UNSET"
        else:
            assert span.status_code == "ERROR" and a[names.ERROR_TYPE] == record.error_type
    responses = [ids[r.span_id or ""] for r in telemetry.records if r.api == "responses"]
    assert {s.attributes[names.OPENAI_API_TYPE] for s in responses} == {"responses"}


def test_genai_metrics(telemetry: Telemetry, server: ReplayServer) -> None:
    run_workload(server, telemetry.meter())
    telemetry.flush()
    duration = telemetry.receiver.wait_for_metric(names.METRIC_OPERATION_DURATION)
    assert sum(p.count or 0 for p in duration) == len(telemetry.records)
    assert duration[0].explicit_bounds == list(names.DURATION_BUCKETS)
    errors = [p for p in duration if p.attributes.get(names.ERROR_TYPE) == "429"]
    assert sum(p.count or 0 for p in errors) == 1
    tokens = telemetry.receiver.points(names.METRIC_TOKEN_USAGE)
    assert tokens[0].explicit_bounds == [float(b) for b in names.TOKEN_BUCKETS]
    reported = [r for r in telemetry.records if r.usage is not None and r.usage_source != "estimated"]
    inputs = sum(p.sum or 0 for p in tokens if p.attributes[names.TOKEN_TYPE] == "input")
    assert inputs == sum(r.usage.input_tokens for r in reported if r.usage is not None)
    ttfc = telemetry.receiver.points(names.METRIC_TIME_TO_FIRST_CHUNK)
    assert sum(p.count or 0 for p in ttfc) == len([r for r in telemetry.records if r.time_to_first_token_s])
    cost = telemetry.receiver.points(names.METRIC_OPERATION_COST)
    priced = [r for r in telemetry.records if r.cost is not None and r.cost.total is not None]
    expected = sum(float(r.cost.total) for r in priced if r.usage_source != "estimated")
    assert sum(float(p.value or 0) for p in cost) == pytest.approx(expected)
    estimated = [r for r in priced if r.usage_source == "estimated"]
    assert estimated  # the workload has one: it is counted apart, never in the exact cost
    estimated_cost = telemetry.receiver.points(names.METRIC_ESTIMATED_COST)
    assert sum(float(p.value or 0) for p in estimated_cost) == pytest.approx(
        sum(float(r.cost.total) for r in estimated))
    estimated_tokens = telemetry.receiver.points(names.METRIC_ESTIMATED_TOKENS)
    assert sum(p.value or 0 for p in estimated_tokens if p.attributes[names.TOKEN_TYPE] == "output") == sum(
        r.usage.output_tokens for r in estimated if r.usage is not None)


def test_content_is_off_by_default_on_when_asked_and_capped(
    telemetry: Telemetry, server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def client(m: meter.Meter) -> openai.AzureOpenAI:  # one client per meter: a client is metered by one Meter
        return meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key=KEY, api_version="2024-10-21"),
                          meter=m)

    client(telemetry.meter()).chat.completions.create(
        model="reasoner-prod", messages=[{"role": "user", "content": "secret plan"}])
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    client(telemetry.meter()).chat.completions.create(
        model="reasoner-prod", messages=[{"role": "user", "content": "secret plan"}])
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    client(telemetry.meter(capture_content=True, content_max_chars=40)).chat.completions.create(
        model="reasoner-prod", messages=[{"role": "user", "content": "y" * 500}])
    telemetry.flush()
    off, on, capped = telemetry.receiver.wait_for_spans(3)
    assert names.INPUT_MESSAGES not in off.attributes and names.OUTPUT_MESSAGES not in off.attributes
    assert b"secret plan" not in telemetry.receiver.raw_bodies[0]
    assert "secret plan" in on.attributes[names.INPUT_MESSAGES]
    answer = json.loads(CASES["01"].body)["choices"][0]["message"]["content"]
    assert json.loads(on.attributes[names.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == answer
    (message,) = json.loads(capped.attributes[names.INPUT_MESSAGES])  # cut inside the text, still JSON
    assert message["parts"][0]["content"] == "y" * 40 + "…[truncated]"


def test_stream_content_captured_from_deltas(telemetry: Telemetry, server: ReplayServer) -> None:
    client = openai.AzureOpenAI(azure_endpoint=server.url, api_key=KEY, api_version="2024-10-21", max_retries=2)
    meter.wrap(client, meter=telemetry.meter(capture_content=True))
    text = "".join((c.choices[0].delta.content or "") for c in
                   client.chat.completions.create(model="gpt4o-east", messages=MESSAGES, stream=True)
                   if c.choices and c.choices[0].delta)
    telemetry.flush()
    spans = telemetry.receiver.wait_for_spans(2)
    assert text and text in spans[-1].attributes[names.OUTPUT_MESSAGES]


def test_no_secret_anywhere(
    telemetry: Telemetry, server: ReplayServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)

    def broken(record: meter.CallRecord) -> None:
        raise RuntimeError("subscriber bug, logged")

    m = telemetry.meter(label_keys=("team",))
    m.subscribe(broken)
    run_workload(server, m)
    telemetry.flush()
    telemetry.receiver.wait_for_spans(len(telemetry.records))
    assert m.faults["subscriber"] == len(telemetry.records)  # something was logged
    everything = [
        *telemetry.receiver.raw_bodies,
        generate_latest(telemetry.registry),
        "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records).encode(),
        "".join(capfd.readouterr()).encode(),
        repr(telemetry.records).encode(),
    ]
    assert all(KEY.encode() not in blob for blob in everything)
    # ... though it was sent: api-key by AzureOpenAI, a bearer token by the v1 OpenAI client
    assert server.requests and all(r.header("api-key") == KEY or r.header("authorization") == f"Bearer {KEY}"
                                   for r in server.requests)


def test_without_providers_meter_uses_the_global_noop_and_installs_nothing(server: ReplayServer) -> None:
    from opentelemetry import trace

    before = trace.get_tracer_provider()
    records: list[meter.CallRecord] = []
    run_workload(server, meter.Meter(on_record=records.append, registry=CollectorRegistry()))
    assert trace.get_tracer_provider() is before
    assert len(records) >= 9 and all(r.trace_id is None for r in records)


def test_prometheus_exemplars_link_to_exported_traces(telemetry: Telemetry, server: ReplayServer) -> None:
    run_workload(server, telemetry.meter())
    telemetry.flush()
    exported = {s.trace_id for s in telemetry.receiver.wait_for_spans(len(telemetry.records))}
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

    text = openmetrics(telemetry.registry).decode()
    linked = {line.split('trace_id="', 1)[1][:32] for line in text.splitlines() if 'trace_id="' in line}
    assert linked and linked <= exported


async def test_asgi_metrics_app(telemetry: Telemetry, server: ReplayServer) -> None:
    run_workload(server, telemetry.meter())
    app = meter.metrics_asgi_app(telemetry.registry)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"", "headers": []}
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert b"llm_cost_usd_total" in body
