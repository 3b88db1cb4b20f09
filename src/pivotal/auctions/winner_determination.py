"""Winner determination: the welfare-maximizing allocation of XOR bids, as a MIP.

Formulation (one binary ``x_b`` per bid ``b``)::

    max   sum_b v_b x_b
    s.t.  sum_{b : g in bundle(b)} x_b <= 1     for every item g   (each item sold once)
          sum_{b : bidder(b) = i}  x_b <= 1     for every bidder i with two or more bids (XOR)
          x_b in {0, 1}

solved exactly by HiGHS (``mip_rel_gap = 0``) through :mod:`pivotal.solvers`. The solver sees
the values divided by the power of two nearest below the largest one (``scale_objective``), so
its absolute tolerances (feasibility 1e-7, or 1e-10 where the values need it, see
:func:`needs_tight_tolerances`; ``mip_abs_gap`` 1e-9; costs >= 1e20 read as infinite) act
relative to the auction's own magnitude: ``2e-9`` against ``1e-9`` is told apart like 2 against
1, and ``1e20`` is not infinite. Scaling by a power of two is exact, so the solver's model is the
same for values scaled by any power of two. Welfare is always summed from the bids' own values,
never taken from the solver. Values spanning more than the solver can separate are refused when
the auction is built (:data:`pivotal.auctions.bids.MAX_VALUE_RATIO`).

Tie-breaking: when several allocations reach the optimal welfare, the one returned is the one
HiGHS finds for the model built in the auction's bid order, with one thread and a fixed random
seed; the same input therefore always gives the same allocation. The welfare, and every bidder's
VCG utility, do not depend on the tie-break; VCG payments can.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from pivotal.auctions.bids import Auction
from pivotal.solvers import (
    LinearModel,
    LinearModelBuilder,
    LinearSolution,
    SolverOptions,
    SolveStatus,
    require_optimal,
    solve_linear,
)


@dataclass(frozen=True)
class Allocation:
    """Winning bids of a winner determination solve.

    Attributes
    ----------
    winning_bids:
        Indices (into ``auction.bids``) of the accepted bids, in increasing order.
    welfare:
        Sum of the accepted bids' values (computed from the bids, not the solver's objective).
    bound:
        The solver's proven upper bound on welfare (equals ``welfare`` when exact).
    exact:
        False when a time limit stopped the solve and the caller accepted the incumbent.
    seconds:
        Solve time.
    """

    winning_bids: tuple[int, ...]
    welfare: float
    bound: float
    exact: bool = True
    seconds: float = 0.0

    def winners(self, auction: Auction) -> dict[str, int]:
        """``{bidder: index of its winning bid}``."""
        return {auction.bids[k].bidder: k for k in self.winning_bids}


def wdp_model(
    auction: Auction,
    active: Collection[int] | None = None,
    *,
    values: Sequence[float] | None = None,
) -> tuple[LinearModel, list[int]]:
    """Build the WDP MIP over the bids in ``active`` (all bids by default).

    ``values[k]`` replaces bid ``k``'s value in the objective (the core separation problem
    discounts winners' bids); the bids' own values by default. Returns the model and the bid
    index of each column.
    """
    cols = list(range(len(auction.bids))) if active is None else sorted(active)
    b = LinearModelBuilder()
    item_cols: dict[str, list[int]] = {item: [] for item in auction.items}
    bidder_cols: dict[str, list[int]] = {}
    for k in cols:
        bid = auction.bids[k]
        j = b.var(bid.value if values is None else values[k], 0.0, 1.0, integer=True)
        bidder_cols.setdefault(bid.bidder, []).append(j)
        for item in bid.bundle:
            item_cols[item].append(j)
    for js in item_cols.values():  # each item sold at most once
        b.row(((j, 1.0) for j in js), upper=1.0)
    for js in bidder_cols.values():  # XOR: at most one bid per bidder
        if len(js) > 1:
            b.row(((j, 1.0) for j in js), upper=1.0)
    plain = b.build(maximize=True, scale_objective=True)
    model = replace(plain, tight=needs_tight_tolerances(auction, cols, plain.c))
    return model, cols


COARSE_WELFARE_LIMIT = 1e5
"""Integer values whose welfare cannot exceed this are told apart at HiGHS's default tolerances."""


