"""Every dashboard and alert query against a real Prometheus scraping a running `meter demo --serve`.

One module-scoped run: an OTLP receiver; Prometheus (1 s scrapes, the shipped alerts.yml loaded)
pointed at a port chosen up front; then the demo with ``--seconds`` of extra load while Prometheus
scrapes it, so rates are non-zero when the queries run. After the demo prints its ``--json`` totals
(it has stopped generating load by then) the test waits until Prometheus holds those final values.

The dashboard pictures are drawn from this run too (``python -m meter.dashboards.pictures`` makes the
committed ones from a longer one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meter.dashboards import alerts, boards, generate, grafana
from meter.dashboards.queries import DEFAULT as q
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import read_json
from tests.support.prometheus import PrometheusServer, free_port, require_prometheus

ROOT = generate.ROOT
REPO = ROOT.parent
LOAD_SECONDS = 8
NEVER_INCREMENTED_BY_THE_DEMO = {q.METERING_FAULTS, q.LABEL_OVERFLOW}
"""The demo has no metering faults and no label overflow: these families are exposed (HELP/TYPE) with no series."""

DASHBOARDS = boards.all_dashboards()
PANEL_EXPRS = [(d["uid"], title, expr) for d in DASHBOARDS.values() for title, expr in grafana.panel_exprs(d)]
ALERTS = alerts.alerts()


@dataclass
class Run:
    summary: dict[str, Any]
    prom: PrometheusServer
    trace_ids: set[str]
    started: float
    load_ended: float
    """When the demo printed its totals: its load had just stopped."""


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_prometheus()
    port = free_port()
    tmp = tmp_path_factory.mktemp("prometheus")
    with OtlpReceiver() as receiver, PrometheusServer([f"127.0.0.1:{port}"], scrape_interval="1s",
                                                      rule_files=[ROOT / "prometheus" / "alerts.yml"], tmp=tmp) as prom:
        started = time.time()
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "NO_PROXY": "127.0.0.1,localhost"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "meter", "demo", "--requests", "40", "--json", "--serve",
             "--metrics-port", str(port), "--seconds", str(LOAD_SECONDS)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        try:
            summary = read_json(proc, timeout=120)
            load_ended = time.time()
            assert summary["metrics_url"] == f"http://127.0.0.1:{port}/metrics"
            requests = summary["totals"]["requests"]
            prom.wait_for_scrapes(3)
            prom.wait_until(q.totals_queries()["requests"],
                            lambda r: bool(r) and float(r[0]["value"][1]) == requests)
            spans = receiver.wait_for_spans(requests, timeout=30)
            prom.wait_until(q.MONTHLY_BUDGET, bool)  # the rules have been evaluated
            time.sleep(2)  # two more scrapes: every series has >= 2 samples at its final value
            yield Run(summary, prom, {s.trace_id for s in spans}, started, load_ended)
        finally:
            _stop(proc)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def _query(run: Run, expr: str) -> list[dict[str, Any]]:
    return run.prom.query(q.substitute_macros(expr))


def _assert_returns_data(run: Run, expr: str) -> list[dict[str, Any]]:
    """Non-empty, or empty only because every metric it reads is one the demo never increments, and then
    Prometheus must still know the metric family from the scrape (so the name is right)."""
    result = _query(run, expr)  # raises PromQLError if it does not parse
    if result:
        return result
    used = q.metrics_in(expr)
    assert used <= NEVER_INCREMENTED_BY_THE_DEMO, f"no data for {q.substitute_macros(expr)}"
    for metric in used:
        family = metric.removesuffix("_total")
        meta = run.prom._api("/api/v1/metadata", family, {"metric": family})
        assert meta.get(family), f"Prometheus does not know {family}: the name in the query is wrong"
    return result


# -- totals ----------------------------------------------------------------------------------------------


def test_totals_equal_the_demo_json(run: Run) -> None:
    totals = run.summary["totals"]
    assert totals["requests"] >= 40
    for key, expr in q.totals_queries().items():
        value = run.prom.value(expr)
        assert value is not None, expr
        if key in ("cost_usd", "estimated_cost_usd"):
            assert value == pytest.approx(float(Decimal(totals[key])), rel=1e-9)
        else:
            assert value == totals[key], f"{key}: Prometheus {value}, demo {totals[key]}"
    assert totals["input_tokens"] > 0 and totals["cached_input_tokens"] > 0 and totals["reasoning_output_tokens"] > 0


def test_totals_per_deployment_and_team_equal_the_demo_json(run: Run) -> None:
    for label, key in (("deployment", "deployments"), ("team", "teams")):
        cost = {r["metric"][label]: float(r["value"][1]) for r in run.prom.query(f"sum by ({label}) ({q.COST_USD})")}
        out = {r["metric"][label]: float(r["value"][1])
               for r in run.prom.query(f"sum by ({label}) ({q.OUTPUT_TOKENS})")}
        for name, tally in run.summary[key].items():
            assert cost[name] == pytest.approx(float(Decimal(tally["cost_usd"])), rel=1e-9, abs=1e-12)
            assert out[name] == tally["output_tokens"]


# -- every query -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("uid", "title", "expr"), PANEL_EXPRS, ids=[f"{u}:{t}" for u, t, _ in PANEL_EXPRS])
def test_dashboard_query_returns_data(run: Run, uid: str, title: str, expr: str) -> None:
    _assert_returns_data(run, expr)


@pytest.mark.parametrize("file", sorted(DASHBOARDS))
def test_dashboard_variables_have_values(run: Run, file: str) -> None:
    for name, definition in grafana.variable_queries(DASHBOARDS[file]):
        selector = definition.removeprefix("label_values(").removesuffix(f", {name})")
        values = {r["metric"].get(name) for r in _query(run, f"count by ({name}) ({selector})")}
        assert values - {None, ""}, f"variable {name}: no values from {definition}"
    deployments = {r["metric"]["deployment"] for r in run.prom.query(f"count by (deployment) ({q.REQUESTS})")}
    assert deployments == set(run.summary["deployments"])


def test_the_filters_select_a_deployment(run: Run) -> None:
    panels = DASHBOARDS["meter-cost.json"]["panels"]
    spend = next(p["targets"][0]["expr"] for p in panels if p["title"] == "Spend by deployment (range)")
    result = run.prom.query(q.substitute_macros(spend, {**q.MACROS, "$deployment": "gpt-5"}))
    assert [r["metric"]["deployment"] for r in result] == ["gpt-5"]


@pytest.mark.parametrize("alert", ALERTS, ids=[a.name for a in ALERTS])
def test_alert_signals_return_data_and_the_rule_evaluates(run: Run, alert: alerts.Alert) -> None:
    for signal_expr in alert.signals:
        _assert_returns_data(run, signal_expr)
    run.prom.query(alert.expr)  # parses and evaluates (firing or not)
    loaded = {r["name"]: r for g in run.prom.rules() for r in g["rules"]}
    assert loaded[alert.name]["health"] == "ok", loaded[alert.name].get("lastError")


def test_the_demo_fires_no_alert_but_the_unpriced_calls_it_shows(run: Run) -> None:
    """A small demo spends far less than USD 1000 a month and has no faults; pending is fine, firing is not. The
    exceptions: a fee Azure publishes no price for (web search in the agent turn): its calls are unpriced,
    the demo's table says so, and LLMUnpricedCalls fires for those deployments and no other; and the demo's soft
    budget, ads-daily, whose thresholds its calls reach: LLMBudgetThresholdReached fires once per threshold
    reached, as the demo's summary lists them."""
    firing = [a for a in run.prom.alerts() if a["state"] == "firing"]
    budget = [a for a in firing if a["labels"]["alertname"] == "LLMBudgetThresholdReached"]
    firing = [a for a in firing if a not in budget]
    assert {a["labels"]["alertname"] for a in firing} <= {"LLMUnpricedCalls"}, firing
    unpriced = {name for name, tally in run.summary["deployments"].items() if tally["unpriced"]}
    assert {a["labels"]["deployment"] for a in firing} <= unpriced, (firing, unpriced)
    # and the demo's soft budget, which its ads team's calls take past its alert thresholds on purpose
    crossed = {b["name"]: b["alerts_fired"] for b in run.summary["budgets"]}
    assert {(a["labels"]["budget"], a["labels"]["threshold"]) for a in budget} == {
        (name, threshold) for name, fired in crossed.items() for threshold in fired}, (budget, crossed)
    assert budget and {a["labels"]["budget"] for a in budget} == {"ads-daily"}


