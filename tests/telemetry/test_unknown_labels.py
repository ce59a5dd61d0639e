"""A call that never names its model or deployment gets ``unknown``, the same everywhere, never an empty value.

A 401 (refused before any model) and a call to a path without a deployment (the v1 API with no
model in the answer) go through a real Meter with Prometheus, OTel spans and metrics over
real OTLP, and a ledger: the Prometheus ``model`` / ``deployment`` labels, the span's and the
metrics' ``gen_ai.response.model`` and deployment attributes, the report's groups and
``CallRecord.model_label`` all say ``unknown``; the record's ``response_model`` stays ``None``.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import meter
from meter import names
from meter.ledger.report import report
from tests.support.otlp_receiver import OtlpReceiver, metric_points


def refused(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(401, json={"error": {"code": "401", "message": "Access denied"}})


def test_unknown_is_the_label_of_a_call_that_named_nothing(tmp_path: Path) -> None:
    assert names.UNKNOWN == "unknown"
    records: list[meter.CallRecord] = []
    registry = CollectorRegistry()
    with OtlpReceiver() as receiver:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_endpoint)))
        meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=receiver.metrics_endpoint), export_interval_millis=60_000)])
        m = meter.Meter(registry=registry, tracer_provider=tracer_provider, meter_provider=meter_provider,
                        ledger=tmp_path / "l.sqlite", on_record=records.append)
        client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(refused), meter=m))
        client.post("https://x.openai.azure.com/openai/v1/chat/completions", json={"messages": []})
        assert m.close()
        tracer_provider.force_flush()
        meter_provider.force_flush()
        (span,) = receiver.wait_for_spans(1)
        points = receiver.wait_for_metric(names.METRIC_OPERATION_DURATION) and metric_points(receiver.metrics,
                                                                                   names.METRIC_OPERATION_DURATION)
        tracer_provider.shutdown()
        meter_provider.shutdown()
    (record,) = records
    assert record.response_model is None and record.deployment is None
    assert (record.model_label, record.deployment_label) == ("unknown", "unknown")
    assert span.attributes[names.RESPONSE_MODEL] == "unknown" and span.attributes[names.DEPLOYMENT] == "unknown"
    assert points and all(p.attributes[names.RESPONSE_MODEL] == "unknown" for p in points)
    assert all(p.attributes[names.REQUEST_MODEL] == "unknown" for p in points)
    from prometheus_client import generate_latest

    text = generate_latest(registry).decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == names.requests_total(names.DEFAULT_NAMESPACE)]
    assert samples and all(s.labels["model"] == "unknown" and s.labels["deployment"] == "unknown" for s in samples)
    assert 'model=""' not in text and 'deployment=""' not in text
    assert [r.group for r in report(tmp_path / "l.sqlite", ("deployment", "model"))] == [("unknown", "unknown")]
