"""Dashboard pictures: each panel drawn the way Grafana would, from the dashboard JSON and real Prometheus data.

For every panel at its ``gridPos`` (Grafana's 24-column grid, 30 px per height unit), its
targets' PromQL is evaluated against a Prometheus over a time range, with the macros Grafana
would use for it (``$__range`` the range, ``$__interval`` the step, ``$__rate_interval``
max(step + scrape interval, 4 x scrape interval)):

- ``timeseries``: ``query_range``, one line per series named by its ``legendFormat``, stacked
  when the panel stacks, in the panel's unit; targets with ``exemplar`` add the exemplars
  ``query_exemplars`` returns, as points;
- ``stat``: an instant query at the range's end, one number in the unit;
- ``bargauge``: an instant query, one bar per series;
- ``heatmap``: ``query_range`` of the cumulative buckets, turned into calls per bucket.

The drawing itself is ``meter.plotting`` (shared with ``meter report --plot``). Each picture
says it was rendered by meter from the dashboard JSON and real Prometheus data, not by Grafana.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from meter import plotting
from meter.dashboards.queries import DEFAULT, Queries

HEADER_IN = 1.15
UNIT_W_IN, UNIT_H_IN = 0.75, 0.32


class Source(Protocol):
    """The three Prometheus HTTP API queries the renderer uses (``tests.support.prometheus`` has them too)."""

    def query(self, expr: str, time: float | None = None) -> list[dict[str, Any]]: ...

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list[dict[str, Any]]: ...

    def query_exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]: ...


class PrometheusHTTP:
    """A ``Source`` over a Prometheus URL (standard library only)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{urllib.parse.urlencode(params)}", timeout=30) as r:
                payload = json.load(r)
        except urllib.error.HTTPError as exc:  # Prometheus says why in the body
            payload = json.loads(exc.read() or b"{}")
            raise RuntimeError(f"Prometheus: {payload.get('error', exc)} (query {params.get('query')!r})") from None
        if payload.get("status") != "success":
            raise RuntimeError(f"Prometheus: {payload.get('error', payload)}")
        return payload["data"]

    def query(self, expr: str, time: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr, **({"time": repr(time)} if time is not None else {})}
        data = self._get("/api/v1/query", params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list[dict[str, Any]]:
        return list(self._get("/api/v1/query_range", {"query": expr, "start": repr(start), "end": repr(end),
                                                      "step": step})["result"])

    def query_exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/query_exemplars", {"query": expr, "start": repr(start),
                                                          "end": repr(end)}) or [])


_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    """Grafana's ``legendFormat`` (``{{label}}``) on a series' labels; ``__auto`` or empty: the label set."""
    if not fmt or fmt == "__auto":
        inner = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
        return "{" + inner + "}" if inner else "value"
    return " ".join(_LEGEND.sub(lambda m: labels.get(m.group(1), ""), fmt).split())


def macros(start: float, end: float, scrape_interval_s: float, queries: Queries = DEFAULT) -> tuple[dict[str, str],
                                                                                                    int]:
    """The macro values Grafana would use for this range (at about 300 points a panel), and the step."""
    span = max(1.0, end - start)
    step = int(max(math.ceil(scrape_interval_s), math.ceil(span / 300)))
    rate_interval = max(step + scrape_interval_s, 4 * scrape_interval_s)
    table = {**queries.MACROS, "$__range": f"{int(span)}s", "$__interval": f"{int(step)}s",
             "$__rate_interval": f"{int(rate_interval)}s"}
    return table, step


def _times(values: list[list[Any]]) -> tuple[list[datetime], list[float]]:
    return ([datetime.fromtimestamp(float(t), UTC) for t, _ in values], [float(v) for _, v in values])


def _defaults(panel: Mapping[str, Any]) -> Mapping[str, Any]:
    defaults: Mapping[str, Any] = panel.get("fieldConfig", {}).get("defaults", {})
    return defaults


def _unit(panel: Mapping[str, Any]) -> str:
    return str(_defaults(panel).get("unit", "short"))


def _matches(exemplar_labels: Mapping[str, str], series_labels: Mapping[str, str]) -> bool:
    """Grafana's ``getExemplarColor``: the series' labels that the exemplar's series also has, all equal."""
    shared = [k for k in series_labels if k in exemplar_labels]
    return bool(shared) and all(exemplar_labels[k] == series_labels[k] for k in shared)


