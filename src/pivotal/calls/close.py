"""The close: assemble the file from the stored reports and run the mechanism once.

The assembled document is exactly a market file (``pivotal market run``) or an auction file
(``pivotal auction run``): participants in name order, then the operator's published reserves.
The outcome document is the one those commands write with ``--json`` (the market run without
the withholding comparison, ``--no-withholding``; the auction run without the core comparison,
``--no-core``), so anyone can re-run the CLI on the assembled file and compare.
"""

from __future__ import annotations

from typing import Any

from pivotal.auctions.comparison import run_and_document
from pivotal.auctions.formats import auction_from_document
from pivotal.auctions.payment_rules import PaymentRule
from pivotal.calls.reports import reserve_entries
from pivotal.calls.store import StoredReport
from pivotal.calls.terms import CallTerms
from pivotal.engine import Engine
from pivotal.markets.clarke import vcg_market
from pivotal.markets.market import market_from_document
from pivotal.markets.result import market_result
from pivotal.markets.table import no_cycle_collection


def assemble(terms: CallTerms, reports: list[StoredReport]) -> dict[str, Any]:
    """The market or auction file the stored reports make (see the module docstring)."""
    ordered = sorted(reports, key=lambda r: r.participant)
    market_reserves, auction_reserves = reserve_entries(terms)
    if terms.kind == "market":
        entries = [r.entry for r in ordered] + market_reserves
        return {
            "producers": [e for e in entries if "cost" in e],
            "buyers": [e for e in entries if "benefit" in e],
        }
    bids = [
        {"bidder": r.participant, "bundle": b["bundle"], "value": b["value"]}
        for r in ordered
        for b in r.entry["bids"]
    ]
    return {"items": list(terms.items or ()), "bids": bids + auction_reserves}


def void_reason(terms: CallTerms, document: dict[str, Any]) -> str | None:
    """Why the call has no outcome to compute (a side without reports), or None."""
    if terms.kind == "market":
        if not document["producers"]:
            return "no producer reported"
        if not document["buyers"]:
            return "no buyer reported"
        return None
    return None if document["bids"] else "no bid was submitted"


def run_close(
    terms: CallTerms, document: dict[str, Any], *, engine: Engine | None = None
) -> dict[str, Any]:
    """The outcome document of the assembled file (what the CLI's run writes with ``--json``)."""
    reason = void_reason(terms, document)
    if reason is not None:
        return {"void": reason, "input": document}
    if terms.kind == "market":
        with no_cycle_collection():  # 10^4 to 10^6 reports: no cycles to look for
            market = market_from_document(document, source="the assembled call")
            return market_result(market, vcg_market(market))
    auction = auction_from_document(document, source="the assembled call")
    _, doc = run_and_document(auction, PaymentRule(terms.payment_rule), core=False, engine=engine)
    return doc


def own_result(terms: CallTerms, outcome: dict[str, Any], participant: str) -> dict[str, Any]:
    """One participant's share: quantity and transfer (market) or items and payment (auction)."""
    if "void" in outcome:
        return {"void": outcome["void"]}
    if terms.kind == "market":
        return {
            "quantity": float(outcome["quantities"].get(participant, 0.0)),
            "transfer": float(outcome["transfers"].get(participant, 0.0)),
            "price": float(outcome["price"]),
            "transfer_sign": "positive = paid to the participant",
        }
    return {
        "items": list(outcome["allocation"].get(participant, [])),
        "payment": float(outcome["payments"].get(participant, 0.0)),
        "payment_sign": "positive = paid by the bidder",
    }


def public_outcome(outcome: dict[str, Any], *, publish_reports: bool) -> dict[str, Any]:
    """What the record publishes of the outcome: everything when the terms publish the reports;
    otherwise the outcome without the reports (``input``) and without the comparisons computed
    from them."""
    if publish_reports:
        return outcome
    hidden = {
        "input",
        "comparison",
        "withholding",
        "uniform_price",
        "values",
        "marginal_contributions",
        "utilities",
    }
    return {k: v for k, v in outcome.items() if k not in hidden}


__all__ = ["assemble", "own_result", "public_outcome", "run_close", "void_reason"]
