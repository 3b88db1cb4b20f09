"""The comparisons an auction result offers, computed once at run time: the VCG outcome, the
VCG-nearest core outcome, whether VCG is in the core (and the blocking coalition), the core
polytope of a two-winner auction, and the sequential second-price auction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pivotal.auctions.bids import Auction
from pivotal.auctions.clarke import ProgressCallback
from pivotal.auctions.core_payments import is_in_core
from pivotal.auctions.outcome import AuctionOutcome
from pivotal.auctions.payment_rules import PaymentRule, core_outcome, payment_rule, run_auction
from pivotal.auctions.result import auction_result
from pivotal.auctions.sequential import sequential_second_price
from pivotal.auctions.winner_determination import solve_wdp
from pivotal.engine import Engine
from pivotal.solvers import SolverOptions, exactness


def auction_comparison(
    auction: Auction,
    outcome: AuctionOutcome,
    *,
    order: Sequence[str] | None = None,
    core: bool = True,
    options: SolverOptions | None = None,
) -> dict[str, Any]:
    """The comparison block of :class:`AuctionResult` for ``outcome`` (any payment rule).

    The VCG outcome is ``outcome`` itself when it is VCG (solved once); otherwise it is solved
    here. ``core=False`` skips everything but the sequential auction.
    """
    out: dict[str, Any] = {
        "sequential_second_price": sequential_second_price(auction, order).to_dict(),
        "vcg": None,
        "core": None,
        "vcg_in_core": None,
        "blocking": None,
        "polytope": None,
    }
    if not core:
        return out
    vcg = (
        outcome
        if outcome.provenance.mechanism == PaymentRule.VCG.value
        else run_auction(auction, PaymentRule.VCG, options)
    )
    nearest = (
        outcome
        if outcome.provenance.mechanism == PaymentRule.CORE_VCG_NEAREST.value
        else core_outcome(auction, vcg, PaymentRule.CORE_VCG_NEAREST, options)
    )
    in_core, coalition = is_in_core(auction, vcg)
    out.update(
        vcg=vcg.to_dict(),
        core=nearest.to_dict(),
        vcg_in_core=in_core,
        blocking={"bidders": list(coalition.bidders), "offer": coalition.offer},
    )
    winners = list(vcg.allocation)
    if len(winners) == 2:
        losers = tuple(b for b in auction.bids if b.bidder not in vcg.allocation)
        joint_rhs = float(solve_wdp(Auction(auction.items, losers)).welfare) if losers else 0.0
        lower = [vcg.payments[w] for w in winners]
        slack = vcg.provenance.tolerances.slack(joint_rhs)
        out["polytope"] = {
            "winners": winners,
            "lower": lower,
            "upper": [vcg.values[w] for w in winners],
            "joint_rhs": joint_rhs,
            "vcg": lower,
            "core": [nearest.payments[w] for w in winners],
            "vcg_in_core": sum(lower) >= joint_rhs - slack,
        }
    return out


def run_and_document(
    auction: Auction,
    rule: PaymentRule | str = PaymentRule.VCG,
    options: SolverOptions | None = None,
    *,
    approximate: bool = False,
    order: Sequence[str] | None = None,
    core: bool = True,
    engine: Engine | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[AuctionOutcome, dict[str, Any]]:
    """Run ``rule`` and build its result document with the comparisons (each solved once)."""
    rule = payment_rule(rule)
    options = exactness(options, approximate)
    outcome = run_auction(auction, rule, options, engine=engine, on_progress=on_progress)
    comparison = auction_comparison(auction, outcome, order=order, core=core, options=options)
    return outcome, auction_result(auction, outcome, comparison)


__all__ = ["auction_comparison", "run_and_document"]
