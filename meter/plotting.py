"""Drawing panels the way Grafana shows them: its dark theme, palette, units, legends, stacked series.

Shared by the dashboard pictures (``meter.dashboards.render``, one panel per ``gridPos``) and by
``meter report --plot`` (spend over time), so the two look alike; it lives beside neither, so the
ledger's report does not depend on the dashboards package. Plain matplotlib (the ``plots`` extra,
imported when a picture is drawn), no Prometheus and no meter import: callers hand in series
already read.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

BACKGROUND = "#111217"
PANEL = "#181b1f"
BORDER = "#2c3235"
TEXT = "#ccccdc"
MUTED = "#8e8e9e"
PALETTE = ("#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#FF9830", "#37872D",
           "#FADE2A", "#C4162A", "#1F60C4")
"""Grafana's classic palette, in its order."""
EXEMPLAR = "#FADE2A"


def format_value(value: float, unit: str) -> str:
    """A value in a Grafana unit: ``currencyUSD``, ``percentunit``, ``s``, ``reqps``, ``short``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf"
    if value == 0:
        return "$0" if unit == "currencyUSD" else "0%" if unit == "percentunit" else "0 s" if unit == "s" else "0"
    if unit == "currencyUSD":
        return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.4f}" if abs(value) >= 0.0001 else f"${value:.2e}"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "reqps":
        return f"{value:.3g} req/s"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


@dataclass
class Series:
    name: str
    times: list[datetime]
    values: list[float]


@dataclass
class Drawn:
    """What one panel drew: the facts a test checks (data or not, series names, exemplars)."""

    title: str
    kind: str
    series: list[str] = field(default_factory=list)
    points: int = 0
    exemplars: int = 0
    empty: bool = True


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def style_axes(ax: Any, title: str) -> None:
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(colors=MUTED, labelsize=8, length=0)
    ax.grid(True, color=BORDER, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title, color=TEXT, fontsize=10, loc="left", fontweight="bold", pad=6)


LEGEND_MAX = 8


def timeseries(ax: Any, title: str, series: Sequence[Series], unit: str, stacked: bool = False,
               exemplars: Sequence[tuple[datetime, float]] = (), bars: bool = False,
               xlim: tuple[datetime, datetime] | None = None, bar_days: float | None = None) -> Drawn:
    """Lines over time (or stacked areas, or stacked bars for periods), a legend below, the unit on the y axis."""
    from matplotlib import dates, ticker

    mdates: Any = dates
    mticker: Any = ticker
    style_axes(ax, title)
    drawn = Drawn(title, "timeseries")
    shown = [s for s in series if s.values]
    if bars and shown:
        bottom = [0.0] * len(shown[0].values)
        width = 0.8 * bar_days if bar_days else _bar_width(shown[0].times)
        for i, s in enumerate(shown):
            ax.bar(s.times, s.values, bottom=bottom, width=width, color=PALETTE[i % len(PALETTE)], label=s.name,
                   align="edge",
                   linewidth=0)
            bottom = [b + (v if not math.isnan(v) else 0) for b, v in zip(bottom, s.values, strict=True)]
    elif stacked and shown:
        times = sorted({t for s in shown for t in s.times})
        stacks = []
        for s in shown:
            by_time = dict(zip(s.times, s.values, strict=True))
            stacks.append([0.0 if math.isnan(by_time.get(t, 0.0)) else by_time.get(t, 0.0) for t in times])
        ax.stackplot(times, *stacks, colors=[PALETTE[i % len(PALETTE)] for i in range(len(stacks))], alpha=0.55,
                     labels=[s.name for s in shown], linewidth=0)
        top = [0.0] * len(times)
        for i, values in enumerate(stacks):
            top = [a + b for a, b in zip(top, values, strict=True)]
            ax.plot(times, top, color=PALETTE[i % len(PALETTE)], linewidth=1.2)
    else:
        for i, s in enumerate(shown):
            ax.plot(s.times, s.values, color=PALETTE[i % len(PALETTE)], linewidth=1.4, label=s.name)
    if exemplars:
        ax.scatter([t for t, _ in exemplars], [v for _, v in exemplars], marker="D", s=7, color=EXEMPLAR, alpha=0.65,
                   edgecolors="none", zorder=5, label=f"exemplars ({len(exemplars)})")
    drawn.series = [s.name for s in shown]
    drawn.points = sum(sum(1 for v in s.values if not math.isnan(v)) for s in shown)
    drawn.exemplars = len(exemplars)
    drawn.empty = drawn.points == 0
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: format_value(v, unit)))
    ax.yaxis.set_major_locator(mticker.MaxNLocator(4))
    if not bars:
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.xaxis.set_major_locator(mticker.MaxNLocator(5))
    if drawn.empty:
        _no_data(ax)
    else:
        _legend(ax, len(shown))
    if xlim is not None:
        ax.set_xlim(*xlim)
    return drawn


def _legend(ax: Any, count: int) -> None:
    """Grafana's legend under the graph: the first ``LEGEND_MAX`` entries, and how many more there are."""
    handles, labels = ax.get_legend_handles_labels()
    more = len(handles) - LEGEND_MAX
    if more > 0:
        handles, labels = handles[:LEGEND_MAX - 1], [*labels[:LEGEND_MAX - 1]]
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], linestyle="none"))
        labels.append(f"+{more + 1} more")
    width = ax.get_position().width
    ncol = max(1, min(len(handles), 4 if width > 0.3 else 3 if width > 0.2 else 2))
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=ncol, frameon=False,
              fontsize=7, labelcolor=TEXT, handlelength=1.2, columnspacing=1.0)


