"""The generated files are current, well-formed for Grafana, and tied to meter.names."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meter import names
from meter.dashboards import alerts, boards, generate, grafana
from meter.dashboards.queries import DEFAULT as q
from tests.support.prometheus import promtool_check_rules, promtool_test_rules, require_prometheus

ROOT = generate.ROOT
REPO = ROOT.parent
DASHBOARDS = boards.all_dashboards()


def test_committed_files_equal_the_generator_output() -> None:
    assert generate.stale_files() == [], "run: python -m meter.dashboards.generate"
    result = subprocess.run([sys.executable, "-m", "meter.dashboards.generate", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_check_flags_a_stale_file(tmp_path: Path) -> None:
    generate.write(tmp_path)
    assert generate.stale_files(tmp_path) == []
    (tmp_path / "grafana" / "meter-cost.json").write_text("{}")
    assert generate.stale_files(tmp_path) == ["grafana/meter-cost.json"]
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1


@pytest.fixture
def renamed_cost_metric(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(names, "cost_usd_total", lambda ns: f"{ns}_spend_dollars_total")
    yield  # generate.render builds its Queries when called, from meter.names as they are then


@pytest.mark.usefixtures("renamed_cost_metric")
def test_a_metric_rename_in_meter_names_breaks_the_check() -> None:
    stale = set(generate.stale_files())
    assert {"grafana/meter-cost.json", "prometheus/alerts.yml", "prometheus/tests/alerts_test.yml"} <= stale
    assert "llm_spend_dollars_total" in generate.render()["grafana/meter-cost.json"]


def test_no_metric_name_is_hard_coded_in_the_generator() -> None:
    pattern = re.compile(rf"['\"]{re.escape(names.DEFAULT_NAMESPACE)}[_:]")
    for source in ROOT.glob("*.py"):
        assert not pattern.search(source.read_text()), f"{source.name} spells a metric name; use meter.names"


def _all_exprs() -> list[tuple[str, str]]:
    out = [(f"{d['uid']}: {title}", expr) for d in DASHBOARDS.values() for title, expr in grafana.panel_exprs(d)]
    out += [(f"alert {a.name}", a.expr) for a in alerts.alerts()]
    out += [(f"alert {a.name} signal", s) for a in alerts.alerts() for s in a.signals]
    return out


def test_every_expression_uses_only_meters_metrics() -> None:
    known = {*q.ALL_METRICS, q.MONTHLY_BUDGET}
    for where, expr in _all_exprs():
        used = q.metrics_in(expr)
        assert used, f"{where}: no metric in {expr}"
        assert used <= known, f"{where}: unknown {used - known}"


def test_every_expression_parses_with_promtool(tmp_path: Path) -> None:
    require_prometheus()
    rules = [{"record": f"check:expr_{i}", "expr": q.substitute_macros(expr)} for i, (_, expr) in
             enumerate(_all_exprs())]
    path = tmp_path / "exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}))
    result = promtool_check_rules(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any("$" in r["expr"] for r in rules), "a Grafana macro was left unsubstituted"


@pytest.mark.parametrize("file", sorted(DASHBOARDS))
def test_dashboard_is_provisioning_ready(file: str) -> None:
    dash: dict[str, Any] = json.loads((ROOT / "grafana" / file).read_text())
    assert "__inputs" not in dash and "id" not in dash
    assert dash["schemaVersion"] in (39, 40)
    assert 8 <= len(dash["uid"]) <= 40 and file == f"{dash['uid']}.json"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for name in ("deployment", "model", "team"):
        var = variables[name]
        assert var["includeAll"] and var["multi"] and var["allValue"] == ".*"
        assert var["definition"].startswith(f"label_values({q.REQUESTS}") and var["definition"].endswith(f", {name})")
    ds = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    titles = [p["title"] for p in dash["panels"]]
    assert len(titles) == len(set(titles)), "panel titles must be unique (the PNG values are keyed by title)"
    for panel in dash["panels"]:
        assert panel["datasource"] == ds and panel["targets"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        for target in panel["targets"]:
            assert target["datasource"] == ds
            assert "[5m]" not in target["expr"] and "[1m]" not in target["expr"]
            if "rate(" in target["expr"] and not target["instant"]:
                assert "$__rate_interval" in target["expr"] or "[1h]" in target["expr"], target["expr"]
            if target["instant"]:
                assert not target.get("exemplar"), "exemplars need range queries"
    # panels must not overlap
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        g = panel["gridPos"]
        box = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not box & cells, f"{panel['title']} overlaps another panel"
        cells |= box
    for name in ("deployment", "model", "team"):
        assert any(f'{name}=~"${name}"' in t["expr"] for p in dash["panels"] for t in p["targets"])


def test_the_dashboards_cover_the_issue() -> None:
    titles = {d["uid"]: {p["title"] for p in d["panels"]} for d in DASHBOARDS.values()}
    assert set(titles) == {"meter-cost", "meter-tokens", "meter-latency", "meter-errors"}
    assert {"Spend rate by deployment (USD/h)", "Spend rate by model (USD/h)", "Spend rate by team (USD/h)",
            "Spend rate by deployment type (USD/h)", "Cost per 1k requests", "Unpriced calls (range)",
            "Estimated calls (range)", "Spend by deployment (range)"} <= titles["meter-cost"]
    assert {"Input by deployment (tokens/s)", "Cached input by deployment (tokens/s)",
            "Output by deployment (tokens/s)", "Reasoning by deployment (tokens/s)",
            "Cache hit ratio by deployment"} <= titles["meter-tokens"]
    assert {"Request duration percentiles", "Time to first token percentiles"} <= titles["meter-latency"]
    assert {"Errors by type (calls/s)", "Error ratio by deployment", "429 throttling by deployment (calls/s)",
            "Rate-limit headroom: tokens", "Token headroom now", "Aborted streams by deployment (calls/s)"
            } <= titles["meter-errors"]
    latency = DASHBOARDS["meter-latency.json"]
    ranged = [t for p in latency["panels"] if p["type"] == "timeseries" for t in p["targets"]
              if "histogram_quantile" in t["expr"]]
    assert ranged and all(t.get("exemplar") is True for t in ranged)
    assert any(q.TTFT_BUCKET in t["expr"] for t in ranged) and any(q.DURATION_BUCKET in t["expr"] for t in ranged)


def test_alerts_file_lists_every_alert_with_a_firing_and_a_silent_case() -> None:
    doc = yaml.safe_load((ROOT / "prometheus" / "alerts.yml").read_text())
    rules = doc["groups"][0]["rules"]
    assert rules[0] == {"record": q.MONTHLY_BUDGET, "expr": "vector(1000)", "labels": {"currency": "USD"}}
    names_in_file = [r["alert"] for r in rules[1:]]
    assert names_in_file == [a.name for a in alerts.alerts()]
    assert {"LLMBudgetFastBurn", "LLMBudgetSlowBurn", "LLMErrorRatioHigh", "LLMThrottling",
            "LLMRateLimitTokenHeadroomLow", "LLMUnpricedCalls", "LLMMeteringFaults"} <= set(names_in_file)
    tests = yaml.safe_load((ROOT / "prometheus" / "tests" / "alerts_test.yml").read_text())
    cases = [c for t in tests["tests"] for c in t.get("alert_rule_test", [])]
    for name in names_in_file:
        assert any(c["alertname"] == name and c["exp_alerts"] for c in cases), f"{name}: no firing case"
        assert any(c["alertname"] == name and not c["exp_alerts"] for c in cases), f"{name}: no silent case"
    for rule in rules[1:]:
        assert rule["labels"]["severity"] in {"page", "ticket", "warning", "info"}
        assert rule["annotations"]["dashboard"].removeprefix("/d/") + ".json" in DASHBOARDS


def test_budget_is_a_generator_parameter(tmp_path: Path) -> None:
    assert generate.main(["--out", str(tmp_path), "--monthly-budget-usd", "250"]) == 0
    text = (tmp_path / "prometheus" / "alerts.yml").read_text()
    assert "expr: vector(250)" in text and "USD 250" in text
    assert generate.stale_files(tmp_path, alerts.Settings(monthly_budget_usd=250)) == []
    assert "prometheus/alerts.yml" in generate.stale_files(tmp_path)
    require_prometheus()  # the hand-written cases hold for any budget (spend is a multiple of the allowed rate)
    result = promtool_test_rules(tmp_path / "prometheus" / "tests" / "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
