"""The negotiation's report: title, headline, summary table and figures, read from the result
document (:class:`~pivotal.negotiation.result.NegotiationResult`) and, for the map, its
recorded scenario."""

from __future__ import annotations

from typing import Any

import numpy as np

from pivotal.display import Rounding, rounding_of
from pivotal.negotiation.geography import Location
from pivotal.negotiation.scenario import scenario_from_document
from pivotal.report.documents import recorded_input
from pivotal.report.figures import (
    GREY,
    PALETTE,
    PLOT_AREA_PX,
    Figure,
    Series,
    num,
    place_labels,
)
from pivotal.report.view import Document, KindView, Table


def title(doc: Document) -> str:
    """``Negotiation report (scenario name)``."""
    return f"Negotiation report ({doc.get('scenario', 'negotiation')})"


def money(doc: Document) -> Rounding:
    """Amounts are rounded to the tolerance of the parties' costs."""
    return rounding_of(doc, doc["costs"])


def finding(doc: Document) -> str:
    """The saving against the status quo, the rounds and the transfers."""
    fmt = money(doc).format
    saving = doc["status_quo_cost"] - doc["total_cost"]
    transfers = ", ".join(f"{p} {fmt(t)}" for p, t in doc["transfers"].items())
    return (
        f"the joint plan saves {fmt(saving)} against the status quo in {doc['rounds']} rounds; "
        f"transfers {transfers}"
    )


def summary(doc: Document) -> Table:
    """One row per party: its costs at the status quo and the joint plan, transfer and gain."""
    fmt = money(doc).format
    header = ("party", "cost (status quo)", "cost (joint)", "transfer", "gain")
    rows = tuple(
        (
            p,
            fmt(doc["costs"][p]["status_quo"]),
            fmt(doc["costs"][p]["joint"]),
            fmt(doc["transfers"][p]),
            fmt(doc["gains"][p]),
        )
        for p in doc["parties"]
    )
    rows += (("total", fmt(doc["status_quo_cost"]), fmt(doc["total_cost"]), "", ""),)
    return header, rows


def input_rows(doc: Document) -> list[tuple[str, str]]:
    """The scenario's name and size (a service outcome records no scenario)."""
    data = doc.get("input") or {}
    if not data:
        return []
    return [
        ("scenario", str(data.get("name"))),
        ("products", str(len(data.get("products", [])))),
        ("weeks", str(data.get("weeks"))),
        ("vendors", str(len(data.get("vendors", [])))),
    ]


def _lon_lat(location: Location) -> tuple[float, float]:
    assert location.longitude is not None and location.latitude is not None  # not a table's
    return location.longitude, location.latitude


def negotiation_geography(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Longitude/latitude of vendors (their factories' centroid), sites and regions, when the
    result records its scenario (simulations do; a service outcome holds only public terms)."""
    if not isinstance(doc.get("input"), dict):
        return None
    sc = scenario_from_document(recorded_input(doc), source="recorded input")
    if sc.distances is not None:
        return None  # locations named in a distance table have no coordinates to draw
    points: dict[str, tuple[float, float, str]] = {}
    for v in sc.vendors:
        where = [_lon_lat(f.location) for f in v.factories]
        points[f"vendor:{v.name}"] = (
            float(np.mean([lon for lon, _ in where])),
            float(np.mean([lat for _, lat in where])),
            "vendor",
        )
    for s in sc.retailer.sites:
        points[f"site:{s.name}"] = (*_lon_lat(s.location), "site")
    for r in sc.retailer.regions:
        points[f"region:{r.name}"] = (*_lon_lat(r.location), "region")
    return {"points": points}


def negotiation_figures(doc: Document) -> list[Figure]:
    """Residuals per round, price trajectories, the cost waterfall and a map of the flows."""
    geography = negotiation_geography(doc)
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
    placement = place_labels(
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


VIEW = KindView(
    title=title,
    money=money,
    finding=finding,
    summary=summary,
    input_rows=input_rows,
    figures=negotiation_figures,
)
