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
EXEMPLAR = "#FF00FF"
"""Exemplars that belong to no drawn series (magenta, as the heatmap's exemplars): never a line's colour."""


SHORT_UNITS = ("", " K", " Mil", " Bil", " Tri")
"""Grafana's ``short`` unit scales by 1000 with these suffixes."""


def _fixed(value: float, decimals: int) -> str:
    """Grafana's ``toFixed``: rounded half up (``Math.round``), then exactly ``decimals`` digits."""
    factor = 10 ** max(0, decimals)
    return f"{math.floor(value * factor + 0.5) / factor:.{max(0, decimals)}f}"


def format_value(value: float, unit: str, decimals: int | None = None) -> str:
    """A value in a Grafana unit (``currencyUSD``, ``percentunit``, ``s``, ``reqps``, ``short``), with the panel's
    ``decimals`` when it sets them (Grafana's rounding), else about three significant digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf"
    if decimals is not None:
        return _with_decimals(value, unit, decimals)
    if value == 0:
        return "$0" if unit == "currencyUSD" else "0%" if unit == "percentunit" else "0 s" if unit == "s" else "0"
    if unit == "currencyUSD":
        if abs(value) >= 1:
            return f"${value:,.2f}"
        if abs(value) >= 0.0001:
            return f"${value:.4f}"
        return f"${value:.{2 - math.floor(math.log10(abs(value)))}f}"  # three significant digits, no exponent
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "reqps":
        return f"{value:.3g} req/s"
    scaled, suffix = _short(value)
    return f"{scaled:.3g}{suffix}"


def _short(value: float) -> tuple[float, str]:
    step = 0
    while abs(value) >= 1000 and step < len(SHORT_UNITS) - 1:
        value, step = value / 1000, step + 1
    return value, SHORT_UNITS[step]


def _with_decimals(value: float, unit: str, decimals: int) -> str:
    if unit == "currencyUSD":
        text = _fixed(abs(value), decimals)
        whole, _, frac = text.partition(".")
        return ("-" if value < 0 else "") + f"${int(whole):,}" + (f".{frac}" if frac else "")
    if unit == "percentunit":
        return f"{_fixed(value * 100, decimals)}%"
    if unit == "s":
        return f"{_fixed(value * 1000, decimals)} ms" if abs(value) < 1 else f"{_fixed(value, decimals)} s"
    if unit == "reqps":
        return f"{_fixed(value, decimals)} req/s"
    scaled, suffix = _short(value)
    return f"{_fixed(scaled, decimals)}{suffix}"


def mapped(value: float, mappings: Sequence[dict[str, Any]] = ()) -> str | None:
    """The text a Grafana value mapping (``{"type": "value", "options": {"-1": {"text": ...}}}``) gives ``value``."""
    key = str(int(value)) if value.is_integer() else repr(value)
    for mapping in mappings:
        if mapping.get("type") == "value" and key in mapping.get("options", {}):
            return str(mapping["options"][key].get("text", key))
    return None


@dataclass
class Series:
    name: str
    times: list[datetime]
    values: list[float]
    labels: dict[str, str] = field(default_factory=dict)
    """The series' labels (Grafana colours an exemplar like the series whose labels it matches)."""


@dataclass(frozen=True)
class Exemplar:
    """One exemplar point; ``series`` is the name of the drawn series it belongs to, if any."""

    time: datetime
    value: float
    series: str | None = None


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


LEGEND_FONT = 7.0
Frame = tuple[float, float, float, float]
"""A panel's box in figure coordinates (left, bottom, width, height): what its legend must stay inside."""


