"""The auction's report: title, headline, summary table and figures, read from the result
document (:class:`~pivotal.auctions.result.AuctionResult`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pivotal.display import Rounding, rounding_of
from pivotal.report.figures import GREY, PALETTE, Figure, Series, num, values_at
from pivotal.report.view import Document, KindView, Table


def title(doc: Document) -> str:
    """``Auction report (vcg)``."""
    return f"Auction report ({doc['mechanism']})"


def money(doc: Document) -> Rounding:
    """Amounts are rounded to the tolerance of the bids' magnitude."""
    return rounding_of(doc, doc["values"], doc["welfare"])


def finding(doc: Document) -> str:
    """Welfare and revenue; the sequential auction's; whether VCG is in the core."""
    fmt = money(doc).format
    comparison = doc.get("comparison") or {}
    line = f"{doc['mechanism']}: welfare {fmt(doc['welfare'])}, revenue {fmt(doc['revenue'])}"
    seq = comparison.get("sequential_second_price")
    if seq is not None:
        line += (
            f"; the sequential auction raises {fmt(seq['revenue'])} with welfare "
            f"{fmt(seq['welfare'])}"
        )
    if comparison.get("vcg_in_core") is True:
        line += "; the VCG outcome is in the core"
    elif comparison.get("vcg_in_core") is False and comparison.get("core") is not None:
        b = comparison["blocking"]
        line += (
            f"; VCG is outside the core (bidders {', '.join(b['bidders'])} offer "
            f"{fmt(b['offer'])}), the core rule raises {fmt(comparison['core']['revenue'])}"
        )
    return line


def summary(doc: Document) -> Table:
    """One row per bidder: what it wins, its value, payment and utility; then the totals."""
    fmt = money(doc).format
    header = ("bidder", "wins", "value", "payment", "utility")
    rows = tuple(
        (
            b,
            ", ".join(doc["allocation"].get(b, [])) or "-",
            fmt(doc["values"][b]),
            fmt(doc["payments"][b]),
            fmt(doc["utilities"][b]),
        )
        for b in doc["payments"]
    )
    rows += (("total", "", fmt(doc["welfare"]), fmt(doc["revenue"]), ""),)
    return header, rows


def input_rows(doc: Document) -> list[tuple[str, str]]:
    """Numbers of items and bids."""
    data = doc.get("input") or {}
    return [("items", str(len(data.get("items", [])))), ("bids", str(len(data.get("bids", []))))]


def auction_figures(doc: Document) -> list[Figure]:
    """Per-bidder values and payments under VCG (or the document's rule when the run skipped
    the core comparison), the core rule and the sequential auction; the core polytope when
    there are exactly two winners. Everything is read from the document's ``comparison``."""
    comparison = doc.get("comparison") or {}
    vcg = comparison.get("vcg") or doc
    core = comparison.get("core")
    seq = comparison.get("sequential_second_price")
    rule = "VCG" if comparison.get("vcg") else str(doc["mechanism"])
    bidders = list(doc["payments"])
    x = tuple(bidders)
    series = [
        Series(
            f"value ({rule} allocation)", x, values_at(vcg["values"], bidders), "bar", PALETTE[0]
        ),
        Series(f"{rule} payment", x, values_at(vcg["payments"], bidders), "bar", PALETTE[1]),
    ]
    revenues = [f"{rule} {num(vcg['revenue'])}"]
    if core is not None:
        series.append(
            Series(
                "core payment (VCG-nearest)",
                x,
                values_at(core["payments"], bidders),
                "bar",
                PALETTE[2],
            )
        )
        revenues.append(f"core {num(core['revenue'])}")
    loss = 0.0
    if seq is not None:
        series += [
            Series("sequential payment", x, values_at(seq["payments"], bidders), "bar", PALETTE[3]),
            Series(
                "value (sequential allocation)",
                x,
                values_at(seq["values"], bidders),
                "bar",
                PALETTE[4],
            ),
        ]
        revenues.append(f"sequential {num(seq['revenue'])}")
        loss = vcg["welfare"] - seq["welfare"]
    title = (
        "Revenue: "
        + ", ".join(revenues)
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
            tuple(series),
            caption=(
                "Each bidder's reported value of what it wins and what it pays under each rule."
            ),
        )
    ]
    polytope = comparison.get("polytope")
    if polytope is not None:
        figures.append(_core_figure(polytope))
    return figures


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


VIEW = KindView(
    title=title,
    money=money,
    finding=finding,
    summary=summary,
    input_rows=input_rows,
    figures=auction_figures,
)