def draw_panel(ax: Any, panel: Mapping[str, Any], source: Source, start: float, end: float,
               scrape_interval_s: float, queries: Queries = DEFAULT,
               frame: plotting.Frame | None = None) -> plotting.Drawn:
    table, step = macros(start, end, scrape_interval_s, queries)
    unit = _unit(panel)
    decimals = _defaults(panel).get("decimals")
    mappings = _defaults(panel).get("mappings", [])
    kind = panel["type"]
    targets = panel["targets"]
    title = panel["title"]
    if kind == "stat":
        result = source.query(queries.substitute_macros(targets[0]["expr"], table), end)
        return plotting.stat(ax, title, float(result[0]["value"][1]) if result else None, unit, decimals, mappings)
    if kind == "bargauge":
        bars = [(legend(t.get("legendFormat", ""), r["metric"]), float(r["value"][1]))
                for t in targets for r in source.query(queries.substitute_macros(t["expr"], table), end)]
        return plotting.bargauge(ax, title, [b for b in bars if not math.isnan(b[1])], unit, decimals, mappings)
    if kind == "heatmap":
        result = source.query_range(queries.substitute_macros(targets[0]["expr"], table), start, end, f"{step}s")
        return _heatmap(ax, title, result, frame)
    series: list[plotting.Series] = []
    found: list[dict[str, Any]] = []
    for t in targets:
        expr = queries.substitute_macros(t["expr"], table)
        for r in source.query_range(expr, start, end, f"{step}s"):
            times, values = _times(r["values"])
            series.append(plotting.Series(legend(t.get("legendFormat", ""), r["metric"]), times, values,
                                          dict(r["metric"])))
        if t.get("exemplar"):
            found += source.query_exemplars(expr, start, end)
    stacking = _defaults(panel).get("custom", {}).get("stacking", {})
    series.sort(key=lambda s: s.name)
    exemplars: dict[tuple[float, float], plotting.Exemplar] = {}  # several targets read the same series: once each
    for group in found:
        labels = group.get("seriesLabels", {})
        owner = next((s.name for s in series if _matches(labels, s.labels)), None)
        for e in group.get("exemplars", []):
            at, value = float(e["timestamp"]), float(e["value"])
            exemplars.setdefault((at, value), plotting.Exemplar(datetime.fromtimestamp(at, UTC), value, owner))
    return plotting.timeseries(ax, title, series, unit, stacked=stacking.get("mode") == "normal",
                               exemplars=[exemplars[k] for k in sorted(exemplars)],
                               xlim=(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)),
                               frame=frame, decimals=decimals)


def _le(value: str) -> float:
    return math.inf if value == "+Inf" else float(value)


def _heatmap(ax: Any, title: str, result: list[dict[str, Any]], frame: plotting.Frame | None) -> plotting.Drawn:
    """Cumulative ``le`` buckets per step -> calls per bucket (the ``heatmap`` format Grafana applies)."""
    buckets = sorted(result, key=lambda r: _le(r["metric"].get("le", "+Inf")))
    if not buckets:
        return plotting.heatmap(ax, title, [], [], [], frame)
    stamps = sorted({float(t) for r in buckets for t, _ in r["values"]})
    index = {t: i for i, t in enumerate(stamps)}
    cumulative = []
    for r in buckets:
        row = [0.0] * len(stamps)
        for t, v in r["values"]:
            row[index[float(t)]] = max(0.0, float(v))
        cumulative.append(row)
    counts = [[max(0.0, c - (cumulative[i - 1][j] if i else 0.0)) for j, c in enumerate(row)]
              for i, row in enumerate(cumulative)]
    bounds = [plotting.format_value(_le(r["metric"].get("le", "+Inf")), "s") if r["metric"].get("le") != "+Inf"
              else "+Inf" for r in buckets]
    return plotting.heatmap(ax, title, [datetime.fromtimestamp(t, UTC) for t in stamps], bounds, counts, frame)


def render_dashboard(dashboard: Mapping[str, Any], source: Source, start: float, end: float, out: Path, *,
                     subtitle: str = "", scrape_interval_s: float = 15.0,
                     queries: Queries = DEFAULT) -> list[plotting.Drawn]:
    """Draw every panel of ``dashboard`` from ``source`` over ``start``..``end`` into the PNG ``out``."""
    from meter.extras import require

    require("plots", "meter.dashboards.render")
    plt = plotting.pyplot()
    from matplotlib.patches import Rectangle

    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    width, height = 24 * UNIT_W_IN, rows * UNIT_H_IN + HEADER_IN
    fig = plt.figure(figsize=(width, height), dpi=100, facecolor=plotting.BACKGROUND)
    fig.text(0.2 / width, 1 - 0.32 / height, dashboard["title"], color=plotting.TEXT, fontsize=17, fontweight="bold",
             va="center")
    fig.text(0.2 / width, 1 - 0.55 / height, subtitle, color=plotting.MUTED, fontsize=9.5, va="top",
             linespacing=1.5)
    drawn = []
    for panel in panels:
        g = panel["gridPos"]
        x0, y0 = g["x"] * UNIT_W_IN + 0.05, HEADER_IN + g["y"] * UNIT_H_IN + 0.05
        w, h = g["w"] * UNIT_W_IN - 0.1, g["h"] * UNIT_H_IN - 0.1
        frame = (x0 / width, 1 - (y0 + h) / height, w / width, h / height)
        fig.add_artist(Rectangle(frame[:2], frame[2], frame[3],
                                 transform=fig.transFigure, facecolor=plotting.PANEL, edgecolor=plotting.BORDER,
                                 linewidth=0.8, zorder=-1))
        left = 0.75 if panel["type"] in ("timeseries", "heatmap") else 0.15
        bottom = 0.75 if panel["type"] == "timeseries" else 0.5 if panel["type"] == "heatmap" else 0.12
        ax = fig.add_axes(((x0 + left) / width, 1 - (y0 + h - bottom) / height, (w - left - 0.15) / width,
                           (h - bottom - 0.4) / height))
        drawn.append(draw_panel(ax, panel, source, start, end, scrape_interval_s, queries, frame))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, facecolor=plotting.BACKGROUND)
    plt.close(fig)
    return drawn