def needs_tight_tolerances(
    auction: Auction, cols: Sequence[int], c: npt.NDArray[np.float64]
) -> bool:
    """Whether the WDP over bids ``cols`` (objective ``c``) needs HiGHS's tight tolerances.

    At the default tolerances (1e-7 on values scaled to about 1) HiGHS lost up to 7e-8 of the
    welfare on random auctions whose values span more than 1e7 (none within 1e6); at 1e-10 none
    up to 1e10, but hard instances took up to 60% longer. Two allocations of integer values
    differ by at least 1, so when every value is an integer and the welfare is at most
    ``COARSE_WELFARE_LIMIT`` (an upper bound: the sum of each bidder's largest value) the default
    tolerances separate them with a margin of 100; every other model gets the tight ones.
    """
    if c.size == 0 or not np.all(np.floor(c) == c):
        return c.size > 0
    best: dict[str, float] = {}
    for k, value in zip(cols, c.tolist(), strict=True):
        bidder = auction.bids[k].bidder
        best[bidder] = max(best.get(bidder, 0.0), value)
    return sum(best.values()) > COARSE_WELFARE_LIMIT


def allocation_from_solution(
    auction: Auction, cols: list[int], solution: LinearSolution
) -> Allocation:
    """Read the accepted bids off a (checked) MIP solution."""
    assert solution.x is not None  # guaranteed by require_optimal
    chosen = tuple(sorted(cols[j] for j in np.flatnonzero(solution.x > 0.5)))
    welfare = float(sum(auction.bids[k].value for k in chosen))
    exact = solution.status is SolveStatus.OPTIMAL
    bound = welfare if exact else float(solution.bound if solution.bound is not None else np.inf)
    return Allocation(chosen, welfare, bound, exact, solution.seconds)


def greedy_completion(
    auction: Auction,
    chosen: list[int],
    *,
    among: Collection[int] | None = None,
    values: Sequence[float] | None = None,
) -> tuple[int, ...]:
    """Add bids (highest value first, then by index) that fit beside ``chosen``.

    ``among`` restricts the candidates (all bids by default); ``values`` replaces the bids'
    values as in :func:`wdp_model`. The result is a feasible allocation: a lower bound on the
    optimal welfare.
    """
    worth = [b.value for b in auction.bids] if values is None else list(values)
    used = {item for k in chosen for item in auction.bids[k].bundle}
    bidders = {auction.bids[k].bidder for k in chosen}
    result = list(chosen)
    taken = set(chosen)
    candidates = range(len(auction.bids)) if among is None else among
    order = sorted(candidates, key=lambda k: (-worth[k], k))
    for k in order:
        bid = auction.bids[k]
        if k in taken or bid.bidder in bidders or bid.bundle & used or worth[k] <= 0:
            continue
        result.append(k)
        taken.add(k)
        used |= bid.bundle
        bidders.add(bid.bidder)
    return tuple(sorted(result))


def solve_wdp(
    auction: Auction,
    options: SolverOptions | None = None,
    *,
    active: Collection[int] | None = None,
) -> Allocation:
    """Solve the winner determination problem exactly.

    Parameters
    ----------
    auction:
        The validated auction.
    options:
        Solver options (time limit, gaps, and the exactness policy: with ``approximate`` a
        time-limited incumbent is accepted and the allocation marked ``exact=False``).
    active:
        Restrict to these bid indices (used for counterfactuals); all bids by default.

    Raises
    ------
    SolveTimeLimitError
        If the time limit stops the solve and ``options.approximate`` is False.
    SolverError
        On any other non-optimal solver status.
    """
    model, cols = wdp_model(auction, active)
    sub = cols if active is not None else None
    greedy = greedy_completion(auction, [], among=sub)
    position = {k: j for j, k in enumerate(cols)}
    x0 = np.zeros(len(cols))
    x0[[position[k] for k in greedy]] = 1.0
    opts = options or SolverOptions()
    solution = solve_linear(model, opts, start=x0)
    if solution.status is SolveStatus.TIME_LIMIT and opts.approximate:
        # the greedy allocation is always feasible: never return less than it
        greedy_value = float(sum(auction.bids[k].value for k in greedy))
        if solution.x is None or (solution.objective or 0.0) < greedy_value:
            bound = solution.bound if solution.bound is not None else float("inf")
            return Allocation(tuple(greedy), greedy_value, bound, False, solution.seconds)
    require_optimal(solution, what="winner determination", options=opts)
    return allocation_from_solution(auction, cols, solution)
