"""Prometheus metrics from a real workload: scraped over HTTP, linted by promtool, summed against records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import meter
from meter import names
from tests.support.prometheus import promtool_check_metrics, require_prometheus
from tests.support.replay import ReplayServer
from tests.telemetry.workload import KEY, run_workload, serve_workload


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as srv:
        serve_workload(srv)
        yield srv


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name].append((sample.labels, sample.value))
    return out


def total(s: dict[str, list[tuple[dict[str, str], float]]], name: str, **match: str) -> float:
    return sum(v for labels, v in s.get(name, []) if all(labels.get(k) == want for k, want in match.items()))


@pytest.fixture
def workload(server: ReplayServer) -> tuple[CollectorRegistry, list[meter.CallRecord], meter.Meter]:
    registry = CollectorRegistry()
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, registry=registry, label_keys=("team",),
                    tracer_provider=TracerProvider())
    run_workload(server, m)
    return registry, records, m


def test_counters_equal_the_records(workload: tuple[CollectorRegistry, list[meter.CallRecord], meter.Meter]) -> None:
    registry, records, _ = workload
    port_server, _thread = meter.start_metrics_server(0, registry=registry)
    try:
        text = httpx2.get(f"http://127.0.0.1:{port_server.server_port}/metrics").text
    finally:
        port_server.shutdown()
    s = samples(text)
    ns = "llm"
    assert total(s, names.requests_total(ns)) == len(records)
    assert len([r for r in records if r.outcome == "ok"]) == 8  # + one 429 (and any attempt the SDK retried)
    for team in ("search", "ads"):
        mine = [r for r in records if r.attributes.get("team") == team]
        exact = [r for r in mine if r.usage_source != "estimated"]  # estimates have counters of their own
        used = [r.usage for r in exact if r.usage is not None]
        assert total(s, names.requests_total(ns), team=team) == len(mine)
        assert total(s, names.input_tokens_total(ns), team=team) == sum(u.input_tokens for u in used)
        assert total(s, names.cached_input_tokens_total(ns), team=team) == sum(u.cached_input_tokens for u in used)
        assert total(s, names.output_tokens_total(ns), team=team) == sum(u.output_tokens for u in used)
        assert total(s, names.reasoning_output_tokens_total(ns), team=team) == sum(
            u.reasoning_output_tokens for u in used)
        cost = sum(float(r.cost.total) for r in exact if r.cost is not None and r.cost.total is not None)
        assert total(s, names.cost_usd_total(ns), team=team) == pytest.approx(cost, rel=1e-12, abs=1e-15)
        assert cost > 0
    assert total(s, names.requests_total(ns), outcome="http_error", error_type="429") == 1
    assert total(s, names.estimated_requests_total(ns)) == 1
    (estimate,) = [r for r in records if r.usage_source == "estimated"]
    assert estimate.usage is not None and estimate.cost is not None and estimate.cost.total is not None
    assert total(s, names.estimated_input_tokens_total(ns)) == estimate.usage.input_tokens
    assert total(s, names.estimated_output_tokens_total(ns)) == estimate.usage.output_tokens > 0
    assert total(s, names.estimated_cost_usd_total(ns)) == pytest.approx(float(estimate.cost.total))
    assert total(s, names.request_duration_seconds(ns) + "_count") == len(records)
    streams = [r for r in records if r.time_to_first_token_s is not None]
    assert total(s, names.time_to_first_token_seconds(ns) + "_count") == len(streams) >= 3
    # Azure's -1 (Responses API) leaves the gauge alone; real values are set.
    assert total(s, names.ratelimit_remaining_tokens(ns), deployment="reasoner-prod") > 0
    assert not [v for _, v in s.get(names.ratelimit_limit_tokens(ns), []) if v < 0]


def test_promtool_accepts_the_exposition(
    workload: tuple[CollectorRegistry, list[meter.CallRecord], meter.Meter]
) -> None:
    require_prometheus()
    registry, _, _ = workload
    result = promtool_check_metrics(generate_latest(registry).decode())
    assert result.returncode == 0, result.stdout + result.stderr


def test_exemplars_carry_the_trace_ids(workload: tuple[CollectorRegistry, list[meter.CallRecord], meter.Meter]) -> None:
    registry, records, _ = workload
    app = meter.metrics_wsgi_app(registry)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": "",
               "HTTP_ACCEPT": "application/openmetrics-text; version=1.0.0", "wsgi.input": None}
    chunks: list[bytes] = []
    body = app(environ, lambda status, headers: chunks.append(b""))
    text = b"".join(body).decode()
    trace_ids = {r.trace_id for r in records}
    assert None not in trace_ids and len(trace_ids) == len(records)
    seen = {line.split('trace_id="', 1)[1][:32] for line in text.splitlines() if 'trace_id="' in line}
    assert seen and seen <= trace_ids
    cost_lines = [line for line in text.splitlines() if line.startswith("llm_cost_usd_total") and "# {" in line]
    assert cost_lines, "the cost counter carries exemplars"


def test_without_meter_spans_exemplars_carry_the_callers_trace() -> None:
    """``otel=False``: no span of meter's own, so the exemplar links to the caller's current span."""
    registry = CollectorRegistry()
    records: list[meter.CallRecord] = []
    m = meter.Meter(otel=False, registry=registry, on_record=records.append)

    def azure(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"id": "c1", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
                                          "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                                                                   "total_tokens": 5}})

    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    tracer = TracerProvider().get_tracer("the caller")
    with tracer.start_as_current_span("handler") as span:
        client.post("https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                    json={"messages": []})
    client.post("https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                json={"messages": []})
    m.flush()
    callers = format(span.get_span_context().trace_id, "032x")
    assert [r.trace_id for r in records] == [callers, None]
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

    text = openmetrics(registry).decode()
    assert f'trace_id="{callers}"' in text


def test_several_meters_share_one_registry(server: ReplayServer) -> None:
    registry = CollectorRegistry()
    seen: list[meter.CallRecord] = []
    a = meter.Meter(registry=registry, otel=False, on_record=seen.append)
    b = meter.Meter(registry=registry, otel=False, on_record=seen.append)
    run_workload(server, a)
    run_workload(server, b)
    s = samples(generate_latest(registry).decode())
    assert total(s, names.requests_total("llm")) == len(seen) >= 9 + 8  # the 429 is served once
    with pytest.raises(ValueError, match="attribution labels"):
        meter.Meter(registry=registry, label_keys=("team",))


def test_cardinality_guard_folds_into_other(server: ReplayServer) -> None:
    registry = CollectorRegistry()
    seen: list[meter.CallRecord] = []
    m = meter.Meter(registry=registry, otel=False, label_keys=("user",), max_label_values=2, on_record=seen.append)
    for user in ("u1", "u2", "u3", "u4"):
        with meter.attribute(user=user):
            run_workload(server, m)
    s = samples(generate_latest(registry).decode())
    users = {labels["user"] for labels, _ in s[names.requests_total("llm")]}
    assert users == {"u1", "u2", "other"}
    folded = len([r for r in seen if r.attributes["user"] in ("u3", "u4")])
    assert folded >= 16  # u3 and u4: 8 calls each
    assert total(s, names.label_overflow_total("llm"), label="user") == folded
    assert total(s, names.requests_total("llm"), user="other") == folded


def test_faults_are_counted(server: ReplayServer) -> None:
    registry = CollectorRegistry()

    def bad(record: meter.CallRecord) -> None:
        raise RuntimeError("subscriber bug")

    seen: list[meter.CallRecord] = []
    m = meter.Meter(registry=registry, otel=False, on_record=[bad, seen.append])
    run_workload(server, m)
    s = samples(generate_latest(registry).decode())
    assert total(s, names.metering_faults_total("llm"), kind="subscriber") == len(seen) >= 9


def test_namespace_is_configurable(server: ReplayServer) -> None:
    registry = CollectorRegistry()
    seen: list[meter.CallRecord] = []
    run_workload(server, meter.Meter(registry=registry, otel=False, namespace="acme_ai", on_record=seen.append))
    assert total(samples(generate_latest(registry).decode()), "acme_ai_requests_total") == len(seen) >= 9


WORKER = textwrap.dedent('''
    import sys
    sys.path.insert(0, {root!r})
    import meter
    from tests.support.replay import ReplayServer
    from tests.telemetry.workload import run_workload, serve_workload
    with ReplayServer() as srv:
        serve_workload(srv)
        m = meter.Meter(otel=False, label_keys=("team",))
        run_workload(srv, m)
    print("done")
''')


def test_multiprocess_workers(tmp_path: Path) -> None:
    """Three real worker processes write to PROMETHEUS_MULTIPROC_DIR; one aggregate sees them all."""
    mp_dir = tmp_path / "prom"
    mp_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)}
    root = str(Path(__file__).resolve().parents[2])
    procs = [subprocess.Popen([sys.executable, "-c", WORKER.format(root=root)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(mp_dir))
    text = generate_latest(registry).decode()
    s = samples(text)
    assert total(s, names.requests_total("llm"), outcome="ok") == 24  # 8 calls that succeed, per worker
    assert total(s, names.requests_total("llm"), team="ads", outcome="ok") == 12
    assert total(s, names.ratelimit_remaining_tokens("llm"), deployment="reasoner-prod") > 0
    for f in mp_dir.iterdir():  # the files workers left behind hold no secret
        assert KEY.encode() not in f.read_bytes()
    json.dumps(s)  # the aggregate is plain data


CREATED_SERIES = textwrap.dedent("""
    import httpx2, meter, prometheus_client
    from prometheus_client import CollectorRegistry, Counter, generate_latest
    registry = CollectorRegistry()
    m = meter.Meter(otel=False, registry=registry, price_book=False)
    Counter("theirs", "a metric of the application's own", registry=registry).inc()
    body = {"id": "c", "model": "m", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    client = httpx2.Client(transport=meter.MeteredTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, json=body)), meter=m))
    client.post("https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21", json={})
    print(generate_latest(registry).decode())