# -- exemplars -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [q.COST_USD, q.DURATION_BUCKET, q.TTFT_BUCKET, q.REQUESTS])
def test_exemplars_carry_trace_ids_the_demo_exported(run: Run, metric: str) -> None:
    series = run.prom.query_exemplars(metric, run.started - 5, time.time() + 5)
    exemplars = [e for s in series for e in s["exemplars"]]
    assert exemplars, f"no exemplars for {metric}"
    assert {k for e in exemplars for k in e["labels"]} == {q.EXEMPLAR_TRACE_ID_LABEL}
    trace_ids = {e["labels"][q.EXEMPLAR_TRACE_ID_LABEL] for e in exemplars}
    assert trace_ids <= run.trace_ids, f"{len(trace_ids - run.trace_ids)} exemplar trace ids were never exported"


def test_latency_panels_exemplars_are_queryable(run: Run) -> None:
    exprs = [t["expr"] for p in DASHBOARDS["meter-latency.json"]["panels"] for t in p["targets"] if t.get("exemplar")]
    assert exprs
    for expr in exprs:
        series = run.prom.query_exemplars(q.substitute_macros(expr), run.started - 5, time.time() + 5)
        assert any(s["exemplars"] for s in series), expr


# -- pictures --------------------------------------------------------------------------------------------


