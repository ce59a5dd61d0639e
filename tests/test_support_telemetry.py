"""Self-tests for the telemetry test support: the OTLP receiver and the Prometheus/promtool helpers.

They drive the helpers with the real producers (the OTel SDK's OTLP/HTTP exporters, prometheus-client's
HTTP server) so that a later failing meter test can be trusted to be meter's fault, not the harness'.
"""

from __future__ import annotations

import gzip
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_http_server

from tests.support import prometheus as prom_support
from tests.support.otlp_receiver import OtlpReceiver, ReceivedMetric, ReceivedPoint, metric_points
from tests.support.prometheus import (
    PrometheusServer,
    PromQLError,
    free_port,
    promtool_check_config,
    promtool_check_metrics,
    promtool_check_rules,
    promtool_test_rules,
    require_prometheus,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
HIST_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _output(result: Any) -> str:
    return f"rc={result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


# --------------------------------------------------------------------------- OTLP receiver


@pytest.fixture
def rx() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def _tracer_provider(endpoint: str, compression: Compression | None = None) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "meter-selftest"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, compression=compression)))
    return provider


def test_receiver_endpoints_are_loopback(rx: OtlpReceiver) -> None:
    assert rx.endpoint.startswith("http://127.0.0.1:")
    assert rx.traces_endpoint == rx.endpoint + "/v1/traces"
    assert rx.metrics_endpoint == rx.endpoint + "/v1/metrics"


def test_receiver_decodes_spans_with_parentage_attributes_events_status(rx: OtlpReceiver) -> None:
    provider = _tracer_provider(rx.traces_endpoint)
    tracer = provider.get_tracer("meter.selftest", "9.9.9")
    try:
        with tracer.start_as_current_span("parent") as parent:
            with tracer.start_as_current_span(
                "chat gpt-4o",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "server.port": 443,
                    "gen_ai.request.temperature": 0.25,
                    "gen_ai.request.stream": True,
                    "gen_ai.response.finish_reasons": ["stop", "length"],
                },
            ) as child:
                child.add_event("gen_ai.client.operation.exception", {"error.type": "RateLimitError", "attempt": 2})
                child.set_status(Status(StatusCode.ERROR, "429 Too Many Requests"))
    finally:
        provider.shutdown()

    spans = rx.wait_for_spans(2)
    by_name = {s.name: s for s in spans}
    p, c = by_name["parent"], by_name["chat gpt-4o"]
    parent_ctx = parent.get_span_context()

    assert p.trace_id == f"{parent_ctx.trace_id:032x}" and len(p.trace_id) == 32
    assert p.span_id == f"{parent_ctx.span_id:016x}" and len(p.span_id) == 16
    assert p.parent_span_id is None
    assert p.kind == "INTERNAL" and p.status_code == "UNSET"
    assert c.trace_id == p.trace_id
    assert c.parent_span_id == p.span_id
    assert c.kind == "CLIENT"
    assert c.status_code == "ERROR" and c.status_message == "429 Too Many Requests"
    assert c.attributes == {
        "gen_ai.operation.name": "chat",
        "server.port": 443,
        "gen_ai.request.temperature": 0.25,
        "gen_ai.request.stream": True,
        "gen_ai.response.finish_reasons": ["stop", "length"],
    }
    assert isinstance(c.attributes["server.port"], int) and isinstance(c.attributes["gen_ai.request.stream"], bool)
    assert len(c.events) == 1
    assert c.events[0].name == "gen_ai.client.operation.exception"
    assert c.events[0].attributes == {"error.type": "RateLimitError", "attempt": 2}
    assert c.start_ns <= c.events[0].time_ns <= c.end_ns
    assert p.start_ns <= c.start_ns <= c.end_ns <= p.end_ns and c.duration_s >= 0
    assert c.resource["service.name"] == "meter-selftest"
    assert c.scope == "meter.selftest" and c.scope_version == "9.9.9"
    assert rx.spans_named("parent") == [p]


