"""Clarke pivot (VCG) payments for combinatorial auctions.

With optimal welfare ``W*`` and winner ``i``'s accepted bid worth ``v_i``,

    p_i = W*_{-i} - (W* - v_i),

where ``W*_{-i}`` is the optimal welfare of the auction without ``i``'s bids. A loser's removal
leaves the optimum unchanged, so its payment is exactly 0 and only winners need a re-solve.
Truthful bidding is a dominant strategy, every bidder's utility ``W* - W*_{-i}`` is >= 0
(individual rationality) and payments never exceed the winning bid.
"""

from __future__ import annotations

import time

from pivotal.auctions.bids import Auction
from pivotal.auctions.outcome import AuctionOutcome, build_outcome
from pivotal.auctions.winner_determination import Allocation, solve_wdp
from pivotal.results import Provenance, Tolerances, package_version
from pivotal.solvers import SolverOptions


def welfare_without(
    auction: Auction,
    bidder: str,
    options: SolverOptions | None = None,
    *,
    approximate: bool = False,
) -> Allocation:
    """The optimal allocation of the auction with ``bidder``'s bids removed."""
    active = [k for k, b in enumerate(auction.bids) if b.bidder != bidder]
    return solve_wdp(auction, options, active=active, approximate=approximate)


def vcg(
    auction: Auction,
    options: SolverOptions | None = None,
    *,
    approximate: bool = False,
    tolerances: Tolerances | None = None,
    allocation: Allocation | None = None,
) -> AuctionOutcome:
    """Run the VCG mechanism with Clarke pivot payments.

    Parameters
    ----------
    auction:
        The validated auction.
    options:
        Solver options (time limit per solve).
    approximate:
        Accept time-limited solves; the outcome is then marked ``exact=False`` and loses the
        DSIC guarantee. Without it a time limit raises :class:`~pivotal.errors.SolveTimeLimitError`.
    tolerances:
        Recorded in the provenance and used by audits.
    allocation:
        A precomputed optimal allocation to reuse (skips the main solve).
    """
    start = time.perf_counter()
    opts = options or SolverOptions()
    n_solves = 0
    if allocation is None:
        allocation = solve_wdp(auction, opts, approximate=approximate)
        n_solves += 1
    winners = allocation.winners(auction)
    payments: dict[str, float] = {}
    exact = allocation.exact
    for bidder, k in winners.items():
        counterfactual = welfare_without(auction, bidder, opts, approximate=approximate)
        n_solves += 1
        exact = exact and counterfactual.exact
        payments[bidder] = counterfactual.welfare - (allocation.welfare - auction.bids[k].value)
    provenance = Provenance(
        mechanism="vcg",
        input_sha256=auction.sha256,
        solver="highs",
        solver_version=package_version("highspy"),
        tolerances=tolerances or Tolerances(),
        parameters={
            "time_limit": opts.time_limit,
            "mip_rel_gap": opts.mip_rel_gap,
            "mip_abs_gap": opts.mip_abs_gap,
            "approximate": approximate,
        },
        seconds=time.perf_counter() - start,
        n_solves=n_solves,
        exact=exact,
    )
    return build_outcome(auction, winners, payments, provenance)
