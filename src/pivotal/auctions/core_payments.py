"""Core-selecting payments by core constraint generation.

Payments ``p`` for the efficient allocation (winners ``W``, winning values ``v_j``) are in the
*core* when no coalition ``C`` of bidders could offer the seller more than the winners pay:

    sum_{j in W \\ C} p_j >= W(C) - sum_{j in W ∩ C} v_j      for every coalition C,

with ``W(C)`` the best welfare using only the bids of ``C``. Equivalently ``z(p) <= sum_W p``
where the *separation problem* ``z(p) = max_x sum_b (v_b - u_{bidder(b)}) x_b`` is a WDP in which
every winner's bids are discounted by its utility ``u_j = v_j - p_j`` (losers have ``u = 0``); its
solution names the most blocking coalition (Day & Raghavan 2007, "Fair payments for efficient
allocations in public sector combinatorial auctions", Management Science 53(9)).

Rules:

- **bidder-optimal** (minimum-revenue core, MRC): ``min sum_W p`` s.t. generated core
  constraints and ``p_vcg <= p <= v``, re-separating at each LP optimum until no coalition
  blocks. Among equal-revenue core points the LP's vertex is returned (deterministic).
- **VCG-nearest** (Day & Cramton 2012, "Quadratic core-selecting payment rules for combinatorial
  auctions", Operations Research 60(3)): among MRC points, the one closest to VCG in Euclidean
  distance, ``min ||p - p_vcg||^2`` s.t. ``sum_W p = MRC`` and the core constraints (a convex QP,
  OSQP), re-separating at the QP's point; every generated constraint is a true core constraint,
  so the loop ends at the MRC of the full core.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from pivotal.auctions.bids import Auction, Bid, sorted_bundle
from pivotal.auctions.outcome import AuctionOutcome
from pivotal.auctions.winner_determination import solve_wdp
from pivotal.errors import ConvergenceError, SolverError
from pivotal.results import Tolerances
from pivotal.solvers import (
    LinearModel,
    QuadraticModel,
    SolverOptions,
    SolveStatus,
    require_optimal,
    solve_linear,
    solve_qp,
)


@dataclass(frozen=True)
class BlockingCoalition:
    """A coalition and the allocation with which it blocks.

    ``value`` is the coalition's welfare ``sum v_b`` over its bids in ``allocation``; ``offer``
    is what it can offer the seller, ``value - sum`` of the utilities of its members that are
    winners; it blocks when ``offer > revenue``.
    """

    bidders: tuple[str, ...]
    allocation: Mapping[str, tuple[str, ...]]
    value: float
    offer: float
    revenue: float


@dataclass(frozen=True)
class CoreConstraint:
    """``sum_{j in payers} p_j >= rhs`` for one coalition."""

    coalition: tuple[str, ...]
    payers: tuple[str, ...]
    rhs: float


@dataclass(frozen=True)
class CoreResult:
    """Core-selecting payments and how they were found."""

    rule: str
    payments: Mapping[str, float]
    revenue: float
    mrc_revenue: float
    constraints: tuple[CoreConstraint, ...]
    separations: int
    seconds: float


def most_blocking_coalition(
    auction: Auction,
    outcome: AuctionOutcome,
    payments: Mapping[str, float],
    options: SolverOptions | None = None,
) -> BlockingCoalition:
    """Solve the separation problem at ``payments`` for ``outcome``'s allocation."""
    utility = {b: outcome.values[b] - payments.get(b, 0.0) for b in outcome.allocation}
    kept: list[int] = []
    bids: list[Bid] = []
    for k, bid in enumerate(auction.bids):
        discounted = bid.value - utility.get(bid.bidder, 0.0)
        if discounted > 0:
            kept.append(k)
            bids.append(Bid(bid.bidder, bid.bundle, discounted))
    sub = Auction(auction.items, tuple(bids))
    allocation = solve_wdp(sub, options)
    chosen = [kept[j] for j in allocation.winning_bids]
    members = tuple(b for b in auction.bidders if any(auction.bids[k].bidder == b for k in chosen))
    return BlockingCoalition(
        bidders=members,
        allocation={
            auction.bids[k].bidder: tuple(sorted_bundle(auction.bids[k].bundle, auction.items))
            for k in chosen
        },
        value=float(sum(auction.bids[k].value for k in chosen)),
        offer=allocation.welfare,
        revenue=float(sum(payments.get(b, 0.0) for b in outcome.allocation)),
    )


def is_in_core(
    auction: Auction,
    outcome: AuctionOutcome,
    tolerances: Tolerances | None = None,
    options: SolverOptions | None = None,
) -> tuple[bool, BlockingCoalition]:
    """Whether ``outcome``'s payments are in the core, with the most blocking coalition."""
    tol = tolerances or Tolerances()
    coalition = most_blocking_coalition(auction, outcome, outcome.payments, options)
    return coalition.offer <= coalition.revenue + tol.slack(coalition.offer), coalition


