"""The pictures read as the same panels read in Grafana (issue 23): checked on the matplotlib objects drawn.

No Prometheus here: a fake source answers the panels' queries with chosen values, the real dashboards'
panels are drawn with ``render_dashboard`` and the figure is inspected (texts, bars, legends, axis
limits, colours) before it is closed. ``test_prometheus_integration.py`` draws them from a real run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from meter.dashboards import boards, grafana
from meter.dashboards.grafana import Target
from meter.dashboards.queries import DEFAULT as q

pytest.importorskip("matplotlib")

from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

from meter import plotting
from meter.dashboards.render import render_dashboard

START, END = 1_800_000_000.0, 1_800_000_120.0
DASHBOARDS = boards.all_dashboards()


def _panel(file: str, title: str) -> dict[str, Any]:
    return next(p for p in DASHBOARDS[file]["panels"] if p["title"] == title)


class Fake:
    """A ``Source``: instant queries answer ``instant(expr)``, range queries ``ranged(expr)`` (label sets and
    a value function of the time), exemplars ``exemplars(expr)``."""

    def __init__(self, instant: Callable[[str], list[tuple[dict[str, str], float]]] = lambda e: [],
                 ranged: Callable[[str], list[tuple[dict[str, str], Callable[[float], float]]]] = lambda e: [],
                 exemplars: Callable[[str], list[dict[str, Any]]] = lambda e: []) -> None:
        self.instant, self.ranged, self.exemplars = instant, ranged, exemplars

    def query(self, expr: str, time: float | None = None) -> list[dict[str, Any]]:
        return [{"metric": m, "value": [time, repr(v)]} for m, v in self.instant(expr)]

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list[dict[str, Any]]:
        stamps = [start + i * float(step.rstrip("s")) for i in range(int((end - start) / float(step.rstrip("s"))) + 1)]
        return [{"metric": m, "values": [[t, repr(f(t))] for t in stamps]} for m, f in self.ranged(expr)]

    def query_exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        return self.exemplars(expr)


@pytest.fixture
def draw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[Any, list[plotting.Drawn]]]]:
    """Draw a dashboard (or some of its panels) and keep the figure open for inspection."""
    import matplotlib.pyplot as plt

    close = plt.close
    monkeypatch.setattr(plt, "close", lambda *a, **k: None)
    opened: list[Any] = []

    def run(panels: list[dict[str, Any]], source: Fake) -> tuple[Any, list[plotting.Drawn]]:
        before = set(plt.get_fignums())
        dash = {"title": "test", "panels": panels}
        drawn = render_dashboard(dash, source, START, END, tmp_path / "out.png", scrape_interval_s=1.0)
        (number,) = set(plt.get_fignums()) - before
        fig = plt.figure(number)
        opened.append(fig)
        fig.canvas.draw()
        return fig, drawn

    yield run
    for fig in opened:
        close(fig)


def _texts(fig: Any) -> list[Any]:
    return [t for ax in fig.axes for t in ax.texts if t.get_text()]


def _panel_boxes(fig: Any) -> list[Any]:
    """The panel frames (the rectangles the renderer draws at each gridPos), in display coordinates."""
    return [a.get_window_extent() for a in fig.artists if isinstance(a, Rectangle)]


def _inside(inner: Any, outer: Any, slack: float = 1.0) -> bool:
    return (inner.x0 >= outer.x0 - slack and inner.x1 <= outer.x1 + slack and inner.y0 >= outer.y0 - slack
            and inner.y1 <= outer.y1 + slack)


# -- whole calls ---------------------------------------------------------------------------------------------


def test_counts_of_calls_are_whole_numbers_as_the_panels_decimals_say(draw: Callable[..., Any]) -> None:
    """An ``increase()`` of calls extrapolates (60.5); the count panels say decimals 0 and the picture honours it,
    as Grafana does (its rounding: half up)."""
    titles = [("meter-cost.json", "Unpriced calls (range)"), ("meter-cost.json", "Estimated calls (range)"),
              ("meter-errors.json", "Aborted streams (range)"), ("meter-errors.json", "429s (range)")]
    panels = [_panel(f, t) for f, t in titles]
    assert all(p["fieldConfig"]["defaults"]["decimals"] == 0 for p in panels)
    fig, _ = draw(panels, Fake(instant=lambda e: [({}, 60.5)]))
    assert sorted(t.get_text() for t in _texts(fig)) == ["61"] * 4


def test_tool_calls_by_tool_are_whole_calls(draw: Callable[..., Any]) -> None:
    panel = _panel("meter-cost.json", "Tool calls by tool (range)")
    assert panel["fieldConfig"]["defaults"]["decimals"] == 0
    fig, _ = draw([panel], Fake(instant=lambda e: [({"tool": "web search calls"}, 60.5),
                                                   ({"tool": "code interpreter sessions"}, 19.4)]))
    values = {t.get_text() for t in _texts(fig)} - {"web search calls", "code interpreter sessions"}
    assert values == {"61", "19"}


def test_format_value_rounds_half_up_like_grafana() -> None:
    assert plotting.format_value(60.5, "short", 0) == "61"
    assert plotting.format_value(2.5, "short", 0) == "3"
    assert plotting.format_value(1.06449, "currencyUSD", 4) == "$1.0645"
    assert plotting.format_value(0.0625, "percentunit", 1) == "6.3%"
    assert plotting.format_value(0.0000212, "currencyUSD") == "$0.0000212"


# -- bar gauges ------------------------------------------------------------------------------------------------


SIX_TYPES = ["GlobalStandard", "DataZoneStandard", "GlobalPriority", "GlobalFlex", "GlobalBatch", "Standard"]


def test_bar_gauge_names_are_not_drawn_over_the_bar_above(draw: Callable[..., Any]) -> None:
    """Six deployment types (tiers folded in) in the 7-row Spend by deployment type panel: every name and value sits
    clear of every bar, inside its panel."""
    panel = _panel("meter-cost.json", "Spend by deployment type (range)")
    fig, drawn = draw([panel], Fake(instant=lambda e: [({"deployment_type": t}, 0.5 / (i + 1))
                                                       for i, t in enumerate(SIX_TYPES)]))
    assert drawn[0].series == SIX_TYPES
    bars = [p.get_window_extent() for ax in fig.axes for p in ax.patches if isinstance(p, Rectangle)
            and p.get_width() > 0]
    texts = _texts(fig)
    assert {t.get_text() for t in texts} >= set(SIX_TYPES)
    (frame,) = _panel_boxes(fig)
    for text in texts:
        box = text.get_window_extent()
        assert _inside(box, frame), text.get_text()
        assert not [b for b in bars if box.overlaps(b)], f"{text.get_text()!r} is drawn over a bar"


def test_a_bar_gauge_with_more_bars_than_fit_says_how_many_more(draw: Callable[..., Any]) -> None:
    panel = _panel("meter-cost.json", "Spend by model (range)")
    fig, drawn = draw([panel], Fake(instant=lambda e: [({"model": f"model-{i:02d}"}, 1.0 / (i + 1))
                                                       for i in range(14)]))
    assert len(drawn[0].series) == 14
    texts = [t.get_text() for t in _texts(fig)]
    shown = [t for t in texts if t.startswith("model-")]
    assert shown and f"+{14 - len(shown)} more" in texts


# -- legends ---------------------------------------------------------------------------------------------------


def _series_panel(title: str, width: int, legend: str = "{{deployment}}") -> dict[str, Any]:
    panel = grafana.series(title, [Target("x", legend)], "reqps", "", width=width)
    (out,) = grafana.layout([[panel]])
    return out


def _ramp(names: list[str], top: float = 1.0) -> Callable[[str], list[tuple[dict[str, str], Callable[[float], float]]]]:
    return lambda e: [({"deployment": n}, lambda t, i=i: top * (i + 1) / len(names) * (t - START) / (END - START))
                      for i, n in enumerate(names)]


def test_a_legend_stays_inside_its_panel(draw: Callable[..., Any]) -> None:
    """Twelve long series names in an 8-column panel: the legend is cut to the rows that fit, ends with "+N more",
    and no entry runs into the panel beside or below."""
    names = [f"estimated gpt-4o-mini-{i:02d} gpt-4o-mini-2024-07-18" for i in range(12)]
    fig, drawn = draw([_series_panel("many", 8)], Fake(ranged=_ramp(names)))
    assert len(drawn[0].series) == 12
    (frame,) = _panel_boxes(fig)
    (legend,) = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert _inside(legend.get_window_extent(), frame)
    (ax,) = [ax for ax in fig.axes if ax.lines]
    below = min(t.get_window_extent().y0 for t in ax.get_xticklabels() if t.get_text())
    assert legend.get_window_extent().y1 <= below, "the legend covers the time axis"
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[-1].startswith("+") and labels[-1].endswith(" more")
    assert int(labels[-1].split()[0][1:]) == 12 - (len(labels) - 1)


def test_a_short_legend_is_whole(draw: Callable[..., Any]) -> None:
    names = ["gpt-4o-mini", "gpt-5", "o4-mini"]
    fig, _ = draw([_series_panel("few", 12)], Fake(ranged=_ramp(names)))
    (legend,) = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert [t.get_text() for t in legend.get_texts()] == names


# -- y axis ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("top", "unit"), [(137.0, "currencyUSD"), (1.0, "percentunit"), (21.0, "reqps"),
                                           (4.6e3, "short")])
def test_the_y_axis_ends_on_a_tick_above_the_highest_point(draw: Callable[..., Any], top: float, unit: str) -> None:
    panel = grafana.series("y", [Target("x", "{{deployment}}")], unit, "")
    (out,) = grafana.layout([[panel]])
    fig, _ = draw([out], Fake(ranged=_ramp(["a", "b"], top)))
    (ax,) = [ax for ax in fig.axes if ax.lines]
    low, high = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if low - 1e-9 <= t <= high + 1e-9]
    assert high >= top and max(ticks) >= top, (high, ticks)
    assert max(ticks) == pytest.approx(high)


# -- exemplars -------------------------------------------------------------------------------------------------


def _exemplars(labels: dict[str, str]) -> Callable[[str], list[dict[str, Any]]]:
    return lambda e: [{"seriesLabels": labels, "exemplars": [
        {"labels": {"trace_id": f"{i:032x}"}, "value": repr(0.1 + i / 100), "timestamp": START + i}
        for i in range(20)]}]


def test_exemplars_unmatched_by_any_line_have_their_own_colour(draw: Callable[..., Any]) -> None:
    """The percentile lines carry no labels, so no exemplar belongs to one of them: the dots are drawn in a colour
    no line of the panel has (today they were the p95 line's yellow)."""
    panel = _panel("meter-latency.json", "Request duration percentiles")
    fig, drawn = draw([panel], Fake(ranged=lambda e: [({}, lambda t: 0.3)],
                                    exemplars=_exemplars({"__name__": q.DURATION_BUCKET, "deployment": "gpt-5",
                                                          "le": "0.5"})))
    assert drawn[0].exemplars == 20
    (ax,) = [ax for ax in fig.axes if ax.lines]
    lines = {to_hex(line.get_color()) for line in ax.lines}
    (dots,) = ax.collections
    colours = {to_hex(c) for c in dots.get_facecolors()}
    assert len(lines) == 3 and colours and not colours & lines, (colours, lines)

    def rgb(c: str) -> tuple[int, ...]:
        return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))

    far = min(sum((a - b) ** 2 for a, b in zip(rgb(c), rgb(line), strict=True)) ** 0.5
              for c in colours for line in lines)
    assert far > 100, f"the exemplars' colour is too close to a line's ({far:.0f})"