def test_every_panel_is_drawn_with_data_from_the_real_run(run: Run, tmp_path: Path) -> None:
    """The pictures' renderer on this run's Prometheus: every panel drew data, no series without a name,
    the latency panels carry the exemplars Prometheus returned. (``python -m meter.dashboards.pictures`` makes
    the README's pictures the same way from a longer run.)"""
    if os.environ.get("CI") is None:
        pytest.importorskip("matplotlib")
    from meter.dashboards.render import render_dashboard

    end = run.load_ended + 1.5  # as the pictures do: rates still see the last seconds of load
    for file, dash in DASHBOARDS.items():
        out = tmp_path / file.replace(".json", ".png")
        drawn = render_dashboard(dash, run.prom, run.started, end, out, subtitle="test", scrape_interval_s=1.0)
        assert [d.title for d in drawn] == [p["title"] for p in dash["panels"]]
        assert [d.title for d in drawn if d.empty] == [], file
        assert all(name and name.strip() and "(empty)" not in name for d in drawn for name in d.series), file
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 60_000, file
        if file == "meter-latency.json":
            with_exemplars = [d.title for d in drawn if d.exemplars]
            assert {"Request duration percentiles", "Request duration p95 by deployment"} <= set(with_exemplars)
        kinds = {d.kind for d in drawn}
        assert kinds <= {"stat", "timeseries", "bargauge", "heatmap"}
    heat = next(d for d in render_dashboard(DASHBOARDS["meter-latency.json"], run.prom, run.started, end,
                                            tmp_path / "again.png", scrape_interval_s=1.0) if d.kind == "heatmap")
    assert heat.points > 0 and "+Inf" in heat.series


def test_the_tool_and_tier_panels_show_what_the_demo_did(run: Run) -> None:
    """The agent turn's web searches and code interpreter sessions show per tool (their counters' totals equal
    the demo's, ``test_totals_equal_the_demo_json``); the priority and flex calls are spend under GlobalPriority
    and GlobalFlex, the batch under GlobalBatch."""
    panels = {p["title"]: p for p in DASHBOARDS["meter-cost.json"]["panels"]}
    (by_tool,) = panels["Tool calls by tool (range)"]["targets"]
    tools = {r["metric"]["tool"]: float(r["value"][1]) for r in _query(run, by_tool["expr"])}
    assert tools["web search calls"] > 0 and tools["code interpreter sessions"] > 0, tools
    assert set(tools) <= {kind.replace("_", " ") for kind in q.TOOL_CALLS}
    assert run.summary["totals"]["web_search_calls"] > 0 and run.summary["totals"]["code_interpreter_sessions"] > 0
    (rate,) = panels["Built-in tool calls by tool (calls/s)"]["targets"]
    assert {r["metric"]["tool"] for r in _query(run, rate["expr"])} >= {"web search calls",
                                                                         "code interpreter sessions"}
    (spend,) = panels["Spend by deployment type (range)"]["targets"]
    types = {r["metric"]["deployment_type"] for r in _query(run, spend["expr"])}
    assert {"GlobalPriority", "GlobalFlex", "GlobalBatch", "GlobalStandard"} <= types, types