def timeseries(ax: Any, title: str, series: Sequence[Series], unit: str, stacked: bool = False,
               exemplars: Sequence[Exemplar] = (), bars: bool = False,
               xlim: tuple[datetime, datetime] | None = None, bar_days: float | None = None,
               frame: Frame | None = None, decimals: int | None = None) -> Drawn:
    """Lines over time (or stacked areas, or stacked bars for periods), a legend below, the unit on the y axis.

    The y axis ends on a "nice" tick at or above the highest point (Grafana's axis never cuts a line off);
    exemplars are diamonds in the colour of the series they belong to, else in their own colour, held inside
    the axis as Grafana holds them; the legend keeps inside ``frame`` (the panel), ending in "+N more".
    """
    from matplotlib import dates, ticker

    mdates: Any = dates
    mticker: Any = ticker
    style_axes(ax, title)
    drawn = Drawn(title, "timeseries")
    shown = [s for s in series if s.values]
    colour = {s.name: PALETTE[i % len(PALETTE)] for i, s in enumerate(shown)}
    tops: list[float] = []
    if bars and shown:
        bottom = [0.0] * len(shown[0].values)
        width = 0.8 * bar_days if bar_days else _bar_width(shown[0].times)
        for s in shown:
            ax.bar(s.times, s.values, bottom=bottom, width=width, color=colour[s.name], label=s.name,
                   align="edge", linewidth=0)
            bottom = [b + (v if not math.isnan(v) else 0) for b, v in zip(bottom, s.values, strict=True)]
        tops = bottom
    elif stacked and shown:
        times = sorted({t for s in shown for t in s.times})
        stacks = []
        for s in shown:
            by_time = dict(zip(s.times, s.values, strict=True))
            stacks.append([0.0 if math.isnan(by_time.get(t, 0.0)) else by_time.get(t, 0.0) for t in times])
        ax.stackplot(times, *stacks, colors=[colour[s.name] for s in shown], alpha=0.55,
                     labels=[s.name for s in shown], linewidth=0)
        top = [0.0] * len(times)
        for s, values in zip(shown, stacks, strict=True):
            top = [a + b for a, b in zip(top, values, strict=True)]
            ax.plot(times, top, color=colour[s.name], linewidth=1.2)
            tops += top
        tops.append(0.0)
    else:
        for s in shown:
            ax.plot(s.times, s.values, color=colour[s.name], linewidth=1.4, label=s.name)
            tops += s.values
    drawn.series = [s.name for s in shown]
    drawn.points = sum(sum(1 for v in s.values if not math.isnan(v)) for s in shown)
    drawn.exemplars = len(exemplars)
    drawn.empty = drawn.points == 0
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: format_value(v, unit, decimals)))
    locator = mticker.MaxNLocator(4, steps=[1, 2, 2.5, 5, 10])
    ax.yaxis.set_major_locator(locator)
    low_high = _nice_range(locator, [v for v in tops if not math.isnan(v)], from_zero=stacked or bars)
    if low_high is not None:
        ax.set_ylim(*low_high)
    if exemplars:
        low, high = ax.get_ylim()
        ax.scatter([e.time for e in exemplars], [min(high, max(low, e.value)) for e in exemplars], marker="D", s=7,
                   color=[colour.get(e.series or "", EXEMPLAR) for e in exemplars], alpha=0.7, edgecolors="none",
                   zorder=5, label=f"exemplars ({len(exemplars)})")
        ax.set_ylim(low, high)
    if not bars:
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.xaxis.set_major_locator(mticker.MaxNLocator(5))
    if xlim is not None:
        ax.set_xlim(*xlim)
    if drawn.empty:
        _no_data(ax)
    else:
        _legend(ax, frame)
    return drawn


def _nice_range(locator: Any, values: Sequence[float], from_zero: bool) -> tuple[float, float] | None:
    """Axis limits on the locator's ticks, covering every value: a nice maximum at or above the highest point."""
    if not values:
        return None
    low, high = min(values), max(values)
    if low >= 0 and (from_zero or low <= high / 2):
        low = 0.0
    if high == low:
        return None  # a flat line: matplotlib's margins around it, as Grafana centres it
    eps = (high - low) * 1e-9
    ticks = [float(t) for t in locator.tick_values(low, high)]
    return (max([t for t in ticks if t <= low + eps] or [low]), min([t for t in ticks if t >= high - eps] or [high]))