def _constraint(outcome: AuctionOutcome, coalition: BlockingCoalition) -> CoreConstraint:
    winners_in = [b for b in coalition.bidders if b in outcome.allocation]
    payers = tuple(b for b in outcome.allocation if b not in coalition.bidders)
    rhs = coalition.value - sum(outcome.values[b] for b in winners_in)
    return CoreConstraint(coalition.bidders, payers, rhs)


def _rows(
    winners: list[str], constraints: list[CoreConstraint]
) -> tuple[sp.csc_matrix, np.ndarray]:
    index = {b: i for i, b in enumerate(winners)}
    rows, cols = [], []
    for r, con in enumerate(constraints):
        for b in con.payers:
            rows.append(r)
            cols.append(index[b])
    a = sp.csc_matrix(
        (np.ones(len(rows)), (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))),
        shape=(len(constraints), len(winners)),
    )
    return a, np.array([c.rhs for c in constraints], dtype=np.float64)


def _min_revenue(
    winners: list[str],
    lower: np.ndarray,
    upper: np.ndarray,
    constraints: list[CoreConstraint],
    options: SolverOptions,
) -> tuple[np.ndarray, float]:
    a, rhs = _rows(winners, constraints)
    model = LinearModel(
        c=np.ones(len(winners)),
        a_matrix=a,
        row_lower=rhs,
        row_upper=np.full(len(constraints), np.inf),
        col_lower=lower,
        col_upper=upper,
        integrality=np.zeros(len(winners), dtype=np.bool_),
        maximize=False,
    )
    solution = require_optimal(solve_linear(model, options), what="the minimum-revenue core LP")
    assert solution.x is not None
    return np.clip(solution.x, lower, upper), float(solution.x.sum())


def _nearest(
    winners: list[str],
    vcg_payments: np.ndarray,
    upper: np.ndarray,
    constraints: list[CoreConstraint],
    revenue: float,
    tol: Tolerances,
) -> np.ndarray:
    n = len(winners)
    a_core, rhs = _rows(winners, constraints)
    slack = tol.slack(revenue) * 1e-3
    a = sp.vstack([a_core, sp.csc_matrix(np.ones((1, n))), sp.identity(n, format="csc")]).tocsc()
    lower = np.concatenate([rhs, [revenue - slack], vcg_payments])
    upper_all = np.concatenate([np.full(len(constraints), np.inf), [revenue + slack], upper])
    model = QuadraticModel(
        p_matrix=sp.identity(n, format="csc") * 2.0,
        q=-2.0 * vcg_payments,
        a_matrix=a,
        lower=lower,
        upper=upper_all,
    )
    solution = solve_qp(model)
    if solution.status is not SolveStatus.OPTIMAL or solution.x is None:
        raise SolverError(
            f"the VCG-nearest core QP ended with status '{solution.status.value}'",
            status=solution.status.value,
        )
    return np.clip(solution.x, vcg_payments, upper)


def core_payments(
    auction: Auction,
    vcg_outcome: AuctionOutcome,
    *,
    rule: str = "vcg-nearest",
    options: SolverOptions | None = None,
    tolerances: Tolerances | None = None,
    max_iterations: int = 500,
) -> CoreResult:
    """Core-selecting payments for ``vcg_outcome``'s allocation by constraint generation.

    Parameters
    ----------
    rule:
        ``"bidder-optimal"`` (minimum-revenue core) or ``"vcg-nearest"`` (Day & Cramton 2012).
    max_iterations:
        Bound on separation rounds; exceeding it raises :class:`ConvergenceError`.
    """
    if rule not in {"bidder-optimal", "vcg-nearest"}:
        raise ValueError(f"unknown core rule '{rule}'")
    start = time.perf_counter()
    opts = options or SolverOptions()
    tol = tolerances or Tolerances()
    winners = list(vcg_outcome.allocation)
    lower = np.array([vcg_outcome.payments[b] for b in winners], dtype=np.float64)
    upper = np.array([vcg_outcome.values[b] for b in winners], dtype=np.float64)
    current = lower.copy()
    constraints: list[CoreConstraint] = []
    mrc = float(current.sum())
    for iteration in range(1, max_iterations + 1):
        payments = dict(zip(winners, current.tolist(), strict=True))
        coalition = most_blocking_coalition(auction, vcg_outcome, payments, opts)
        if coalition.offer <= coalition.revenue + tol.slack(coalition.offer):
            return CoreResult(
                rule=rule,
                payments={b: payments.get(b, 0.0) for b in auction.bidders},
                revenue=float(current.sum()),
                mrc_revenue=mrc,
                constraints=tuple(constraints),
                separations=iteration,
                seconds=time.perf_counter() - start,
            )
        constraints.append(_constraint(vcg_outcome, coalition))
        current, mrc = _min_revenue(winners, lower, upper, constraints, opts)
        if rule == "vcg-nearest":
            current = _nearest(winners, lower, upper, constraints, mrc, tol)
    raise ConvergenceError(
        f"core constraint generation did not converge in {max_iterations} rounds"
    )