def test_receiver_handles_gzip_and_keeps_decompressed_raw_bodies(rx: OtlpReceiver) -> None:
    provider = _tracer_provider(rx.traces_endpoint, Compression.Gzip)
    try:
        with provider.get_tracer("t").start_as_current_span("s", attributes={"needle": "visible-needle-123"}):
            pass
    finally:
        provider.shutdown()
    [span] = rx.wait_for_spans(1)
    assert span.attributes == {"needle": "visible-needle-123"}
    assert any(r.headers.get("content-encoding") == "gzip" for r in rx.requests)
    assert b"visible-needle-123" in b"".join(rx.raw_bodies)  # what "secret never appears" checks rely on
    rx.clear()
    assert rx.spans == [] and rx.raw_bodies == [] and rx.requests == []


def test_receiver_wait_for_spans_times_out_with_an_assertion(rx: OtlpReceiver) -> None:
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="1 spans"):
        rx.wait_for_spans(1, timeout=0.2)
    assert time.monotonic() - t0 < 2


def test_receiver_decodes_histogram_and_counter_and_keeps_latest_cumulative_export(rx: OtlpReceiver) -> None:
    tracer_provider = _tracer_provider(rx.traces_endpoint)
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=rx.metrics_endpoint), export_interval_millis=3_600_000
    )
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "meter-selftest"}))
    meter = provider.get_meter("meter.selftest")
    hist = meter.create_histogram(
        "gen_ai.client.token.usage",
        unit="{token}",
        description="tokens",
        explicit_bucket_boundaries_advisory=[1.0, 4.0, 16.0],
    )
    counter = meter.create_counter("meter.requests", unit="{request}", description="requests")
    attrs = {"gen_ai.token.type": "input"}
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("sampled") as span:
            hist.record(0.5, attrs)
            hist.record(3, attrs)
        hist.record(20, attrs)
        counter.add(2, {"deployment": "d1"})
        counter.add(3, {"deployment": "d1"})
        assert provider.force_flush()

        [hp] = rx.wait_for_metric("gen_ai.client.token.usage")
        [h] = [m for m in rx.metrics if m.name == "gen_ai.client.token.usage"]
        assert (h.kind, h.unit, h.description, h.temporality) == ("histogram", "{token}", "tokens", "CUMULATIVE")
        assert h.resource["service.name"] == "meter-selftest" and h.scope == "meter.selftest"
        assert hp.attributes == attrs
        assert hp.explicit_bounds == [1.0, 4.0, 16.0]
        assert hp.bucket_counts == [1, 1, 0, 1]
        assert hp.count == 3 and hp.sum == pytest.approx(23.5)
        assert (hp.min, hp.max) == (0.5, 20)
        span_ctx = span.get_span_context()
        sampled_exemplars = [e for e in hp.exemplars if e["trace_id"] is not None]
        assert sampled_exemplars, hp.exemplars  # default trace-based exemplar filter: only in-span records
        assert {e["trace_id"] for e in sampled_exemplars} == {f"{span_ctx.trace_id:032x}"}
        assert {e["span_id"] for e in sampled_exemplars} == {f"{span_ctx.span_id:016x}"}
        assert {e["value"] for e in sampled_exemplars} <= {0.5, 3.0}

        [cp] = rx.points("meter.requests")
        [c] = [m for m in rx.metrics if m.name == "meter.requests"]
        assert (c.kind, c.is_monotonic, c.temporality) == ("sum", True, "CUMULATIVE")
        assert cp.attributes == {"deployment": "d1"} and cp.value == 5

        # A second export repeats the running totals; metric_points must pick it, not add both.
        counter.add(10, {"deployment": "d1"})
        assert provider.force_flush()
        rx.wait_for(lambda: len([m for m in rx.metrics if m.name == "meter.requests"]) >= 2)
        assert [p.value for p in metric_points(rx.metrics, "meter.requests")] == [15]
        assert metric_points(rx.metrics, "no.such.metric") == []
    finally:
        provider.shutdown()
        tracer_provider.shutdown()


def test_metric_points_picks_latest_export_and_joins_scopes() -> None:
    def metric(export: int, value: int, scope: str = "s") -> ReceivedMetric:
        return ReceivedMetric("m", "", "", "sum", [ReceivedPoint({}, value=value)], scope=scope, export=export)

    metrics = [metric(0, 1), metric(1, 2), metric(1, 7, scope="other"), metric(0, 100, scope="other")]
    assert [p.value for p in metric_points(metrics, "m")] == [2, 7]


