"""Reading result documents: their kind, their recorded input, and what the figures need
beyond the result (the other payment rules, aggregate curves, coordinates)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from pivotal.auctions import Auction
from pivotal.auctions.core_payments import is_in_core
from pivotal.auctions.formats import auction_from_document
from pivotal.auctions.payment_rules import PaymentRule, core_outcome, run_auction
from pivotal.auctions.sequential import sequential_second_price
from pivotal.auctions.winner_determination import solve_wdp
from pivotal.errors import InputError
from pivotal.markets.curves import Role
from pivotal.markets.market import Market, market_from_document
from pivotal.negotiation.geography import metro
from pivotal.negotiation.scenario import Scenario, scenario_from_document

Kind = Literal["auction", "market", "negotiation"]


def result_kind(doc: Any) -> Kind:
    """Which mechanism a result document comes from.

    Raises
    ------
    InputError
        If the document is not a pivotal result.
    """
    if isinstance(doc, dict):
        if "status_quo_plan" in doc and "plan" in doc:
            return "negotiation"
        if "uniform_price" in doc and "quantities" in doc:
            return "market"
        if "allocation" in doc and "payments" in doc:
            return "auction"
    raise InputError(
        "not a pivotal result: expected the JSON of 'pivotal auction run', 'pivotal market run' "
        "or 'pivotal negotiate run' (--json or -o)"
    )


def recorded_input(doc: dict[str, Any]) -> dict[str, Any]:
    """The input document recorded in a result."""
    data = doc.get("input")
    if not isinstance(data, dict):
        raise InputError(
            "the result records no input ('input' field); give the input file with --input",
            field="input",
        )
    return data


def auction_of(doc: dict[str, Any]) -> Auction:
    """The auction a result was computed from."""
    return auction_from_document(recorded_input(doc), source="recorded input")


def market_of(doc: dict[str, Any]) -> Market:
    """The market a result was computed from."""
    return market_from_document(recorded_input(doc), source="recorded input")


def scenario_of(doc: dict[str, Any]) -> Scenario:
    """The negotiation scenario a result was computed from."""
    return scenario_from_document(recorded_input(doc), source="recorded input")


def auction_comparison(doc: dict[str, Any]) -> dict[str, Any]:
    """VCG, VCG-nearest core and sequential outcomes of the recorded auction, and the core
    polytope when VCG has exactly two winners."""
    auction = auction_of(doc)
    vcg = run_auction(auction, PaymentRule.VCG)
    core = core_outcome(auction, vcg, PaymentRule.CORE_VCG_NEAREST)  # VCG solved once
    seq_doc = (doc.get("comparison") or {}).get("sequential_second_price")
    if seq_doc is None:
        seq_doc = sequential_second_price(auction).to_dict()
    in_core, coalition = is_in_core(auction, vcg)
    out: dict[str, Any] = {
        "vcg": vcg.to_dict(),
        "core": core.to_dict(),
        "sequential": seq_doc,
        "polytope": None,
        "vcg_in_core": in_core,
        "blocking": {"bidders": list(coalition.bidders), "offer": coalition.offer},
    }
    winners = list(vcg.allocation)
    if len(winners) == 2:
        losers_bids = tuple(b for b in auction.bids if b.bidder not in vcg.allocation)
        joint_rhs = solve_wdp(Auction(auction.items, losers_bids)).welfare if losers_bids else 0.0
        lower = [vcg.payments[w] for w in winners]
        tol = vcg.provenance.tolerances
        out["polytope"] = {
            "winners": winners,
            "lower": lower,
            "upper": [vcg.values[w] for w in winners],
            "joint_rhs": float(joint_rhs),
            "vcg": lower,
            "core": [core.payments[w] for w in winners],
            "vcg_in_core": sum(lower) >= joint_rhs - tol.slack(joint_rhs),
        }
    return out


def market_curves(doc: dict[str, Any], points: int = 241) -> dict[str, list[float]]:
    """Aggregate supply and demand quantities on a price grid that contains the clearing price."""
    market = market_of(doc)
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


def negotiation_geography(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Longitude/latitude of vendors (their factories' centroid), sites and regions, when the
    result records its scenario (simulations do; a service outcome holds only public terms)."""
    if not isinstance(doc.get("input"), dict):
        return None
    sc = scenario_of(doc)
    points: dict[str, tuple[float, float, str]] = {}
    for v in sc.vendors:
        where = [metro(f.metro) for f in v.factories]
        points[f"vendor:{v.name}"] = (
            float(np.mean([m.longitude for m in where])),
            float(np.mean([m.latitude for m in where])),
            "vendor",
        )
    for s in sc.retailer.sites:
        m = metro(s.metro)
        points[f"site:{s.name}"] = (m.longitude, m.latitude, "site")
    for r in sc.retailer.regions:
        m = metro(r.metro)
        points[f"region:{r.name}"] = (m.longitude, m.latitude, "region")
    return {"points": points}