def test_an_exemplar_of_a_deployment_takes_its_lines_colour(draw: Callable[..., Any]) -> None:
    """Grafana colours an exemplar like the series whose labels it matches (``getExemplarColor``)."""
    panel = _panel("meter-latency.json", "Request duration p95 by deployment")
    fig, _ = draw([panel], Fake(ranged=lambda e: [({"deployment": "gpt-4o-mini"}, lambda t: 0.2),
                                                  ({"deployment": "gpt-5"}, lambda t: 0.3)],
                                exemplars=_exemplars({"__name__": q.DURATION_BUCKET, "deployment": "gpt-5",
                                                      "le": "0.5"})))
    (ax,) = [ax for ax in fig.axes if ax.lines]
    gpt5 = next(to_hex(line.get_color()) for line in ax.lines if line.get_label() == "gpt-5")
    (dots,) = ax.collections
    assert {to_hex(c) for c in dots.get_facecolors()} == {gpt5}


# -- heatmap ---------------------------------------------------------------------------------------------------


def test_the_heatmap_has_a_colour_scale(draw: Callable[..., Any]) -> None:
    panel = _panel("meter-latency.json", "Duration distribution")
    buckets = ["0.01", "0.04", "0.16", "0.64", "+Inf"]

    def ranged(expr: str) -> list[tuple[dict[str, str], Callable[[float], float]]]:
        return [({"le": le}, lambda t, i=i: (i + 1) * 3.0 * (1 + (t - START) / 60)) for i, le in enumerate(buckets)]

    fig, drawn = draw([panel], Fake(ranged=ranged))
    assert drawn[0].points > 0
    (heat,) = [ax for ax in fig.axes if ax.get_title(loc="left") == "Duration distribution"]
    (mesh,) = heat.collections
    scales = [ax for ax in fig.axes if ax is not heat and any(c.get_cmap() is mesh.get_cmap() for c in
                                                               [*ax.collections, *ax.images])]
    assert len(scales) == 1, "no colour scale"
    (frame,) = _panel_boxes(fig)
    assert _inside(scales[0].get_window_extent(), frame)
    low, high = mesh.get_clim()
    labels = {t.get_text() for t in scales[0].texts} | {t.get_text() for t in scales[0].get_xticklabels()}
    assert plotting.format_value(high, "short") in labels and plotting.format_value(low, "short") in labels