def _legend(ax: Any, frame: Frame | None) -> None:
    """Grafana's legend under the graph, kept inside the panel: as many columns as the names allow, as many rows
    as fit below the axis, and "+N more" for the rest (Grafana scrolls); a name wider than the panel is cut with
    "…"."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    fig_w, fig_h = fig.bbox.width, fig.bbox.height
    left, bottom, width, _ = frame if frame is not None else (0.0, 0.0, 1.0, 1.0)
    box_x0, box_x1, box_y0 = left * fig_w + 6, (left + width) * fig_w - 6, bottom * fig_h + 3
    top_px = _below_time_axis(ax) - 3
    font = LEGEND_FONT * fig.dpi / 72
    row_h = font * 1.45
    handle_w, gap_w = font * (1.2 + 0.6), font * 1.0
    rows = max(1, int((top_px - box_y0) // row_h))
    avail = box_x1 - box_x0

    def text_w(text: str) -> float:
        return _text_w(renderer, text, LEGEND_FONT)

    def capped(n: int) -> tuple[list[Any], list[str]]:
        if len(handles) <= rows * n:
            return list(handles), list(labels)
        more = len(handles) - (rows * n - 1)
        return [*handles[:rows * n - 1], Line2D([], [], linestyle="none")], [*labels[:rows * n - 1], f"+{more} more"]

    def fits(n: int, entries: list[str]) -> bool:
        per = math.ceil(len(entries) / n)  # matplotlib fills a legend column by column
        columns = [entries[c * per:(c + 1) * per] for c in range(n) if entries[c * per:(c + 1) * per]]
        needed = sum(max(text_w(e) for e in col) + handle_w for col in columns) + gap_w * (len(columns) - 1)
        return bool(needed <= avail)

    ncol = next((n for n in range(min(len(handles), 6), 0, -1) if fits(n, capped(n)[1])), 1)
    handles, labels = capped(ncol)
    labels = [_cut(renderer, label, avail - handle_w, LEGEND_FONT) for label in labels]  # one name wider than all
    anchor = ax.transAxes.inverted().transform((0.5 * (box_x0 + box_x1), top_px))
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(float(anchor[0]), float(anchor[1])), ncol=ncol,
              frameon=False, fontsize=LEGEND_FONT, labelcolor=TEXT, handlelength=1.2, handletextpad=0.6,
              columnspacing=1.0, borderaxespad=0.0, borderpad=0.0, labelspacing=0.45)


def _font(size: float, bold: bool = False) -> Any:
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=size, weight="bold" if bold else "normal")


def _text_w(renderer: Any, text: str, size: float, bold: bool = False) -> float:
    return float(renderer.get_text_width_height_descent(text, _font(size, bold), ismath=False)[0])


def _cut(renderer: Any, text: str, room: float, size: float) -> str:
    """``text``, cut and ended with "…" where it is wider than ``room`` pixels."""
    if _text_w(renderer, text, size) <= room:
        return text
    while len(text) > 1 and _text_w(renderer, text + "…", size) > room:
        text = text[:-1]
    return text + "…"


def _below_time_axis(ax: Any) -> float:
    """The pixel row just under the time axis' tick labels (8 pt, 3.5 pt from the axis)."""
    return float(ax.bbox.y0 - (3.5 + 8 * 1.3) * ax.figure.dpi / 72)


def _bar_width(times: Sequence[datetime]) -> float:
    if len(times) < 2:
        return 0.8
    gaps = [(b - a).total_seconds() / 86400 for a, b in itertools.pairwise(times)]
    return 0.8 * min(gaps)


def stat(ax: Any, title: str, value: float | None, unit: str, decimals: int | None = None,
         mappings: Sequence[dict[str, Any]] = ()) -> Drawn:
    """One big number in the panel's unit and decimals (or its value mapping), coloured like Grafana's default
    threshold (green)."""
    style_axes(ax, title)
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    missing = value is None or math.isnan(value)  # NaN: a quantile of no calls; Grafana shows "No data" too
    drawn = Drawn(title, "stat", points=0 if missing else 1, empty=missing)
    if value is None or missing:
        _no_data(ax)
    else:
        text = mapped(value, mappings) or format_value(value, unit, decimals)
        ax.text(0.5, 0.42, text, color=PALETTE[0], fontsize=24, fontweight="bold", ha="center", va="center",
                transform=ax.transAxes)
    return drawn


NAME_FONT, VALUE_FONT = 7.5, 8.0
MIN_BAR_PX = 8.0