""")


@pytest.mark.parametrize("disabled", ["true", "false"])
def test_created_series_follow_prometheus_disable_created_series(disabled: str) -> None:
    """``PROMETHEUS_DISABLE_CREATED_SERIES=true`` drops ``_created`` from meter's families as from the client's."""
    done = subprocess.run([sys.executable, "-c", CREATED_SERIES], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PROMETHEUS_DISABLE_CREATED_SERIES": disabled})
    assert done.returncode == 0, done.stderr
    created = [line for line in done.stdout.splitlines() if "_created" in line and not line.startswith("#")]
    mine = [line for line in created if line.startswith(names.DEFAULT_NAMESPACE + "_")]
    if disabled == "true":
        assert created == []
    else:
        assert any(line.startswith("theirs_created") for line in created)
        assert any("_requests_created" in line for line in mine) and any("_bucket" not in line for line in mine)


def test_created_series_follow_disable_created_metrics() -> None:
    import prometheus_client

    registry = CollectorRegistry()
    m = meter.Meter(otel=False, registry=registry, price_book=False)
    body = {"id": "c", "model": "m", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    client = httpx2.Client(transport=meter.MeteredTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, json=body)), meter=m))
    client.post("https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21", json={})
    prometheus_client.disable_created_metrics()
    try:
        assert b"_created" not in generate_latest(registry)
    finally:
        prometheus_client.enable_created_metrics()
    assert b"_created" in generate_latest(registry)
