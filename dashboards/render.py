"""Draw a dashboard's panel layout as a PNG: one box per panel (Grafana's 24-column grid), its title
and the values its queries returned, so docs can show what each dashboard holds without a Grafana.

    values = panel_values(dashboard, prometheus_query)   # title -> text, from a live Prometheus
    render_dashboard(dashboard, values, Path("docs/dashboards/meter-cost.png"))

``prometheus_query`` is any ``expr -> [{"metric": {...}, "value": [ts, "v"]}]`` (Prometheus' instant
query result); expressions go through :meth:`dashboards.queries.Queries.substitute_macros` first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dashboards.queries import DEFAULT

QueryFn = Callable[[str], list[dict[str, Any]]]

_KIND_COLOURS = {"stat": "#e8f1fb", "bargauge": "#eef7ee", "timeseries": "#f6f6f6", "heatmap": "#fdf1e6"}
_MAX_LINES = 5


def format_value(value: float, unit: str) -> str:
    """A Grafana-like rendering of ``value`` in ``unit`` (currencyUSD, percentunit, s, reqps, short)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf"
    if value == 0:
        return "$0" if unit == "currencyUSD" else "0%" if unit == "percentunit" else "0"
    if unit == "currencyUSD":
        return f"${value:,.2f}" if abs(value) >= 100 else f"${value:.4f}" if abs(value) >= 0.0001 else f"${value:.2e}"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "reqps":
        return f"{value:.3g} req/s"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.4g}"


_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    """Apply a Grafana ``legendFormat`` (``{{label}}``) to a series' labels; ``__auto``/empty -> the label set."""
    if not fmt or fmt == "__auto":
        inner = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
        return "{" + inner + "}"
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), fmt).strip()


def _number(sample: Mapping[str, Any]) -> float:
    return float(sample["value"][1])


def panel_value(panel: Mapping[str, Any], query: QueryFn) -> str:
    """The text shown for one panel: its value (stat), or the latest value of each series, largest first (others)."""
    unit = str(panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short"))
    rows: list[tuple[str, float]] = []
    for target in panel["targets"]:
        for sample in query(DEFAULT.substitute_macros(target["expr"])):
            rows.append((legend(target.get("legendFormat", ""), sample["metric"]), _number(sample)))
    if not rows:
        return "no data"
    if panel["type"] == "stat":
        return format_value(rows[0][1], unit)
    if panel["type"] == "heatmap":  # cumulative buckets: the +Inf one counts every call
        calls = next((v for name, v in rows if name == "+Inf"), float("nan"))
        return f"{len(rows)} buckets, {calls:.4g} calls in the last interval"
    rows.sort(key=lambda r: (math.isnan(r[1]), -r[1] if not math.isnan(r[1]) else 0.0))
    lines = [f"{name or '(empty)'}: {format_value(v, unit)}" for name, v in rows[:_MAX_LINES]]
    if len(rows) > _MAX_LINES:
        lines.append(f"... {len(rows)} series in all")
    return "\n".join(lines)


def panel_values(dashboard: Mapping[str, Any], query: QueryFn) -> dict[str, str]:
    """Panel title -> text for every panel of ``dashboard``."""
    return {p["title"]: panel_value(p, query) for p in dashboard["panels"]}


def render_dashboard(dashboard: Mapping[str, Any], values: Mapping[str, str], out: Path,
                     *, subtitle: str = "") -> Path:
    """Draw the panel boxes at their gridPos (24 columns; each height unit 30 px in Grafana) into ``out``."""
    from meter.extras import require

    require("plots", "dashboards.render")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    panels = dashboard["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_w, unit_h = 0.75, 0.42  # inches per grid column / height unit
    header = 1.1
    fig_w, fig_h = 24 * unit_w, rows * unit_h + header
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=80)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, fig_w)
    ax.set_ylim(fig_h, 0)
    ax.axis("off")
    ax.text(0.2, 0.45, dashboard["title"], fontsize=20, fontweight="bold", va="center")
    ax.text(0.2, 0.85, subtitle or dashboard.get("description", ""), fontsize=11, color="#555555", va="center")
    pad = 0.06
    for panel in panels:
        grid = panel["gridPos"]
        x, y = grid["x"] * unit_w + pad, grid["y"] * unit_h + header + pad
        w, h = grid["w"] * unit_w - 2 * pad, grid["h"] * unit_h - 2 * pad
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.08",
                                    facecolor=_KIND_COLOURS.get(panel["type"], "#f6f6f6"), edgecolor="#9aa5b1"))
        ax.text(x + 0.12, y + 0.25, panel["title"], fontsize=11, fontweight="bold", va="center", clip_on=True)
        ax.text(x + w - 0.12, y + h - 0.18, panel["type"], fontsize=8, color="#7b8794", va="center", ha="right")
        text = values.get(panel["title"], "")
        if panel["type"] == "stat":
            ax.text(x + w / 2, y + h / 2 + 0.2, text, fontsize=20, ha="center", va="center", color="#1f4e79")
        else:
            ax.text(x + 0.18, y + 0.55, text, fontsize=10, va="top", family="monospace", color="#222222",
                    clip_on=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
