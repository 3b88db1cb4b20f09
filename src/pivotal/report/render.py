"""Drawing :class:`~pivotal.report.figures.Figure` objects: matplotlib for PNG/SVG, plotly for
interactive HTML (plotly.js is embedded once per page by :mod:`pivotal.report.html`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from matplotlib.figure import Figure as MplFigure

from pivotal.report.figures import GREY, PALETTE, Figure, Series  # noqa: E402

PNG_SIZE = (1000, 600)  # pixels
_DPI = 100


def _waterfall_bars(s: Series) -> tuple[list[float], list[float], list[str]]:
    """Bottoms, heights and colours of a waterfall's bars."""
    bottoms, heights, colors = [], [], []
    level = 0.0
    for value, measure in zip(s.y, s.measure, strict=True):
        if measure == "absolute":
            bottoms.append(0.0)
            heights.append(value)
            level = value
            colors.append(PALETTE[0])
        elif measure == "total":
            bottoms.append(0.0)
            heights.append(level)
            colors.append(PALETTE[7])
        else:
            bottoms.append(level if value >= 0 else level + value)
            heights.append(abs(value))
            level += value
            colors.append(PALETTE[3] if value > 0 else PALETTE[2])
    return bottoms, heights, colors


def save_static(fig: Figure, folder: Path) -> dict[str, Path]:
    """Write ``KEY.png`` (``PNG_SIZE`` pixels) and ``KEY.svg``; return their paths."""
    width, height = PNG_SIZE
    # A bare matplotlib Figure draws with the Agg canvas without touching pyplot's global state
    # (a notebook user's backend stays as it is) and is freed with its last reference.
    mfig = MplFigure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    ax = mfig.subplots()
    try:
        bars = [s for s in fig.series if s.kind == "bar"]
        if bars:
            cats = list(dict.fromkeys(c for s in bars for c in s.x))
            pos = np.arange(len(cats))
            w = 0.8 / len(bars)
            for i, s in enumerate(bars):
                idx = [cats.index(c) for c in s.x]
                ax.bar(
                    pos[idx] + (i - (len(bars) - 1) / 2) * w, s.y, w, label=s.name, color=s.color
                )
            ax.set_xticks(pos, [str(c) for c in cats])
            ax.axhline(0.0, color=GREY, linewidth=0.8)
        for s in fig.series:
            style = "--" if s.dash else "-"
            label = s.label() if s.legend else None
            if s.kind == "line":
                ax.plot(s.x, s.y, style, color=s.color, linewidth=s.width, label=label)
            elif s.kind == "step":
                ax.step(
                    s.x, s.y, style, where="post", color=s.color, linewidth=s.width, label=label
                )
            elif s.kind == "marker":
                ax.scatter(s.x, s.y, color=s.color, s=60, zorder=5, label=label)
                for i, (x, y, t) in enumerate(zip(s.x, s.y, s.text, strict=False)):
                    position = s.position(i)
                    right, top = position.endswith("right"), position.startswith("top")
                    ax.annotate(
                        t,
                        (x, y),
                        textcoords="offset points",
                        xytext=(6 if right else -6, 4 if top else -4),
                        ha="left" if right else "right",
                        va="bottom" if top else "top",
                        fontsize=9,
                    )
            elif s.kind == "area":
                ax.fill(s.x, s.y, color=s.color, alpha=0.3, label=label)
            elif s.kind == "waterfall":
                bottoms, heights, colors = _waterfall_bars(s)
                ax.bar(range(len(s.x)), heights, bottom=bottoms, color=colors)
                ax.set_xticks(
                    range(len(s.x)), [str(x) for x in s.x], rotation=35, ha="right", fontsize=8
                )
        for y, label in fig.hlines:
            ax.axhline(y, color=GREY, linestyle=":", linewidth=1)
            ax.annotate(
                label,
                (0, y),
                xycoords=("axes fraction", "data"),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=8,
                color=GREY,
            )
        for x, label in fig.vlines:
            ax.axvline(x, color=GREY, linestyle=":", linewidth=1)
            ax.annotate(
                label,
                (x, 0),
                xycoords=("data", "axes fraction"),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=8,
                color=GREY,
            )
        if fig.log_y:
            ax.set_yscale("log")
        if fig.equal_aspect:
            ax.set_aspect("equal", adjustable="datalim")
        if any(s.kind == "marker" and s.text for s in fig.series):
            ax.margins(0.1)  # room for the points' labels inside the axes
        ax.set_title(textwrap.fill(fig.title, 90), fontsize=11)
        ax.set_xlabel(fig.x_label)
        ax.set_ylabel(fig.y_label)
        ax.grid(True, alpha=0.3)
        if any(s.legend and s.kind != "waterfall" for s in fig.series):
            ax.legend(fontsize=8, loc="best")
        mfig.tight_layout()
        paths = {"png": folder / f"{fig.key}.png", "svg": folder / f"{fig.key}.svg"}
        mfig.savefig(paths["png"], dpi=_DPI)
        mfig.savefig(paths["svg"])
        return paths
    finally:
        mfig.clear()


