"""Payment rules on the efficient allocation, behind one entry point :func:`run_auction`."""

from __future__ import annotations

import time
from enum import Enum

from pivotal.auctions.bids import Auction
from pivotal.auctions.clarke import vcg
from pivotal.auctions.outcome import AuctionOutcome, build_outcome
from pivotal.auctions.winner_determination import Allocation, solve_wdp
from pivotal.results import Provenance, Tolerances, package_version
from pivotal.solvers import SolverOptions


class PaymentRule(Enum):
    """How winners pay for the efficient allocation."""

    VCG = "vcg"
    """Clarke pivot payments: truthful bidding is a dominant strategy."""
    PAY_AS_BID = "pay-as-bid"
    """First price: each winner pays its bid (not truthful; for comparison)."""


def pay_as_bid(
    auction: Auction,
    options: SolverOptions | None = None,
    *,
    approximate: bool = False,
    tolerances: Tolerances | None = None,
    allocation: Allocation | None = None,
) -> AuctionOutcome:
    """The efficient allocation with first-price payments (each winner pays its bid).

    Not truthful: a winner gains by shading its bid. Kept for comparison and audits.
    """
    start = time.perf_counter()
    opts = options or SolverOptions()
    if allocation is None:
        allocation = solve_wdp(auction, opts, approximate=approximate)
    winners = allocation.winners(auction)
    payments = {b: auction.bids[k].value for b, k in winners.items()}
    provenance = Provenance(
        mechanism="pay-as-bid",
        input_sha256=auction.sha256,
        solver="highs",
        solver_version=package_version("highspy"),
        tolerances=tolerances or Tolerances(),
        parameters={"time_limit": opts.time_limit, "approximate": approximate},
        seconds=time.perf_counter() - start,
        n_solves=1,
        exact=allocation.exact,
    )
    return build_outcome(auction, winners, payments, provenance)


def run_auction(
    auction: Auction,
    rule: PaymentRule = PaymentRule.VCG,
    options: SolverOptions | None = None,
    *,
    approximate: bool = False,
    tolerances: Tolerances | None = None,
) -> AuctionOutcome:
    """Solve winner determination and charge ``rule``'s payments."""
    if rule is PaymentRule.VCG:
        return vcg(auction, options, approximate=approximate, tolerances=tolerances)
    return pay_as_bid(auction, options, approximate=approximate, tolerances=tolerances)
