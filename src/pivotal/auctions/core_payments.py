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
  distance, ``min ||p - p_vcg||^2`` s.t. ``sum_W p = MRC`` and the core constraints (a strictly
  convex QP with Hessian ``2I``, solved by HiGHS's active-set QP solver), re-separating at the
  QP's point; every generated constraint is a true core constraint, so the loop ends at the MRC
  of the full core.

Numerics. Every program works in money divided by ``S``, the power of two nearest below the
largest bid (:func:`pivotal.solvers.power_of_two_scale`; exact in binary), so the solvers'
absolute tolerances act relative to the auction's magnitude, and results are mapped back by
multiplying by ``S``. A coalition blocks when its offer exceeds the revenue by more than
``rel_tol`` (of :class:`~pivotal.results.Tolerances`) times the larger of the two: a money
tolerance relative to the amounts compared, never an absolute one (an absolute 1e-6 returned
VCG payments for LLG at values 1e-7). VCG payments, the lower bounds of every program, are first
clipped into ``[0, v]`` (a VCG payment a few ulps above its bid made OSQP refuse the QP).
Time limits follow the exactness policy: with ``approximate=True`` a separation stopped by a
time limit ends the loop with the payments found so far and the result marked inexact; so does
an empty core, which only an allocation accepted from a time-limited solve can have.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from pivotal.auctions.bids import Auction, sorted_bundle
from pivotal.auctions.outcome import AuctionOutcome
from pivotal.auctions.winner_determination import (
    allocation_from_solution,
    greedy_completion,
    wdp_model,
)
from pivotal.errors import ConvergenceError, InputError, SolverError, SolveTimeLimitError
from pivotal.results import Tolerances
from pivotal.solvers import (
    LinearModel,
    LinearModelBuilder,
    QpOptions,
    QuadraticModel,
    SolverOptions,
    SolveStatus,
    power_of_two_scale,
    require_optimal,
    solve_linear,
    solve_qp,
    solve_qp_active_set,
)

CORE_RULES = ("bidder-optimal", "vcg-nearest")

_NEGLIGIBLE = 2.0**-40
"""Discounted values below this fraction of the largest bid are dropped from the separation
problem: they move an offer by far less than the blocking tolerance."""


@dataclass(frozen=True)
class BlockingCoalition:
    """A coalition and the allocation with which it blocks.

    ``value`` is the coalition's welfare ``sum v_b`` over its bids in ``allocation``; ``offer``
    is what it can offer the seller, ``value - sum`` of the utilities of its members that are
    winners; it blocks when ``offer > revenue``. ``exact`` is False when a time limit stopped
    the separation problem (the coalition is then the best one found, not proven the most
    blocking).
    """

    bidders: tuple[str, ...]
    allocation: Mapping[str, tuple[str, ...]]
    value: float
    offer: float
    revenue: float
    exact: bool = True

    def blocks(self, tolerances: Tolerances | None = None) -> bool:
        """Whether the offer exceeds the revenue by more than ``rel_tol`` of the larger one."""
        tol = tolerances or Tolerances()
        return self.offer > self.revenue + tol.rel_tol * max(abs(self.offer), abs(self.revenue))


@dataclass(frozen=True)
class CoreConstraint:
    """``sum_{j in payers} p_j >= rhs`` for one coalition."""

    coalition: tuple[str, ...]
    payers: tuple[str, ...]
    rhs: float


@dataclass(frozen=True)
class CoreResult:
    """Core-selecting payments and how they were found.

    ``exact`` is False when a time limit stopped a solve and the caller accepted it
    (``approximate=True``): the payments are then not proven to be in the core.
    """

    rule: str
    payments: Mapping[str, float]
    revenue: float
    mrc_revenue: float
    constraints: tuple[CoreConstraint, ...]
    separations: int
    seconds: float
    exact: bool = True


def most_blocking_coalition(
    auction: Auction,
    outcome: AuctionOutcome,
    payments: Mapping[str, float],
    options: SolverOptions | None = None,
) -> BlockingCoalition:
    """Solve the separation problem at ``payments`` for ``outcome``'s allocation.

    A WDP over the bids with every winner's bids discounted by its utility ``v_j - p_j``; bids
    whose discounted value is not positive (below ``2^-40`` of the largest bid) cannot add to an
    offer and are left out. With ``options.approximate`` a time limit returns the best coalition
    found (greedy at least), marked ``exact=False``.
    """
    utility = {b: outcome.values[b] - payments.get(b, 0.0) for b in outcome.allocation}
    largest = max((bid.value for bid in auction.bids), default=0.0)
    floor = _NEGLIGIBLE * largest
    discounted = [bid.value - utility.get(bid.bidder, 0.0) for bid in auction.bids]
    kept = [k for k, d in enumerate(discounted) if d > floor]
    revenue = float(sum(payments.get(b, 0.0) for b in outcome.allocation))
    chosen: tuple[int, ...] = ()
    exact = True
    if kept:
        model, cols = wdp_model(auction, kept, values=discounted)
        solution = solve_linear(model, options)
        if (
            solution.status is SolveStatus.TIME_LIMIT
            and options is not None
            and options.approximate
        ):
            exact = False
            greedy = greedy_completion(auction, [], among=kept, values=discounted)
            found = (
                allocation_from_solution(auction, cols, solution).winning_bids
                if (solution.x is not None)
                else ()
            )
            chosen = max(greedy, found, key=lambda ks: sum(discounted[k] for k in ks))
        else:
            require_optimal(solution, what="the core separation problem")
            chosen = allocation_from_solution(auction, cols, solution).winning_bids
    members = tuple(b for b in auction.bidders if any(auction.bids[k].bidder == b for k in chosen))
    return BlockingCoalition(
        bidders=members,
        allocation={
            auction.bids[k].bidder: tuple(sorted_bundle(auction.bids[k].bundle, auction.items))
            for k in chosen
        },
        value=float(sum(auction.bids[k].value for k in chosen)),
        offer=float(sum(discounted[k] for k in chosen)),
        revenue=revenue,
        exact=exact,
    )


def is_in_core(
    auction: Auction,
    outcome: AuctionOutcome,
    tolerances: Tolerances | None = None,
    options: SolverOptions | None = None,
) -> tuple[bool, BlockingCoalition]:
    """Whether ``outcome``'s payments are in the core, with the most blocking coalition.

    The coalition blocks when its offer exceeds the revenue by more than ``rel_tol`` times the
    larger of the two (:meth:`BlockingCoalition.blocks`).
    """
    coalition = most_blocking_coalition(auction, outcome, outcome.payments, options)
    return not coalition.blocks(tolerances), coalition


def _constraint(outcome: AuctionOutcome, coalition: BlockingCoalition) -> CoreConstraint:
    winners_in = [b for b in coalition.bidders if b in outcome.allocation]
    payers = tuple(b for b in outcome.allocation if b not in coalition.bidders)
    rhs = coalition.value - sum(outcome.values[b] for b in winners_in)
    return CoreConstraint(coalition.bidders, payers, rhs)


def _rows(
    winners: list[str], constraints: list[CoreConstraint], scale: float
) -> tuple[sp.csc_matrix, np.ndarray]:
    """Core constraints as rows ``A p >= rhs``, right-hand sides in units of ``scale``."""
    index = {b: i for i, b in enumerate(winners)}
    rows = LinearModelBuilder()
    for _ in winners:
        rows.var(0.0)
    for con in constraints:
        rows.row(((index[b], 1.0) for b in con.payers), lower=con.rhs / scale)
    return rows.matrix(), rows.row_bounds()[0]


def _min_revenue(
    a: sp.csc_matrix,
    rhs: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    options: SolverOptions,
) -> np.ndarray:
    """The minimum-revenue point of the generated core constraints (scaled units)."""
    n = len(lower)
    model = LinearModel(
        c=np.ones(n),
        a_matrix=a,
        row_lower=rhs,
        row_upper=np.full(len(rhs), np.inf),
        col_lower=lower,
        col_upper=upper,
        integrality=np.zeros(n, dtype=np.bool_),
        maximize=False,
        scale_objective=True,
        tight=True,
    )
    solution = require_optimal(solve_linear(model, options), what="the minimum-revenue core LP")
    if solution.x is None:  # pragma: no cover - require_optimal guarantees a point
        raise SolverError("the minimum-revenue core LP returned no point", status="error")
    return np.clip(solution.x, lower, upper)


def _nearest(
    a: sp.csc_matrix,
    rhs: np.ndarray,
    vcg_payments: np.ndarray,
    upper: np.ndarray,
    revenue: float,
    options: SolverOptions,
) -> np.ndarray:
    """The point of the minimum-revenue face closest to VCG (scaled units).

    Solved over the face in its own units: ``p = p_vcg + D x`` with ``D = MRC - sum p_vcg``
    the revenue to distribute above VCG, so ``min ||x||^2`` s.t. ``sum x = 1``, ``0 <= x <=
    (v - p_vcg) / D`` and ``A x >= (rhs - A p_vcg) / D``: every number the QP solver sees is
    about 1 whatever the size of ``D`` next to the bids (HiGHS's QP ended in a solve error on
    ``min ||p||^2, p1 + p2 = 6.25e-5`` in units of the largest bid).
    """
    n = len(vcg_payments)
    excess = revenue - float(vcg_payments.sum())
    if excess <= 0.0:  # VCG is the minimum-revenue core point
        return vcg_payments.copy()
    ones = sp.csc_matrix(np.ones((1, n)))
    model = QuadraticModel(
        p_matrix=sp.identity(n, format="csc") * 2.0,
        q=np.zeros(n),
        a_matrix=sp.vstack([a, ones, sp.identity(n, format="csc")]).tocsc(),
        lower=np.concatenate([(rhs - a @ vcg_payments) / excess, [1.0], np.zeros(n)]),
        upper=np.concatenate([np.full(len(rhs), np.inf), [1.0], (upper - vcg_payments) / excess]),
    )
    qp_options = QpOptions(eps_abs=1e-10, eps_rel=1e-10, time_limit=options.time_limit)
    solution = solve_qp_active_set(model, qp_options)
    if solution.status is not SolveStatus.OPTIMAL and solution.status is not SolveStatus.TIME_LIMIT:
        # HiGHS's QP solver ended in a solve error on a few tiny well-posed QPs (2 variables,
        # unscaled): OSQP, polished, on the same well-scaled model is the second opinion
        second = solve_qp(model, qp_options)
        if second.status is SolveStatus.OPTIMAL:
            solution = second
    if solution.status is not SolveStatus.OPTIMAL or solution.x is None:
        message = f"the VCG-nearest core QP ended with status '{solution.status.value}'"
        if solution.status is SolveStatus.TIME_LIMIT:
            raise SolveTimeLimitError(message + "; raise the time limit")
        raise SolverError(message, status=solution.status.value)
    return np.clip(vcg_payments + excess * solution.x, vcg_payments, upper)


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
    options:
        Solver options; with ``approximate`` a time-limited solve stops the loop with the
        payments found so far and the result is marked ``exact=False`` (without it a time limit
        raises :class:`~pivotal.errors.SolveTimeLimitError`).
    """
    if rule not in CORE_RULES:
        raise InputError(f"unknown core rule '{rule}'; use one of {', '.join(CORE_RULES)}")
    start = time.perf_counter()
    opts = options or SolverOptions()
    tol = tolerances or Tolerances()
    winners = list(vcg_outcome.allocation)
    upper_money = np.array([vcg_outcome.values[b] for b in winners], dtype=np.float64)
    lower_money = np.clip(
        np.array([vcg_outcome.payments[b] for b in winners], dtype=np.float64), 0.0, upper_money
    )
    scale = power_of_two_scale(max((bid.value for bid in auction.bids), default=0.0))
    lower, upper = lower_money / scale, upper_money / scale
    current = lower.copy()
    constraints: list[CoreConstraint] = []
    seen: set[tuple[tuple[str, ...], float]] = set()
    mrc = float(current.sum())
    exact = vcg_outcome.exact
    separations = 0

    def result(payments: np.ndarray, mrc_scaled: float, proven: bool) -> CoreResult:
        money = np.clip(payments * scale, lower_money, upper_money)
        paid = dict(zip(winners, money.tolist(), strict=True))
        return CoreResult(
            rule=rule,
            payments={b: paid.get(b, 0.0) for b in auction.bidders},
            revenue=float(money.sum()),
            mrc_revenue=mrc_scaled * scale,
            constraints=tuple(constraints),
            separations=separations,
            seconds=time.perf_counter() - start,
            exact=proven,
        )

    for _ in range(max_iterations):
        payments = dict(zip(winners, (current * scale).tolist(), strict=True))
        coalition = most_blocking_coalition(auction, vcg_outcome, payments, opts)
        separations += 1
        if not coalition.exact:
            exact = False
        if not coalition.blocks(tol):
            return result(current, mrc, exact and coalition.exact)
        constraint = _constraint(vcg_outcome, coalition)
        key = (constraint.payers, constraint.rhs)
        if key in seen:
            raise SolverError(
                f"core constraint generation found coalition {list(constraint.coalition)} "
                "blocking again after its constraint was added (the payment program's solution "
                "violates it beyond the tolerance)",
                status="error",
            )
        seen.add(key)
        constraints.append(constraint)
        a, rhs = _rows(winners, constraints, scale)
        try:
            current = _min_revenue(a, rhs, lower, upper, opts)
            mrc = float(current.sum())
            if rule == "vcg-nearest":
                current = _nearest(a, rhs, lower, upper, mrc, opts)
        except SolveTimeLimitError:
            if not opts.approximate:
                raise
            # the payments of the previous round are the best found: not proven in the core
            return result(current, mrc, False)
        except SolverError as exc:
            if exc.status != SolveStatus.INFEASIBLE.value or vcg_outcome.exact:
                raise
            # an allocation accepted from a time-limited solve need not be efficient, and then
            # its core can be empty (a coalition offers more than the winners' values): keep
            # the payments found so far, marked inexact like the allocation
            return result(current, mrc, False)
    raise ConvergenceError(
        f"core constraint generation did not converge in {max_iterations} rounds"
    )