def bargauge(ax: Any, title: str, bars: Sequence[tuple[str, float]], unit: str, decimals: int | None = None,
             mappings: Sequence[dict[str, Any]] = ()) -> Drawn:
    """Horizontal bars in the order given (Grafana's bar gauge, basic mode): each name on its own line above its bar,
    the value right of the bars, rows sized to the panel; bars that do not fit are counted in "+N more" (Grafana
    scrolls). A value mapping's text (``-1`` -> "unknown") replaces the number and the bar stays empty."""
    style_axes(ax, title)
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    drawn = Drawn(title, "bargauge", series=[name for name, _ in bars], points=len(bars), empty=not bars)
    if not bars:
        _no_data(ax)
        return drawn
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    height_px, width_px = ax.bbox.height, ax.bbox.width
    name_px = NAME_FONT * fig.dpi / 72 * 1.3
    row_min = name_px + MIN_BAR_PX + 3
    ordered = list(bars)  # the query's order, as Grafana draws them (the boards sort in PromQL)
    fit = max(1, int(height_px // row_min))
    shown = ordered if len(ordered) <= fit else ordered[:fit - 1]
    more = len(ordered) - len(shown)
    rows = len(shown) + (1 if more else 0)
    row_px = min(height_px / rows, name_px + 30 + 3)
    bar_px = row_px - name_px - 3
    texts = [mapped(v, mappings) or format_value(v, unit, decimals) for _, v in shown]
    value_w = max(_text_w(renderer, t, VALUE_FONT, bold=True) for t in texts) + 8
    right = max(0.5, 1 - value_w / width_px)  # the bars end here; the values are right of them
    top = max((max(0.0, v) for _, v in shown), default=0.0) or 1.0
    ax.set_xlim(0, 1)
    ax.set_ylim(height_px, 0)  # y in pixels from the top of the axes
    for i, ((name, v), text) in enumerate(zip(shown, texts, strict=True)):
        y = i * row_px
        bar_y = y + name_px
        ax.text(0.0, y + name_px / 2, _cut(renderer, name, width_px, NAME_FONT), color=TEXT, fontsize=NAME_FONT,
                va="center", ha="left")
        ax.barh(bar_y + bar_px / 2, right, height=bar_px, color=BORDER, zorder=0)
        filled = right * max(0.0, v) / top
        if filled > 0:
            ax.barh(bar_y + bar_px / 2, filled, height=bar_px, color=PALETTE[i % len(PALETTE)], zorder=1)
        ax.text(1.0, bar_y + bar_px / 2, text, color=TEXT, fontsize=VALUE_FONT, va="center", ha="right",
                fontweight="bold")
    if more:
        ax.text(0.0, len(shown) * row_px + name_px / 2, f"+{more} more", color=MUTED, fontsize=NAME_FONT,
                va="center", ha="left")
    return drawn


def heatmap(ax: Any, title: str, times: Sequence[datetime], bounds: Sequence[str],
            counts: Sequence[Sequence[float]], frame: Frame | None = None) -> Drawn:
    """Calls per duration bucket over time (``counts[bucket][time]``), Grafana's orange scheme, and its colour
    scale under the graph (the legend Grafana's heatmap shows: the scheme from the fewest to the most calls)."""
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
    filled = [v for row in counts for v in row if v > 0]
    low, high = min(filled), max(filled)
    ax.pcolormesh(edges, range(len(bounds) + 1), masked, cmap=colours, shading="flat", vmin=low, vmax=high)
    ax.set_yticks([i + 0.5 for i in range(len(bounds))][::2])
    ax.set_yticklabels(list(bounds)[::2], fontsize=7)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    from matplotlib import ticker

    mticker: Any = ticker
    ax.xaxis.set_major_locator(mticker.MaxNLocator(5))
    ax.set_xlim(edges[0], edges[-1])
    _colour_scale(ax, colours, low, high, frame)
    return drawn


def _colour_scale(ax: Any, colours: Any, low: float, high: float, frame: Frame | None) -> None:
    """A gradient bar under the heatmap's time axis, the fewest calls a cell holds on its left, the most on its
    right, inside the panel."""
    fig = ax.figure
    top_px = _below_time_axis(ax) - 3
    bottom_px = (frame[1] * fig.bbox.height if frame is not None else 0.0) + 5
    height_px = min(9.0, max(4.0, top_px - bottom_px))
    width = ax.get_position().width * 0.34
    x0 = ax.get_position().x0 + ax.get_position().width * 0.33
    cax = fig.add_axes((x0, (top_px - height_px) / fig.bbox.height, width, height_px / fig.bbox.height))
    cax.imshow([[i / 255 for i in range(256)]], aspect="auto", cmap=colours, vmin=0, vmax=1,
               extent=(0, 1, 0, 1))
    cax.set_xticks([])
    cax.set_yticks([])
    for spine in cax.spines.values():
        spine.set_visible(False)
    cax.text(-0.02, 0.5, format_value(low, "short"), color=MUTED, fontsize=7, ha="right", va="center",
             transform=cax.transAxes)
    cax.text(1.02, 0.5, format_value(high, "short"), color=MUTED, fontsize=7, ha="left", va="center",
             transform=cax.transAxes)


def _no_data(ax: Any) -> None:
    ax.text(0.5, 0.5, "No data", color=MUTED, fontsize=12, ha="center", va="center", transform=ax.transAxes)