def plotly_figure(fig: Figure) -> go.Figure:
    """The interactive version of a figure."""
    out = go.Figure()
    for s in fig.series:
        dash = "dash" if s.dash else "solid"
        if s.kind == "bar":
            out.add_trace(go.Bar(name=s.name, x=list(s.x), y=list(s.y), marker_color=s.color))
        elif s.kind in ("line", "step"):
            out.add_trace(
                go.Scatter(
                    name=s.label() if s.legend else s.name,
                    x=list(s.x),
                    y=list(s.y),
                    mode="lines",
                    hovertext=s.name,
                    line={
                        "color": s.color,
                        "dash": dash,
                        "width": s.width,
                        "shape": "hv" if s.kind == "step" else "linear",
                    },
                    showlegend=s.legend,
                    legendgroup=s.label(),
                )
            )
        elif s.kind == "marker":
            out.add_trace(
                go.Scatter(
                    name=s.name,
                    x=list(s.x),
                    y=list(s.y),
                    mode="markers+text" if s.text else "markers",
                    text=list(s.text) or None,
                    textposition=[s.position(i) for i in range(len(s.x))],
                    cliponaxis=False,
                    marker={"color": s.color, "size": 11},
                )
            )
        elif s.kind == "area":
            out.add_trace(
                go.Scatter(
                    name=s.name,
                    x=list(s.x),
                    y=list(s.y),
                    fill="toself",
                    mode="lines",
                    line={"color": s.color},
                    opacity=0.4,
                )
            )
        elif s.kind == "waterfall":
            out.add_trace(
                go.Waterfall(
                    name=s.name,
                    x=list(s.x),
                    y=list(s.y),
                    measure=list(s.measure),
                    increasing={"marker": {"color": PALETTE[3]}},
                    decreasing={"marker": {"color": PALETTE[2]}},
                    totals={"marker": {"color": PALETTE[7]}},
                )
            )
    for y, label in fig.hlines:
        # the template's shape default is a line of width 0: the width must be given
        out.add_hline(y=y, line_dash="dot", line_color=GREY, line_width=1, annotation_text=label)
    for x, label in fig.vlines:
        out.add_vline(x=x, line_dash="dot", line_color=GREY, line_width=1, annotation_text=label)
    out.update_layout(
        title={"text": fig.title, "font": {"size": 15}},
        xaxis_title=fig.x_label,
        yaxis_title=fig.y_label,
        template="simple_white",
        colorway=list(PALETTE),
        barmode="group",
        height=520,
        margin={"t": 70, "l": 70, "r": 30, "b": 70},
        legend={"font": {"size": 11}},
    )
    if fig.log_y:
        out.update_yaxes(type="log")
    if fig.equal_aspect:
        out.update_yaxes(scaleanchor="x", scaleratio=1)
    return out


def plotly_div(fig: Figure) -> str:
    """An HTML ``<div>`` drawing the figure with the page's plotly.js (no external files)."""
    html: str = pio.to_html(
        plotly_figure(fig),
        full_html=False,
        include_plotlyjs=False,
        div_id=f"plot-{fig.key}",
        config={"displaylogo": False, "responsive": True},
    )
    return html


def plotly_js() -> str:
    """The plotly.js bundle shipped with the plotly package (embedded inline, works offline)."""
    from plotly.offline import get_plotlyjs

    js: str = get_plotlyjs()
    return js