# -- token headroom: unknown, not dropped ----------------------------------------------------------------------


def test_token_headroom_says_unknown_for_a_deployment_without_a_token_limit(draw: Callable[..., Any]) -> None:
    """A deployment whose answers carry no token limit (a streamed Responses answer; Azure's -1) is listed as
    "unknown", beside the deployments whose headroom is known."""
    panel = _panel("meter-errors.json", "Token headroom now")
    (target,) = panel["targets"]
    assert q.RATELIMIT_LIMIT_REQUESTS in target["expr"] and " or on (deployment) " in target["expr"]
    mappings = panel["fieldConfig"]["defaults"]["mappings"]
    assert {"type": "value", "options": {"-1": {"text": "unknown", "index": 0}}} in mappings
    fig, drawn = draw([panel], Fake(instant=lambda e: [({"deployment": "gpt-4o-mini"}, 0.62),
                                                       ({"deployment": "gpt-5"}, -1.0)]))
    assert drawn[0].series == ["gpt-4o-mini", "gpt-5"]
    texts = [t.get_text() for t in _texts(fig)]
    assert "unknown" in texts and "62.0%" in texts and "-100.0%" not in texts


# -- units -----------------------------------------------------------------------------------------------------


def test_every_time_series_of_calls_has_a_unit() -> None:
    """"Aborted streams by deployment" drew bare numbers (calls per $__rate_interval, which changes with the zoom);
    like every other calls panel it is a rate, in calls/s."""
    panel = _panel("meter-errors.json", "Aborted streams by deployment (calls/s)")
    assert panel["fieldConfig"]["defaults"]["unit"] == "reqps"
    assert panel["targets"][0]["expr"].startswith("sum by (deployment) (rate(")
    unpriced = _panel("meter-cost.json", "Unpriced and estimated calls (calls/s)")
    assert unpriced["fieldConfig"]["defaults"]["unit"] == "reqps"
    for dash in DASHBOARDS.values():
        for p in dash["panels"]:
            if p["type"] == "timeseries" and "calls" in p["title"].lower():
                assert p["fieldConfig"]["defaults"]["unit"] != "short", p["title"]


