"""The procurement market's report: title, headline, summary table and figures, read from the
result document (:class:`~pivotal.markets.result.MarketResult`) and its recorded input."""

from __future__ import annotations

from typing import Any

import numpy as np

from pivotal.display import Rounding, rounding_of
from pivotal.markets.curves import Role
from pivotal.markets.market import market_from_document
from pivotal.report.documents import recorded_input
from pivotal.report.figures import PALETTE, Figure, Series, num, values_at
from pivotal.report.view import Document, KindView, Table


def title(doc: Document) -> str:
    """``Procurement market report``."""
    return "Procurement market report"


def money(doc: Document) -> Rounding:
    """Amounts are rounded to the tolerance of the curves' magnitude."""
    return rounding_of(doc, doc["values"], doc["transfers"], doc["welfare"])


def finding(doc: Document) -> str:
    """Price, quantity and VCG deficit; what the largest producer gains by withholding."""
    fmt = money(doc).format
    w = doc.get("withholding") or {}
    line = (
        f"clearing price {fmt(doc['price'])}, {fmt(doc['traded'])} units traded; VCG "
        f"deficit {fmt(doc['budget'])}"
    )
    if w:
        line += (
            f"; {w['producer']} gains {fmt(w['profit_gain'])} by withholding at the uniform "
            f"price, {fmt(w['vcg_utility_at_best_withholding'] - w['vcg_utility_truthful'])} "
            "under VCG"
        )
    return line


def summary(doc: Document) -> Table:
    """One row per agent: role, quantity, transfers under both rules, utility."""
    fmt = money(doc).format
    header = ("agent", "role", "quantity", "VCG transfer", "uniform-price transfer", "utility")
    uniform = doc["uniform_price"]["transfers"]
    rows = tuple(
        (
            a,
            doc["roles"][a],
            fmt(doc["quantities"][a]),
            fmt(doc["transfers"][a]),
            fmt(uniform[a]),
            fmt(doc["utilities"][a]),
        )
        for a in doc["transfers"]
    )
    return header, rows


def input_rows(doc: Document) -> list[tuple[str, str]]:
    """Numbers of producers and buyers."""
    data = doc.get("input") or {}
    return [
        ("producers", str(len(data.get("producers", [])))),
        ("buyers", str(len(data.get("buyers", [])))),
    ]


def market_curves(doc: dict[str, Any], points: int = 241) -> dict[str, list[float]]:
    """Aggregate supply and demand quantities on a price grid that contains the clearing price."""
    market = market_from_document(recorded_input(doc), source="recorded input")
    top = 0.0
    for agent in market.agents:
        c = agent.curve
        top = max(top, abs(c.marginal(0.0)), abs(c.marginal(c.capacity)))
    top = max(top, float(doc["price"])) * 1.05 or 1.0
    grid = np.unique(np.concatenate([np.linspace(0.0, top, points), [float(doc["price"])]]))
    supply, demand = [], []
    for p in grid:
        s = d = 0.0
        for agent in market.agents:
            lo, hi = agent.curve.response(float(p))
            if agent.role is Role.PRODUCER:
                s += hi
            else:
                d += lo
        supply.append(s)
        demand.append(d)
    return {"price": grid.tolist(), "supply_q": supply, "demand_q": demand}


def market_figures(doc: Document) -> list[Figure]:
    """Supply and demand with the clearing point; transfers under VCG and the uniform price;
    the largest producer's withholding profit under both."""
    curves = market_curves(doc)
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
                    values_at(doc["transfers"], agents),
                    "bar",
                    PALETTE[0],
                ),
                Series(
                    "uniform-price transfer",
                    tuple(agents),
                    values_at(uniform, agents),
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


VIEW = KindView(
    title=title,
    money=money,
    finding=finding,
    summary=summary,
    input_rows=input_rows,
    figures=market_figures,
)