def test_receiver_rejects_bad_requests_but_keeps_serving(rx: OtlpReceiver) -> None:
    with httpx2.Client(trust_env=False) as client:
        protobuf = {"Content-Type": "application/x-protobuf"}
        assert (
            client.post(rx.traces_endpoint, content=b"{}", headers={"Content-Type": "application/json"}).status_code
            == 415
        )
        assert client.post(rx.endpoint + "/v1/nope", content=b"", headers=protobuf).status_code == 404
        assert client.post(rx.traces_endpoint, content=b"\xff\xff\xff", headers=protobuf).status_code == 400
        ok = client.post(
            rx.traces_endpoint, content=gzip.compress(b""), headers={**protobuf, "Content-Encoding": "gzip"}
        )
        assert ok.status_code == 200 and ok.headers["content-type"] == "application/x-protobuf"
        rx.fail_with = 503
        assert client.post(rx.metrics_endpoint, content=b"", headers=protobuf).status_code == 503
    assert len(rx.raw_bodies) == 5 and rx.spans == []


# --------------------------------------------------------------------------- Prometheus


@dataclass
class Scraped:
    prom: PrometheusServer
    exporter_target: str
    registry: CollectorRegistry
    started: float


@pytest.fixture(scope="module")
def scraped() -> Iterator[Scraped]:
    """One prometheus-client exporter and one Prometheus scraping it, shared by the server tests (~3 s)."""
    require_prometheus()
    registry = CollectorRegistry()
    requests = Counter("meter_selftest_requests", "Requests metered.", ["deployment"], registry=registry)
    latency = Histogram(
        "meter_selftest_duration_seconds", "Call duration.", ["deployment"], buckets=(0.1, 1, 10), registry=registry
    )
    requests.labels("d1").inc(3, exemplar={"trace_id": TRACE_ID})
    latency.labels("d1").observe(0.4, exemplar={"trace_id": HIST_TRACE_ID})
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    started = time.time()
    try:
        with PrometheusServer([f"127.0.0.1:{port}"]) as prom:
            prom.wait_for_scrapes(2)
            yield Scraped(prom, f"127.0.0.1:{port}", registry, started)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_prometheus_scrapes_counter_value(scraped: Scraped) -> None:
    prom = scraped.prom
    assert prom.url.startswith("http://127.0.0.1:") and prom.running
    [target] = prom.targets()
    assert target["health"] == "up" and target["labels"]["job"] == "meter"
    assert target["labels"]["instance"] == scraped.exporter_target
    [series] = prom.query('meter_selftest_requests_total{deployment="d1"}')
    assert series["metric"]["job"] == "meter" and float(series["value"][1]) == 3.0
    assert prom.value("sum(meter_selftest_requests_total)") == 3.0
    assert prom.value("histogram_quantile(0.5, sum by (le) (meter_selftest_duration_seconds_bucket))") == pytest.approx(
        0.55
    )
    assert prom.value("absent_metric_xyz") is None
    assert prom.query("1 + 1")[0]["value"][1] == "2"
    rows = prom.query_range("meter_selftest_requests_total", scraped.started - 5, time.time(), step="1s")
    assert rows and all(float(v) == 3.0 for _, v in rows[0]["values"])
    prom.wait_until("count(up == 1)", lambda r: bool(r) and r[0]["value"][1] == "1", timeout=5)


def test_prometheus_stores_exemplars_with_trace_ids(scraped: Scraped) -> None:
    start, end = scraped.started - 60, time.time() + 60
    counter = scraped.prom.query_exemplars("meter_selftest_requests_total", start, end)
    assert {e["labels"]["trace_id"] for group in counter for e in group["exemplars"]} == {TRACE_ID}
    assert float(counter[0]["exemplars"][0]["value"]) == 3.0
    hist = scraped.prom.query_exemplars("meter_selftest_duration_seconds_bucket", start, end)
    assert {e["labels"]["trace_id"] for group in hist for e in group["exemplars"]} == {HIST_TRACE_ID}
    assert {group["seriesLabels"]["le"] for group in hist} == {"1.0"}


def test_prometheus_query_errors_raise_promql_error(scraped: Scraped) -> None:
    with pytest.raises(PromQLError) as info:
        scraped.prom.query("sum(rate(meter_selftest_requests_total[$__rate_interval]))")
    assert "$__rate_interval" in info.value.expr and "bad_data" in info.value.error


