"""Figures as data: what each chart plots, built from a result document.

A :class:`Figure` holds its series (the numbers plotted), axis labels with units and a title that
states the finding; :mod:`pivotal.report.render` draws it with matplotlib (PNG/SVG) and plotly
(interactive HTML). Keeping the numbers apart from the drawing lets tests compare the plotted
series with the result, and both renderings show the same data.

Colours: the Okabe-Ito palette (M. Okabe and K. Ito, "Color Universal Design", 2008), safe for
the common colour-vision deficiencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
GREY = "#7F7F7F"
SeriesKind = Literal["bar", "line", "step", "marker", "area", "waterfall"]


@dataclass(frozen=True)
class Series:
    """One plotted series.

    ``bar``: categories ``x`` and heights ``y`` (grouped with the figure's other bars);
    ``line``/``step``: a polyline; ``marker``: points with optional ``text`` labels;
    ``area``: a closed polygon; ``waterfall``: ``y`` are steps with ``measure`` per step
    (``absolute``, ``relative`` or ``total``).
    """

    name: str
    x: tuple[Any, ...]
    y: tuple[float, ...]
    kind: SeriesKind
    color: str
    dash: bool = False
    width: float = 2.0
    text: tuple[str, ...] = ()
    measure: tuple[str, ...] = ()
    legend: bool = True
    label_offset: tuple[int, int] = (6, 6)
    legend_label: str = ""
    text_positions: tuple[str, ...] = ()

    def label(self) -> str:
        """The legend's label (the series name unless the legend says it shorter)."""
        return self.legend_label or self.name

    def position(self, i: int) -> str:
        """Where the ``i``-th text label sits: ``top right``, ``bottom left``, ..."""
        if i < len(self.text_positions):
            return self.text_positions[i]
        return "bottom right" if self.label_offset[1] < 0 else "top right"


@dataclass(frozen=True)
class Figure:
    """A chart: its series, axes with units and a title stating the finding."""

    key: str
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    log_y: bool = False
    equal_aspect: bool = False
    caption: str = ""
    hlines: tuple[tuple[float, str], ...] = field(default=())
    vlines: tuple[tuple[float, str], ...] = field(default=())

    def data(self) -> dict[str, dict[str, list[Any]]]:
        """The plotted numbers by series name (what tests compare with the result)."""
        return {s.name: {"x": list(s.x), "y": list(s.y)} for s in self.series}


def num(x: float) -> str:
    """A compact number for titles (4 significant digits; never ``-0``)."""
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if abs(x - round(x)) < 1e-9 * max(1.0, abs(x)):
        return f"{round(x):,}"
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


# ------------------------------------------------------------------------------ label placement
PLOT_AREA_PX = (860.0, 460.0)
"""The plotting area of a figure in pixels (of the 1000 x 600 PNG), for placing labels."""
_CHAR_PX, _LINE_PX, _GAP_PX, _DOT_PX = 6.0, 13.0, 6.0, 6.0
POSITIONS = ("top right", "bottom right", "top left", "bottom left")


Box = tuple[float, float, float, float]


def _label_box(x: float, y: float, text: str, position: str) -> Box:
    """The pixel box (x0, y0, x1, y1) of a label at pixel point (x, y)."""
    w, h = _CHAR_PX * len(text), _LINE_PX
    x0 = x + _GAP_PX if position.endswith("right") else x - _GAP_PX - w
    y0 = y + _GAP_PX if position.startswith("top") else y - _GAP_PX - h
    return (x0, y0, x0 + w, y0 + h)


def _overlap(a: Box, b: Box) -> float:
    dx = min(a[2], b[2]) - max(a[0], b[0])
    dy = min(a[3], b[3]) - max(a[1], b[1])
    return dx * dy if dx > 0 and dy > 0 else 0.0


def place_labels(
    points: Sequence[tuple[float, float, str]], area: tuple[float, float]
) -> list[str]:
    """A position per label (``top right``, ...) so that labels of nearby points neither overlap
    each other or the points nor leave the plotting area (greedy, first fit; the least overlap
    when nothing fits). Pixels come from an equal-aspect fit of the points into ``area``, with
    the 10% margins the renderers add."""
    if not points:
        return []
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    scale = min(area[0] / (1.2 * span_x), area[1] / (1.2 * span_y))
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    px = [(area[0] / 2 + (x - cx) * scale, area[1] / 2 + (y - cy) * scale) for x, y, _ in points]
    dots = [(x - _DOT_PX, y - _DOT_PX, x + _DOT_PX, y + _DOT_PX) for x, y in px]
    placed: list[Box] = []
    chosen = [POSITIONS[0]] * len(points)
    for i in sorted(range(len(points)), key=lambda k: (-px[k][1], px[k][0])):
        best, best_cost = POSITIONS[0], math.inf
        for position in POSITIONS:
            box = _label_box(*px[i], points[i][2], position)
            outside = max(0.0, -box[0]) + max(0.0, box[2] - area[0])
            outside += max(0.0, -box[1]) + max(0.0, box[3] - area[1])
            cost = sum(_overlap(box, b) for b in placed)
            cost += sum(_overlap(box, d) for j, d in enumerate(dots) if j != i)
            cost += outside * _LINE_PX
            if cost < best_cost:
                best, best_cost = position, cost
            if cost == 0:
                break
        placed.append(_label_box(*px[i], points[i][2], best))
        chosen[i] = best
    return chosen


# ----------------------------------------------------------------------------------- auctions


def values_at(mapping: dict[str, float], keys: Sequence[str]) -> tuple[float, ...]:
    """``mapping``'s values at ``keys`` (0 where missing), as plotted series values."""
    return tuple(float(mapping.get(k, 0.0)) for k in keys)
