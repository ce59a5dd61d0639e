"""``meter dashboards export`` for a custom namespace and attribution labels, proven against real parts.

The export runs as a user runs it (``python -m meter dashboards export`` in a fresh process);
promtool checks and unit-tests its rules; then a real Prometheus loads those rules and scrapes
``meter demo --serve --namespace acme_ai --label-keys team,feature``, and every panel query,
every variable and every alert signal of the export must return data from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meter.dashboards import alerts, boards, grafana
from meter.dashboards.queries import DEFAULT, Queries
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import read_json
from tests.support.prometheus import PrometheusServer, _promtool, free_port, require_prometheus

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "acme_ai"
KEYS = ("team", "feature")
Q = Queries(NAMESPACE, KEYS)
NEVER_INCREMENTED_BY_THE_DEMO = {Q.METERING_FAULTS, Q.LABEL_OVERFLOW}


def _export(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meter", "dashboards", "export", str(out), *extra],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "acme"
    done = _export(out, "--namespace", NAMESPACE, "--label-keys", ",".join(KEYS), "--monthly-budget-usd", "5000",
                   "--datasource-uid", "prom-acme")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return out


def test_the_export_has_every_file_for_the_namespace_and_labels(exported: Path) -> None:
    files = {str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file()}
    assert files == {"compose.yaml", "grafana/meter-cost.json", "grafana/meter-errors.json",
                     "grafana/meter-latency.json", "grafana/meter-tokens.json",
                     "grafana/provisioning/dashboards/dashboards.yml",
                     "grafana/provisioning/datasources/datasources.yml", "prometheus/alerts.yml",
                     "prometheus/prometheus.yml", "prometheus/prometheus-local.yml", "prometheus/tests/alerts_test.yml"}
    for path in exported.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "llm_" not in text and "llm:" not in text, f"{path.name} names the default namespace"
    cost = json.loads((exported / "grafana/meter-cost.json").read_text())
    variables = {v["name"]: v for v in cost["templating"]["list"]}
    assert set(variables) == {"DS_PROMETHEUS", "deployment", "model", "team", "feature"}
    assert variables["DS_PROMETHEUS"]["current"]["value"] == "prom-acme"
    sources = yaml.safe_load((exported / "grafana/provisioning/datasources/datasources.yml").read_text())
    assert sources["datasources"][0]["uid"] == "prom-acme"
    rules = yaml.safe_load((exported / "prometheus/alerts.yml").read_text())
    budget = next(r for g in rules["groups"] for r in g["rules"] if r.get("record") == Q.MONTHLY_BUDGET)
    assert "5000" in budget["expr"]
    compose = yaml.safe_load((exported / "compose.yaml").read_text())
    assert set(compose["services"]) == {"prometheus", "grafana", "jaeger"}  # no service built from a source tree


def test_the_exported_rules_pass_promtool(exported: Path) -> None:
    require_prometheus()
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "tests/alerts_test.yml"],
                 ["check", "config", "prometheus.yml"], ["check", "config", "prometheus-local.yml"]):
        done = _promtool(args, cwd=exported / "prometheus")
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_the_default_export_is_the_committed_dashboards(tmp_path: Path) -> None:
    """The committed dashboards/ are the generator's default output: an export with no options has the same boards."""
    assert _export(tmp_path).returncode == 0
    for name in boards.all_dashboards(DEFAULT):
        assert (tmp_path / "grafana" / name).read_text() == (REPO / "dashboards" / "grafana" / name).read_text()


@pytest.mark.parametrize(("args", "said"), [
    (["--namespace", "9lives"], "namespace '9lives' is not a Prometheus metric name prefix"),
    (["--label-keys", "team,deployment"], "label key 'deployment' clashes with a label meter's metrics already carry"),
    (["--label-keys", "team,team"], "label keys repeat"),
    (["--label-keys", "bad-key"], "label key 'bad-key' is not a Prometheus label name"),
    (["--monthly-budget-usd", "0"], "--monthly-budget-usd must be above 0"),
])
def test_bad_options_get_one_clear_line_and_write_nothing(tmp_path: Path, args: list[str], said: str) -> None:
    out = tmp_path / "out"
    done = _export(out, *args)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {said}" or done.stderr.startswith(f"error: {said}"), done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


# -- against a real Prometheus ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prom(exported: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    require_prometheus()
    port = free_port()
    tmp = tmp_path_factory.mktemp("prometheus-export")
    with OtlpReceiver() as receiver, PrometheusServer([f"127.0.0.1:{port}"], scrape_interval="1s",
                                                      rule_files=[exported / "prometheus" / "alerts.yml"],
                                                      tmp=tmp) as server:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "NO_PROXY": "127.0.0.1,localhost"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "meter", "demo", "--requests", "40", "--json", "--serve", "--metrics-port",
             str(port), "--seconds", "6", "--namespace", NAMESPACE, "--label-keys", ",".join(KEYS)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        try:
            summary = read_json(proc, timeout=120)
            server.wait_for_scrapes(3)
            server.wait_until(Q.totals_queries()["requests"],
                              lambda r: bool(r) and float(r[0]["value"][1]) == summary["totals"]["requests"])
            server.wait_until(Q.MONTHLY_BUDGET, bool)
            time.sleep(2)
            yield server
        finally:
            proc.terminate()
            proc.wait(15)


DASHBOARDS = boards.all_dashboards(Q)
PANEL_EXPRS = [(d["uid"], title, expr) for d in DASHBOARDS.values() for title, expr in grafana.panel_exprs(d)]
ALERTS = alerts.alerts(None, Q)


def _returns_data(prom: PrometheusServer, expr: str) -> list[dict[str, Any]]:
    result = prom.query(Q.substitute_macros(expr))
    if not result:
        used = Q.metrics_in(expr)
        assert used <= NEVER_INCREMENTED_BY_THE_DEMO, f"no data for {Q.substitute_macros(expr)}"
    return result


@pytest.mark.parametrize(("uid", "title", "expr"), PANEL_EXPRS, ids=[f"{u}:{t}" for u, t, _ in PANEL_EXPRS])
def test_every_exported_panel_query_returns_data(prom: PrometheusServer, uid: str, title: str, expr: str) -> None:
    _returns_data(prom, expr)


def test_every_exported_variable_has_values(prom: PrometheusServer) -> None:
    for name, definition in grafana.variable_queries(DASHBOARDS["meter-cost.json"]):
        selector = definition.removeprefix("label_values(").removesuffix(f", {name})")
        values = {r["metric"].get(name) for r in prom.query(Q.substitute_macros(f"count by ({name}) ({selector})"))}
        assert values - {None, ""}, f"variable {name}: no values from {definition}"


@pytest.mark.parametrize("alert", ALERTS, ids=[a.name for a in ALERTS])
def test_every_exported_alert_loads_and_its_signals_return_data(prom: PrometheusServer, alert: alerts.Alert) -> None:
    for signal_expr in alert.signals:
        _returns_data(prom, signal_expr)
    loaded = {r["name"]: r for g in prom.rules() for r in g["rules"]}
    assert loaded[alert.name]["health"] == "ok", loaded[alert.name].get("lastError")
