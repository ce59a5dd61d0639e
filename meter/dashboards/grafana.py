"""Grafana dashboard JSON from plain panel descriptions: panels, targets, layout, variables.

The dashboards themselves (Cost, Tokens, Latency, Errors and limits) are in ``meter.dashboards.boards``;
this module only knows how Grafana wants them written. Provisioning-ready: no ``__inputs`` and no
dashboard ``id``; a ``DS_PROMETHEUS`` datasource variable that every panel and target references;
fixed ``uid``s; variables ``deployment``, ``model`` and ``team`` (multi-select, "All" = ``.*`` so
series with an empty or missing label still match).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meter.dashboards.queries import Queries

SCHEMA_VERSION = 39
"""Grafana 10.3/11.x; newer Grafana migrates it upward on load."""

DS_VARIABLE = "DS_PROMETHEUS"
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${" + DS_VARIABLE + "}"}
TAGS = ["meter", "llm"]

Json = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """One query of a panel. ``instant`` for stat/bar panels; ``exemplar`` only on range queries."""

    expr: str
    legend: str = ""
    instant: bool = False
    exemplar: bool = False
    heatmap: bool = False


@dataclass
class Panel:
    """A panel before layout: its kind, title, queries, unit and width (height comes from the kind)."""

    kind: str
    title: str
    targets: Sequence[Target]
    unit: str = "short"
    width: int = 12
    description: str = ""
    decimals: int | None = None
    stack: bool = False
    options: Json = field(default_factory=dict)
    mappings: Sequence[Json] = ()
    """Grafana value mappings (``{"type": "value", "options": {"-1": {"text": "unknown", "index": 0}}}``)."""


HEIGHTS = {"stat": 4, "bargauge": 7, "timeseries": 8, "heatmap": 8}


def stat(title: str, expr: str, unit: str, description: str, *, width: int = 4, decimals: int | None = None) -> Panel:
    return Panel("stat", title, [Target(expr, instant=True)], unit, width, description, decimals)


def bars(title: str, targets: Sequence[Target], unit: str, description: str, *, width: int = 6,
         decimals: int | None = None, mappings: Sequence[Json] = (), lowest_first: bool = False) -> Panel:
    """A bar gauge, one bar per series in the order Prometheus returns them: ``sort_desc`` (the largest first), or
    ``sort`` with ``lowest_first`` (Grafana draws a bar gauge's values in the query's order)."""
    order = "sort" if lowest_first else "sort_desc"
    return Panel("bargauge", title, [Target(f"{order}({t.expr})", t.legend, instant=True) for t in targets], unit,
                 width, description, decimals, mappings=mappings)


def series(title: str, targets: Sequence[Target], unit: str, description: str, *, width: int = 12,
           stack: bool = False) -> Panel:
    return Panel("timeseries", title, targets, unit, width, description, stack=stack)


def heatmap(title: str, expr: str, unit: str, description: str, *, width: int = 12) -> Panel:
    return Panel("heatmap", title, [Target(expr, "{{le}}", heatmap=True)], unit, width, description)


def _target_json(target: Target, ref: str) -> Json:
    out: Json = {
        "refId": ref,
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "expr": target.expr,
        "legendFormat": target.legend or "__auto",
        "range": not target.instant,
        "instant": target.instant,
    }
    if target.exemplar:
        out["exemplar"] = True
    if target.heatmap:
        out["format"] = "heatmap"
    return out


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> Json:
    height = HEIGHTS[panel.kind]
    defaults: Json = {"unit": panel.unit, "color": {"mode": "palette-classic"},
                      "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]}}
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    if panel.mappings:
        defaults["mappings"] = [dict(m) for m in panel.mappings]
    options: Json
    if panel.kind == "stat":
        defaults["color"] = {"mode": "thresholds"}
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "colorMode": "value", "graphMode": "none", "justifyMode": "auto", "orientation": "auto",
                   "textMode": "auto"}
    elif panel.kind == "bargauge":
        defaults["min"] = 0
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True,
                   "valueMode": "color", "namePlacement": "auto", "sizing": "auto"}
    elif panel.kind == "heatmap":
        defaults = {"custom": {"scaleDistribution": {"type": "linear"}}}
        options = {"calculate": False, "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges"},
                   "yAxis": {"axisPlacement": "left", "unit": panel.unit},
                   "exemplars": {"color": "rgba(255,0,255,0.7)"},
                   "tooltip": {"mode": "single", "yHistogram": False}, "legend": {"show": True}}
    else:
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                              "spanNulls": False,
                              "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"}}
        options = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                              "calcs": ["mean", "max", "lastNotNull"]},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
    options.update(panel.options)
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(DATASOURCE),
        "gridPos": {"h": height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [_target_json(t, chr(ord("A") + i)) for i, t in enumerate(panel.targets)],
    }


def layout(rows: Sequence[Sequence[Panel]]) -> list[Json]:
    """Place rows of panels on Grafana's 24-column grid, top to bottom, left to right."""
    out: list[Json] = []
    y = 0
    for row in rows:
        x = 0
        if sum(p.width for p in row) > 24:
            raise ValueError(f"row wider than 24 columns: {[p.title for p in row]}")
        for panel in row:
            out.append(_panel_json(panel, len(out) + 1, x, y))
            x += panel.width
        y += max(HEIGHTS[p.kind] for p in row)
    return out


def _query_variable(name: str, label: str, metric_selector: str) -> Json:
    definition = f"label_values({metric_selector}, {name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": dict(DATASOURCE),
        "definition": definition,
        "query": {"query": definition, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": 0,
    }


def variables(q: Queries) -> list[Json]:
    """``DS_PROMETHEUS`` then ``deployment``, ``model`` (by deployment), one per attribution label (by both)."""
    return [
        {"name": DS_VARIABLE, "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1, "regex": ""},
        _query_variable("deployment", "Deployment", q.REQUESTS),
        _query_variable("model", "Model", q.sel(q.REQUESTS, filters=q.DEPLOYMENT_FILTER)),
        *(_query_variable(key, key.replace("_", " ").capitalize(), q.sel(q.REQUESTS, filters=q.FILTER[:2]))
          for key in q.label_keys),
    ]


def select_datasource(dash: Json, uid: str) -> None:
    """Make ``uid`` the datasource the dashboard's ``DS_PROMETHEUS`` variable starts on."""
    for variable in dash["templating"]["list"]:
        if variable["name"] == DS_VARIABLE:
            variable["current"] = {"selected": True, "text": uid, "value": uid}


def dashboard(q: Queries, uid: str, title: str, description: str, rows: Sequence[Sequence[Panel]]) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [{"title": "meter dashboards", "type": "dashboards", "tags": ["meter"], "asDropdown": True,
                   "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "templating": {"list": variables(q)},
        "panels": layout(rows),
    }


def panel_exprs(dash: Json) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel."""
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]


def variable_queries(dash: Json) -> list[tuple[str, str]]:
    """(variable name, ``label_values(...)`` definition) for every query variable."""
    return [(v["name"], v["definition"]) for v in dash["templating"]["list"] if v["type"] == "query"]
