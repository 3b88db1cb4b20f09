"""The exactness policy: time-limited solves raise unless an approximate outcome is requested."""

from __future__ import annotations

import numpy as np
import pytest

from pivotal.auctions import Auction, solve_wdp, vcg
from pivotal.auctions.winner_determination import greedy_completion
from pivotal.errors import SolverError, SolveTimeLimitError
from pivotal.solvers import LinearSolution, SolverOptions, SolveStatus, require_optimal


def _hard_auction(seed: int = 0) -> Auction:
    rng = np.random.default_rng(seed)
    items = [f"g{i}" for i in range(40)]
    triples = []
    for k in range(300):
        size = int(rng.integers(2, 6))
        bundle = [str(g) for g in rng.choice(items, size, replace=False)]
        triples.append((f"b{k}", bundle, float(rng.integers(50, 150) * size)))
    return Auction.from_bids(items, triples)


def test_time_limit_raises_typed_error() -> None:
    with pytest.raises(SolveTimeLimitError, match="raise the time limit"):
        vcg(_hard_auction(), SolverOptions(time_limit=0.01))


def test_time_limit_with_approximate_marks_outcome() -> None:
    auction = _hard_auction()
    allocation = solve_wdp(auction, SolverOptions(time_limit=0.01), approximate=True)
    assert not allocation.exact
    assert allocation.bound >= allocation.welfare
    # never worse than the greedy allocation (highest bids first), whatever the machine's load
    greedy = greedy_completion(auction, [])
    assert allocation.welfare >= sum(auction.bids[k].value for k in greedy)
    exact = solve_wdp(auction)
    assert exact.exact and exact.welfare >= allocation.welfare


def _solution(status: SolveStatus, x: np.ndarray | None) -> LinearSolution:
    return LinearSolution(status, x, None if x is None else 1.0, 2.0, np.zeros(0), 0.1)


def test_require_optimal_policy() -> None:
    ok = _solution(SolveStatus.OPTIMAL, np.ones(1))
    assert require_optimal(ok, what="x") is ok
    limited = _solution(SolveStatus.TIME_LIMIT, np.ones(1))
    with pytest.raises(SolveTimeLimitError):
        require_optimal(limited, what="x")
    assert require_optimal(limited, what="x", approximate=True) is limited
    empty = _solution(SolveStatus.TIME_LIMIT, None)
    with pytest.raises(SolveTimeLimitError, match="before any feasible solution"):
        require_optimal(empty, what="x", approximate=True)
    with pytest.raises(SolverError, match="status 'infeasible'"):
        require_optimal(_solution(SolveStatus.INFEASIBLE, None), what="x", approximate=True)


def test_approximate_vcg_outcome_is_marked() -> None:
    outcome = vcg(_hard_auction(), SolverOptions(time_limit=0.01), approximate=True)
    assert not outcome.exact
    assert outcome.to_dict()["exact"] is False
    assert outcome.provenance.parameters["approximate"] is True