def test_prometheus_wait_until_times_out(scraped: Scraped) -> None:
    with pytest.raises(AssertionError, match="did not satisfy"):
        scraped.prom.wait_until("vector(0)", lambda r: r[0]["value"][1] == "1", timeout=0.3)


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    require_prometheus()
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    server = PrometheusServer(["127.0.0.1:9"], rule_files=[rules], tmp=tmp_path, extra_config={"global": {"x": 1}})
    config = server.config()
    assert config["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s", "x": 1}
    assert config["storage"]["exemplars"]["max_exemplars"] == 100000
    server.extra_config = {}
    result = promtool_check_config(server.write_config())
    assert result.returncode == 0, _output(result)


def test_prometheus_start_failure_reports_log_and_leaves_nothing_running(tmp_path: Path) -> None:
    require_prometheus()
    server = PrometheusServer(["127.0.0.1:9"], tmp=tmp_path, extra_config={"global": {"scrape_interval": "nonsense"}})
    with pytest.raises(RuntimeError, match="prometheus exited"):
        server.start()
    assert not server.running
    server.stop()


# --------------------------------------------------------------------------- promtool


def test_promtool_check_metrics_passes_prometheus_client_text(scraped: Scraped) -> None:
    result = promtool_check_metrics(generate_latest(scraped.registry).decode())
    assert result.returncode == 0, _output(result)


def test_promtool_check_metrics_flags_counter_without_total() -> None:
    require_prometheus()
    result = promtool_check_metrics("# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n")
    assert result.returncode == 3, _output(result)
    assert '"_total" suffix' in result.stdout + result.stderr


RULES = textwrap.dedent(
    """\
    groups:
      - name: meter-spend
        rules:
          - alert: SpendFastBurn
            expr: |
              (sum by (deployment) (rate(meter_cost_usd_total[1h]))
                > on (deployment) group_left() (14.4 * meter_budget_usd / (30*86400)))
              and
              (sum by (deployment) (rate(meter_cost_usd_total[5m]))
                > on (deployment) group_left() (14.4 * meter_budget_usd / (30*86400)))
            for: 2m
            labels:
              severity: page
    """
)

RULE_TEST = textwrap.dedent(
    """\
    rule_files: [rules.yml]
    evaluation_interval: 1m
    tests:
      - interval: 1m
        input_series:
          - series: 'meter_cost_usd_total{deployment="d1"}'
            values: '0+10x120'
          - series: 'meter_budget_usd{deployment="d1"}'
            values: '1000x120'
          - series: 'meter_cost_usd_total{deployment="d2"}'
            values: '0+10x120'
          - series: 'meter_budget_usd{deployment="d2"}'
            values: '1000000000x120'
        alert_rule_test:
          - eval_time: 90m
            alertname: SpendFastBurn
            exp_alerts: [{exp_labels: {severity: page, deployment: d1}}]
        promql_expr_test:
          - expr: meter_cost_usd_total{deployment="d1"}
            eval_time: 90m
            exp_samples: [{labels: 'meter_cost_usd_total{deployment="d1"}', value: %s}]
    """
)


def test_promtool_check_and_test_rules(tmp_path: Path) -> None:
    require_prometheus()
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    checked = promtool_check_rules(rules)
    assert checked.returncode == 0, _output(checked)

    passing = tmp_path / "rules_test.yml"
    passing.write_text(RULE_TEST % 900)
    result = promtool_test_rules(passing)
    assert result.returncode == 0, _output(result)

    failing = tmp_path / "rules_test_wrong.yml"
    failing.write_text(RULE_TEST % 901)
    result = promtool_test_rules(failing)
    assert result.returncode != 0, _output(result)
    assert "FAILED" in result.stderr and "9.01E+02" in result.stderr


def test_promtool_check_rules_rejects_grafana_macros(tmp_path: Path) -> None:
    require_prometheus()
    rules = tmp_path / "bad.yml"
    rules.write_text(RULES.replace("[5m]", "[$__rate_interval]"))
    result = promtool_check_rules(rules)
    assert result.returncode != 0, _output(result)


def test_require_prometheus_skips_locally_and_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prom_support, "PROMETHEUS", None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="prometheus not found"):
        require_prometheus()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_prometheus()
