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

from pivotal.display import rounding_of

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


def _place_labels(
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
def auction_figures(doc: dict[str, Any], comparison: dict[str, Any]) -> list[Figure]:
    """Per-bidder values and payments under VCG, the core rule and the sequential auction; the
    core polytope when there are exactly two winners.

    ``comparison`` holds ``vcg``, ``core`` and ``sequential`` outcome documents (see
    :func:`pivotal.report.documents.auction_comparison`).
    """
    vcg, core, seq = comparison["vcg"], comparison["core"], comparison["sequential"]
    bidders = list(vcg["payments"])
    x = tuple(bidders)
    series = (
        Series("value (VCG allocation)", x, _vals(vcg["values"], bidders), "bar", PALETTE[0]),
        Series("VCG payment", x, _vals(vcg["payments"], bidders), "bar", PALETTE[1]),
        Series(
            "core payment (VCG-nearest)", x, _vals(core["payments"], bidders), "bar", PALETTE[2]
        ),
        Series("sequential payment", x, _vals(seq["payments"], bidders), "bar", PALETTE[3]),
        Series(
            "value (sequential allocation)", x, _vals(seq["values"], bidders), "bar", PALETTE[4]
        ),
    )
    loss = vcg["welfare"] - seq["welfare"]
    title = (
        f"Revenue: VCG {num(vcg['revenue'])}, core {num(core['revenue'])}, sequential "
        f"{num(seq['revenue'])}"
        + (
            f"; the sequential auction loses {num(loss)} of welfare {num(vcg['welfare'])}"
            if loss > 1e-9
            else ""
        )
    )
    figures = [
        Figure(
            "bidders",
            title,
            "bidder",
            "money (currency units)",
            series,
            caption=(
                "Each bidder's reported value of what it wins and what it pays under each rule."
            ),
        )
    ]
    polytope = comparison.get("polytope")
    if polytope is not None:
        figures.append(_core_figure(polytope))
    return figures


def _vals(mapping: dict[str, float], keys: Sequence[str]) -> tuple[float, ...]:
    return tuple(float(mapping.get(k, 0.0)) for k in keys)


def core_polygon(
    lower: Sequence[float], upper: Sequence[float], joint_rhs: float
) -> list[tuple[float, float]]:
    """Vertices (counter-clockwise) of ``{lower <= p <= upper, p1 + p2 >= joint_rhs}``."""
    (l1, l2), (u1, u2) = lower, upper
    corners = [(l1, l2), (u1, l2), (u1, u2), (l1, u2)]
    inside = [c for c in corners if c[0] + c[1] >= joint_rhs - 1e-12]
    cuts = []
    for p1 in (l1, u1):  # the line p1 + p2 = rhs on the box edges
        p2 = joint_rhs - p1
        if l2 - 1e-12 <= p2 <= u2 + 1e-12:
            cuts.append((p1, p2))
    for p2 in (l2, u2):
        p1 = joint_rhs - p2
        if l1 - 1e-12 <= p1 <= u1 + 1e-12:
            cuts.append((p1, p2))
    points = list(dict.fromkeys([*inside, *cuts]))
    if not points:
        return []
    cx = sum(p[0] for p in points) / len(points)
    cy = sum(p[1] for p in points) / len(points)
    return sorted(points, key=lambda p: math.atan2(p[1] - cy, p[0] - cx))


def _core_figure(poly: dict[str, Any]) -> Figure:
    w1, w2 = poly["winners"]
    vertices = core_polygon(poly["lower"], poly["upper"], poly["joint_rhs"])
    vcg_point, chosen = poly["vcg"], poly["core"]
    inside = poly["vcg_in_core"]
    series: list[Series] = []
    if vertices:
        closed = [*vertices, vertices[0]]
        series.append(
            Series(
                "core (payments no coalition blocks)",
                tuple(p[0] for p in closed),
                tuple(p[1] for p in closed),
                "area",
                PALETTE[2],
            )
        )
    series.append(
        Series(
            "VCG payments", (vcg_point[0],), (vcg_point[1],), "marker", PALETTE[1], text=("VCG",)
        )
    )
    series.append(
        Series(
            "core payments (VCG-nearest)",
            (chosen[0],),
            (chosen[1],),
            "marker",
            PALETTE[0],
            text=("core",),
        )
    )
    lo = min(poly["lower"]) - 1
    hi = max(poly["upper"]) + 1
    series.append(
        Series(
            f"{w1}'s + {w2}'s payment = {num(poly['joint_rhs'])} (losers' bid)",
            (lo, hi),
            (poly["joint_rhs"] - lo, poly["joint_rhs"] - hi),
            "line",
            GREY,
            dash=True,
        )
    )
    where = "inside" if inside else "outside"
    title = (
        f"VCG payments ({num(vcg_point[0])}, {num(vcg_point[1])}) lie {where} the core; the core "
        f"rule charges ({num(chosen[0])}, {num(chosen[1])})"
    )
    return Figure(
        "core",
        title,
        f"payment of bidder {w1} (currency units)",
        f"payment of bidder {w2} (currency units)",
        tuple(series),
        equal_aspect=True,
        caption=(
            "Core payments for the two winners: at least their VCG payments, at most their bids, "
            "and together at least what the losing coalition offers."
        ),
    )


# ----------------------------------------------------------------------------------- markets
def market_figures(doc: dict[str, Any], curves: dict[str, Any]) -> list[Figure]:
    """Supply and demand with the clearing point; transfers under VCG and the uniform price;
    the largest producer's withholding profit under both."""
    figures: list[Figure] = []
    price, traded = float(doc["price"]), float(doc["traded"])
    figures.append(
        Figure(
            "supply_demand",
            f"The market clears at price {num(price)} with {num(traded)} units traded",
            "quantity (units)",
            "price (currency units per unit)",
            (
                Series(
                    "supply (aggregate marginal cost)",
                    tuple(curves["supply_q"]),
                    tuple(curves["price"]),
                    "line",
                    PALETTE[0],
                ),
                Series(
                    "demand (aggregate marginal benefit)",
                    tuple(curves["demand_q"]),
                    tuple(curves["price"]),
                    "line",
                    PALETTE[1],
                ),
                Series(
                    "clearing point",
                    (traded,),
                    (price,),
                    "marker",
                    PALETTE[7],
                    text=(f"p = {num(price)}",),
                ),
            ),
            hlines=((price, "clearing price"),),
            vlines=((traded, "traded quantity"),),
            caption=(
                "Reported curves summed over agents; the clearing point maximizes net social "
                "benefit."
            ),
        )
    )
    agents = list(doc["transfers"])
    uniform = doc["uniform_price"]["transfers"]
    budget = float(doc["budget"])
    figures.append(
        Figure(
            "transfers",
            (
                f"VCG runs a deficit of {num(budget)}; the uniform price balances the budget"
                if budget > 1e-9
                else f"VCG budget {num(budget)} versus a balanced uniform-price market"
            ),
            "agent",
            "transfer to the agent (currency units; negative = pays)",
            (
                Series(
                    "VCG transfer",
                    tuple(agents),
                    _vals(doc["transfers"], agents),
                    "bar",
                    PALETTE[0],
                ),
                Series(
                    "uniform-price transfer",
                    tuple(agents),
                    _vals(uniform, agents),
                    "bar",
                    PALETTE[1],
                ),
            ),
            caption=(
                "Positive: paid to the agent (producers); negative: paid by the agent (buyers)."
            ),
        )
    )
    w = doc.get("withholding")
    if w and w.get("curve"):
        curve = w["curve"]
        offered = tuple(100 * float(c["fraction"]) for c in curve)
        figures.append(
            Figure(
                "withholding",
                (
                    f"{w['producer']} gains {num(w['profit_gain'])} by withholding at the uniform "
                    f"price; under VCG truth-telling pays most ({num(w['vcg_utility_truthful'])})"
                ),
                f"share of {w['producer']}'s true supply offered (%)",
                "profit of the producer (currency units)",
                (
                    Series(
                        "uniform-price profit",
                        offered,
                        tuple(float(c["uniform_profit"]) for c in curve),
                        "line",
                        PALETTE[3],
                    ),
                    Series(
                        "VCG utility",
                        offered,
                        tuple(float(c["vcg_utility"]) for c in curve),
                        "line",
                        PALETTE[0],
                    ),
                ),
                vlines=((100.0, "truthful"),),
                caption=(
                    "The producer offers only part of its supply curve; everyone else is truthful."
                ),
            )
        )
    return figures


# ----------------------------------------------------------------------------------- negotiation
def negotiation_figures(doc: dict[str, Any], geography: dict[str, Any] | None) -> list[Figure]:
    """Residuals per round, price trajectories, the cost waterfall and a map of the flows."""
    figures: list[Figure] = []
    res = doc.get("residuals") or []
    if res:
        rounds = tuple(int(r["round"]) + 1 for r in res)
        figures.append(
            Figure(
                "residuals",
                f"Consensus reached in {doc['rounds']} rounds (primal and dual residuals within "
                "tolerance)",
                "round",
                "residual (units / currency per unit, log scale)",
                (
                    Series(
                        "primal residual",
                        rounds,
                        tuple(float(r["primal"]) for r in res),
                        "line",
                        PALETTE[0],
                    ),
                    Series(
                        "dual residual",
                        rounds,
                        tuple(float(r["dual"]) for r in res),
                        "line",
                        PALETTE[3],
                    ),
                    Series(
                        "primal tolerance",
                        rounds,
                        tuple(float(r["eps_primal"]) for r in res),
                        "line",
                        PALETTE[0],
                        dash=True,
                        width=1.0,
                    ),
                    Series(
                        "dual tolerance",
                        rounds,
                        tuple(float(r["eps_dual"]) for r in res),
                        "line",
                        PALETTE[3],
                        dash=True,
                        width=1.0,
                    ),
                ),
                log_y=True,
                caption=(
                    "Plans disagree by the primal residual; the consensus plan moves by the dual "
                    "residual."
                ),
            )
        )
    prices = doc.get("price_trajectories") or {}
    if prices:
        series = []
        for i, (label, values) in enumerate(prices.items()):
            series.append(
                Series(
                    label,
                    tuple(range(1, len(values) + 1)),
                    tuple(float(v) for v in values),
                    "line",
                    PALETTE[i % len(PALETTE)],
                )
            )
        figures.append(
            Figure(
                "prices",
                "Prices settle as the plans agree",
                "round",
                "price on the plan entry (currency units per unit)",
                tuple(series),
                caption="Each vendor's price on its largest flows of the joint plan, per round.",
            )
        )
    figures.append(_waterfall(doc))
    if geography is not None:
        figures.append(_flow_map(doc, geography))
    return figures


def _waterfall(doc: dict[str, Any]) -> Figure:
    x: list[str] = []
    y: list[float] = []
    measure: list[str] = []
    for party in doc["parties"]:
        c = doc["costs"][party]
        t = float(doc["transfers"][party])
        x += [
            f"{party}: status quo",
            f"{party}: plan change",
            f"{party}: transfer",
            f"{party}: net",
        ]
        y += [float(c["status_quo"]), float(c["joint"]) - float(c["status_quo"]), -t, 0.0]
        measure += ["absolute", "relative", "relative", "total"]
    saving = float(doc["status_quo_cost"]) - float(doc["total_cost"])
    share = 100 * saving / float(doc["status_quo_cost"]) if doc["status_quo_cost"] else 0.0
    money = rounding_of(doc, doc["costs"]).format
    gains = ", ".join(f"{p} {money(float(g))}" for p, g in doc["gains"].items())
    return Figure(
        "waterfall",
        f"The joint plan saves {money(saving)} ({share:.1f}%); gains after transfers: {gains}",
        "party and step",
        "cost (currency units)",
        (Series("cost", tuple(x), tuple(y), "waterfall", PALETTE[0], measure=tuple(measure)),),
        caption=(
            "Per party: cost at the status quo, change under the joint plan, transfer received "
            "(a negative cost), and the net cost."
        ),
    )


def _flow_map(doc: dict[str, Any], geo: dict[str, Any]) -> Figure:
    """Vendor-to-site flows on longitude/latitude (status quo dashed, joint plan solid)."""
    series: list[Series] = []
    points = geo["points"]  # name -> (lon, lat, kind)

    def flows(plan: dict[str, Any]) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for vendor, products in plan.items():
            for by_site in products.values():
                for site, weeks in by_site.items():
                    out[(vendor, site)] = out.get((vendor, site), 0.0) + float(sum(weeks))
        return out

    joint, sq = flows(doc["plan"]), flows(doc["status_quo_plan"])
    biggest = max([*joint.values(), *sq.values(), 1e-12])
    for label, data, dash, color in (
        ("status quo", sq, True, GREY),
        ("joint plan", joint, False, PALETTE[0]),
    ):
        first = True
        for (vendor, site), units in sorted(data.items()):
            if units <= 1e-6 * biggest:
                continue
            a, b = points[f"vendor:{vendor}"], points[f"site:{site}"]
            series.append(
                Series(
                    f"{label}: {vendor} -> {site} ({num(units)} units)",
                    (a[0], b[0]),
                    (a[1], b[1]),
                    "line",
                    color,
                    dash=dash,
                    width=1.0 + 6.0 * units / biggest,
                    legend=first,
                    legend_label=f"{label} (line width: units shipped)",
                )
            )
            first = False
    names = list(points)
    placement = _place_labels(
        [(points[n][0], points[n][1], n.split(":", 1)[1]) for n in names], PLOT_AREA_PX
    )
    positions = dict(zip(names, placement, strict=True))
    for kind, color in (("vendor", PALETTE[3]), ("site", PALETTE[0]), ("region", PALETTE[2])):
        keys = [n for n in points if n.startswith(kind + ":")]
        named = [(n.split(":", 1)[1], points[n]) for n in keys]
        if named:
            series.append(
                Series(
                    {"vendor": "vendors", "site": "retailer sites", "region": "customer regions"}[
                        kind
                    ],
                    tuple(p[0] for _, p in named),
                    tuple(p[1] for _, p in named),
                    "marker",
                    color,
                    text=tuple(n for n, _ in named),
                    text_positions=tuple(positions[n] for n in keys),
                )
            )
    moved = sorted(
        {
            site
            for (v, site), u in joint.items()
            if u > 1e-6 * biggest and sq.get((v, site), 0.0) <= 1e-6 * biggest
        }
    )
    title = (
        f"The joint plan ships to {', '.join(moved)} instead of the status-quo sites"
        if moved
        else "Flows from vendors to retailer sites: status quo and joint plan"
    )
    return Figure(
        "map",
        title,
        "longitude (degrees)",
        "latitude (degrees)",
        tuple(series),
        equal_aspect=True,
        caption="Line width grows with the units shipped over all weeks; no map tiles are used.",
    )