# -- the header ------------------------------------------------------------------------------------------------


def test_the_header_total_is_the_spend_panels_number() -> None:
    """The header said the demo's ledger total (USD 1.09) over a Spend (range) panel reading $1.06: the header now
    gives the panel's own number (same query, same range) and names the ledger's apart, saying why they differ."""
    from meter.dashboards import pictures

    spend = _panel("meter-cost.json", "Spend (range)")["targets"][0]["expr"]

    def instant(expr: str) -> list[tuple[dict[str, str], float]]:
        if "cost_usd" in expr and "increase(" in expr and "[118s]" in expr and expr.startswith("sum("):
            return [({}, 1.0642)]
        if q.REQUESTS in expr and "[118s]" in expr:
            return [({}, 2160.4)]
        return []

    header = pictures.header({"requests": 2185, "cost_usd": "1.088256432"}, Fake(instant=instant), START,
                             START + 118, seconds=120, scrape_interval_s=1.0)
    assert "Spend (range) $1.06" in header and "2,160 calls" in header
    assert "ledger" in header and "2,185 calls" in header and "USD 1.0883" in header
    assert "USD 1.09" not in header
    assert q.COST_USD in spend


def test_bar_gauges_keep_the_querys_order_and_the_boards_sort_in_promql(draw: Callable[..., Any]) -> None:
    """Grafana draws a bar gauge's values in the order the query returns them; the pictures sorted largest first,
    which hid the lowest token headroom under "+N more". The boards sort in PromQL (spend largest first, headroom
    lowest first, so "unknown" and the nearly exhausted come first) and the picture keeps that order."""
    spend = _panel("meter-cost.json", "Spend by deployment (range)")
    assert spend["targets"][0]["expr"].startswith("sort_desc(")
    headroom = _panel("meter-errors.json", "Token headroom now")
    assert headroom["targets"][0]["expr"].startswith("sort(")
    fig, _ = draw([headroom], Fake(instant=lambda e: [({"deployment": "gpt-5"}, -1.0),
                                                      ({"deployment": "o4-mini"}, 0.05),
                                                      ({"deployment": "gpt-4o-mini"}, 0.9)]))
    names = sorted((t for t in _texts(fig) if t.get_text() in {"gpt-5", "o4-mini", "gpt-4o-mini"}),
                   key=lambda t: -t.get_window_extent().y0)
    assert [t.get_text() for t in names] == ["gpt-5", "o4-mini", "gpt-4o-mini"]