def _bar_width(times: Sequence[datetime]) -> float:
    if len(times) < 2:
        return 0.8
    gaps = [(b - a).total_seconds() / 86400 for a, b in itertools.pairwise(times)]
    return 0.8 * min(gaps)


def stat(ax: Any, title: str, value: float | None, unit: str) -> Drawn:
    """One big number, coloured like Grafana's default threshold (green)."""
    style_axes(ax, title)
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    missing = value is None or math.isnan(value)  # NaN: a quantile of no calls; Grafana shows "No data" too
    drawn = Drawn(title, "stat", points=0 if missing else 1, empty=missing)
    if value is None or missing:
        _no_data(ax)
    else:
        ax.text(0.5, 0.42, format_value(value, unit), color=PALETTE[0], fontsize=24, fontweight="bold",
                ha="center", va="center", transform=ax.transAxes)
    return drawn


def bargauge(ax: Any, title: str, bars: Sequence[tuple[str, float]], unit: str) -> Drawn:
    """Horizontal bars, largest first, each with its name and value (Grafana's bar gauge, basic mode)."""
    style_axes(ax, title)
    ax.grid(False)
    drawn = Drawn(title, "bargauge", series=[name for name, _ in bars], points=len(bars), empty=not bars)
    if not bars:
        _no_data(ax)
        return drawn
    shown = sorted(bars, key=lambda b: -b[1])[:8]
    top = max(v for _, v in shown) or 1.0
    ys = list(range(len(shown)))[::-1]
    ax.barh(ys, [v for _, v in shown], color=[PALETTE[i % len(PALETTE)] for i in range(len(shown))], height=0.6)
    ax.barh(ys, [top] * len(shown), color=BORDER, height=0.6, zorder=0)
    for y, (name, v) in zip(ys, shown, strict=True):
        ax.text(0.0, y + 0.42, name, color=TEXT, fontsize=7.5, va="bottom", ha="left")
        ax.text(top, y, format_value(v, unit) + " ", color=TEXT, fontsize=8, va="center", ha="right",
                fontweight="bold")
    ax.set_xlim(0, top * 1.001)
    ax.set_ylim(-0.6, len(shown) - 0.1)
    ax.set_xticks([])
    ax.set_yticks([])
    return drawn


def heatmap(ax: Any, title: str, times: Sequence[datetime], bounds: Sequence[str],
            counts: Sequence[Sequence[float]]) -> Drawn:
    """Calls per duration bucket over time (``counts[bucket][time]``), Grafana's orange scheme."""
    from matplotlib import dates

    mdates: Any = dates
    style_axes(ax, title)
    ax.grid(False)
    total = sum(sum(row) for row in counts)
    drawn = Drawn(title, "heatmap", series=list(bounds), points=int(total), empty=total == 0)
    if drawn.empty or not times:
        _no_data(ax)
        return drawn
    x = [mdates.date2num(t) for t in times]
    step = (x[1] - x[0]) if len(x) > 1 else 1 / 86400
    edges = [*x, x[-1] + step]
    masked = [[v if v > 0 else float("nan") for v in row] for row in counts]
    from matplotlib.colors import LinearSegmentedColormap

    # Dark to orange to yellow, as Grafana's "Oranges" scheme on its dark theme; an empty bucket is the panel.
    colours = LinearSegmentedColormap.from_list("grafana-oranges", ["#3d2410", "#FF780A", "#FADE2A"]).with_extremes(
        bad=PANEL)
    ax.pcolormesh(edges, range(len(bounds) + 1), masked, cmap=colours, shading="flat")
    ax.set_yticks([i + 0.5 for i in range(len(bounds))][::2])
    ax.set_yticklabels(list(bounds)[::2], fontsize=7)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    return drawn


def _no_data(ax: Any) -> None:
    ax.text(0.5, 0.5, "No data", color=MUTED, fontsize=12, ha="center", va="center", transform=ax.transAxes)
