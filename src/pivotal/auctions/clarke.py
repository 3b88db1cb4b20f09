"""Clarke pivot (VCG) payments for combinatorial auctions, computed fast and exactly.

With optimal welfare ``W*`` and winner ``i``'s accepted bid worth ``v_i``,

    p_i = W*_{-i} - (W* - v_i),

where ``W*_{-i}`` is the optimal welfare without ``i``'s bids. Truthful bidding is a dominant
strategy, every utility ``W* - W*_{-i}`` is >= 0 and no payment exceeds the winning bid.

Speed-ups, each exact and each switchable for benchmarks:

1. Losers are never re-solved: removing a loser leaves the optimum unchanged, so it pays 0.
2. Decomposition (``decompose``): the WDP splits into independent components
   (:mod:`pivotal.auctions.decomposition`); the main solve runs per component and a winner's
   counterfactual re-solves only its own component.
3. Bound skipping (``lp_skip``): the winning allocation minus ``i``, greedily completed with
   losing bids that still fit, is feasible for the counterfactual, so its value ``L`` satisfies
   ``L <= W*_{c,-i} <= LP``, the LP relaxation's bound. When ``LP <= L`` (for integer values,
   ``floor(LP) <= L``) the counterfactual is proved without a MIP. Otherwise the MIP starts from
   that incumbent.
4. Counterfactuals (and component solves) are independent tasks run on an
   :class:`~pivotal.engine.Engine`: in-process, a local process pool or a Dask cluster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pivotal.auctions.bids import Auction
from pivotal.auctions.decomposition import Component, components
from pivotal.auctions.outcome import AuctionOutcome, build_outcome
from pivotal.auctions.winner_determination import (
    Allocation,
    allocation_from_solution,
    greedy_completion,
    solve_wdp,
    wdp_model,
)
from pivotal.engine import Engine, InProcessEngine
from pivotal.results import Provenance, Tolerances, package_version
from pivotal.solvers import (
    SolverOptions,
    SolveStatus,
    exactness,
    require_optimal,
    solve_linear,
)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ComponentTask:
    """Main solve of one component."""

    auction: Auction
    options: SolverOptions


@dataclass(frozen=True)
class CounterfactualTask:
    """Optimal welfare of one component without one winner.

    ``auction`` is the component without the winner's bids; ``incumbent`` lists bid indices of
    ``auction`` forming a feasible allocation (the winning allocation minus the winner, greedily
    completed).
    """

    bidder: str
    auction: Auction
    incumbent: tuple[int, ...]
    options: SolverOptions
    lp_skip: bool


@dataclass(frozen=True)
class CounterfactualResult:
    """Welfare without one winner and how it was found.

    ``method``: ``"lp-bound"`` (proved by the LP relaxation), ``"mip"`` (a MIP solve), or
    ``"incumbent"`` (a time limit hit with ``approximate=True``; not proven optimal).
    """

    bidder: str
    welfare: float
    exact: bool
    method: str
    seconds: float


def solve_component(task: ComponentTask) -> Allocation:
    """Engine task: the main WDP of one component."""
    return solve_wdp(task.auction, task.options)


LP_BOUND_REL_TOL = 1e-9
"""Relative precision of an LP bound, as a fraction of the largest bid value of the model."""


def lp_bound_proves(bound: float, incumbent: float, values: list[float]) -> bool:
    """Whether an LP relaxation's ``bound`` proves that ``incumbent`` is the optimal welfare.

    The LP is solved on values scaled to about 1, so its bound is known to ``LP_BOUND_REL_TOL``
    times the largest value. With integer values every allocation's welfare is an integer, so
    a bound below ``incumbent + 1`` by more than that precision proves the incumbent too.
    """
    slack = LP_BOUND_REL_TOL * max(values, default=0.0)
    if bound <= incumbent + slack:
        return True
    integral = all(float(v).is_integer() for v in values)
    return integral and bound < incumbent + 1.0 - slack


def solve_counterfactual(task: CounterfactualTask) -> CounterfactualResult:
    """Engine task: ``W*_{c,-i}``, proved by the LP bound when possible, else by the MIP."""
    start = time.perf_counter()
    auction = task.auction
    incumbent_value = float(sum(auction.bids[k].value for k in task.incumbent))
    model, cols = wdp_model(auction)
    if task.lp_skip:
        relaxation = solve_linear(model.relaxed(), task.options)
        if relaxation.status is SolveStatus.TIME_LIMIT and task.options.approximate:
            # a time-limited LP proves nothing (its point is not a bound): go on to the MIP,
            # which under the same policy falls back on the incumbent
            proved = False
        else:
            lp = require_optimal(relaxation, what="the LP bound of a counterfactual")
            proved = lp_bound_proves(
                float(lp.objective if lp.objective is not None else math.inf),
                incumbent_value,
                [b.value for b in auction.bids],
            )
        if proved:
            return CounterfactualResult(
                task.bidder, incumbent_value, True, "lp-bound", time.perf_counter() - start
            )
    x0 = np.zeros(len(cols))
    x0[list(task.incumbent)] = 1.0
    raw = solve_linear(model, task.options, start=x0)
    if raw.status is SolveStatus.TIME_LIMIT and task.options.approximate and raw.x is None:
        # approximate outcome requested: the incumbent is feasible, use it
        return CounterfactualResult(
            task.bidder, incumbent_value, False, "incumbent", time.perf_counter() - start
        )
    solution = require_optimal(
        raw, what=f"the counterfactual without bidder '{task.bidder}'", options=task.options
    )
    allocation = allocation_from_solution(auction, cols, solution)
    welfare = max(allocation.welfare, incumbent_value)
    return CounterfactualResult(
        task.bidder, welfare, allocation.exact, "mip", time.perf_counter() - start
    )


def vcg(
    auction: Auction,
    options: SolverOptions | None = None,
    *,
    approximate: bool = False,
    tolerances: Tolerances | None = None,
    allocation: Allocation | None = None,
    engine: Engine | None = None,
    decompose: bool = True,
    lp_skip: bool = True,
    on_progress: ProgressCallback | None = None,
) -> AuctionOutcome:
    """Run the VCG mechanism with Clarke pivot payments.

    Parameters
    ----------
    auction:
        The validated auction.
    options:
        Solver options (time limit per solve).
    approximate:
        Shorthand for ``SolverOptions(approximate=True)``: accept time-limited solves; the
        outcome is then marked ``exact=False`` and loses the DSIC guarantee. Without it a time
        limit raises :class:`~pivotal.errors.SolveTimeLimitError`.
    tolerances:
        Recorded in the provenance and used by audits.
    allocation:
        A precomputed optimal allocation of the whole auction (skips the main solves).
    engine:
        Where the component solves and counterfactuals run (in-process by default).
    decompose, lp_skip:
        The speed-ups of the module docstring (both on by default; payments are the same).
    on_progress:
        Called as ``on_progress(done, total)`` after each counterfactual.
    """
    start = time.perf_counter()
    opts = exactness(options, approximate)
    runner: Engine = engine or InProcessEngine()
    parts = (
        components(auction) if decompose else [Component(tuple(range(len(auction.bids))), auction)]
    )
    n_mip = 0
    if allocation is None:
        allocations = runner.map(solve_component, [ComponentTask(p.auction, opts) for p in parts])
        n_mip += len(parts)
        chosen_per_part = [
            [p.bids[j] for j in a.winning_bids] for p, a in zip(parts, allocations, strict=True)
        ]
        winning = tuple(sorted(k for ks in chosen_per_part for k in ks))
        allocation = Allocation(
            winning,
            float(sum(auction.bids[k].value for k in winning)),
            float(sum(a.bound for a in allocations)),
            all(a.exact for a in allocations),
            time.perf_counter() - start,
        )
    exact = allocation.exact
    winners = allocation.winners(auction)
    part_of = {k: c for c, p in enumerate(parts) for k in p.bids}
    local_index = [{k: j for j, k in enumerate(p.bids)} for p in parts]
    part_welfare = [0.0] * len(parts)
    for k in allocation.winning_bids:
        part_welfare[part_of[k]] += float(auction.bids[k].value)
    tasks: list[CounterfactualTask] = []
    for bidder, k in winners.items():
        c = part_of[k]
        sub = parts[c].auction.without(bidder)
        kept = [j for j, bid in enumerate(parts[c].auction.bids) if bid.bidder != bidder]
        new_index = {j: n for n, j in enumerate(kept)}
        chosen = [
            new_index[local_index[c][w]]
            for b, w in winners.items()
            if b != bidder and part_of[w] == c
        ]
        tasks.append(CounterfactualTask(bidder, sub, greedy_completion(sub, chosen), opts, lp_skip))
    done = 0

    def progress(_: int, __: object) -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, len(tasks))

    if on_progress is not None:
        on_progress(0, len(tasks))
    results = runner.map(solve_counterfactual, tasks, progress)
    payments: dict[str, float] = {}
    n_lp = 0
    for task, result in zip(tasks, results, strict=True):
        k = winners[task.bidder]
        c = part_of[k]
        exact = exact and result.exact
        n_lp += int(lp_skip)
        n_mip += int(result.method in {"mip", "incumbent"})
        # p_i = W*_{-i} - (W* - v_i) lies in [0, v_i] (IR; removing i never raises the
        # others' welfare): clip the few ulps that summing in another order can leave
        value = auction.bids[k].value
        payments[task.bidder] = min(max(result.welfare - (part_welfare[c] - value), 0.0), value)
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
            "approximate": opts.approximate,
            "decompose": decompose,
            "lp_skip": lp_skip,
            "engine": runner.name,
            "components": len(parts),
            "counterfactuals": len(tasks),
            "counterfactuals_proved_by_lp": sum(r.method == "lp-bound" for r in results),
            "lp_solves": n_lp,
            "mip_solves": n_mip,
        },
        seconds=time.perf_counter() - start,
        n_solves=n_mip + n_lp,
        exact=exact,
    )
    return build_outcome(auction, winners, payments, provenance)
