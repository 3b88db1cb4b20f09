"""VCG procurement at scale: the closed-form price search against n+1 generic LP/QP solves.

Usage::

    .venv/bin/python benchmarks/market_vcg.py [--sizes 1000,10000,100000,1000000]
        [--generic-sizes 1000] [--generic-sample 200] [--generic-solver highs] [--seed 1]

For each size (half producers, half buyers, mixed linear / quadratic / piecewise-linear curves
from :func:`pivotal.markets.generators.draw_market`):

- ``fast``: the whole mechanism from the agents' event arrays: aggregate curves (sort, prefix
  sums), the optimum, all n counterfactual optima, every agent's value and transfer. Input
  parsing and Python object construction are not included (the draws go straight to arrays).
- ``generic``: n+1 solves of the same market as one QP each (``pivotal.markets.reference``, the
  cross-check path) with HiGHS's active-set QP solver (``--generic-solver highs``, the default)
  or OSQP (``osqp``; at its 1e-10 tolerances it ended with status 'error' on a counterfactual of
  the 1,000-agent market, and at 1,000 agents it is 5e-11 off where HiGHS is 2e-12). At sizes
  in ``--generic-sizes`` up to 2,000 agents every solve is
  timed; above, a random sample of ``--generic-sample`` counterfactuals is timed and the total
  extrapolated (marked ``~``). cvxpy is not a dependency (DESIGN.md section 7) and is not
  measured here.

Reports times, the speed ratio and the largest difference between the two paths' marginal
contributions ``W* - W*_-k`` (= VCG utilities; transfers add each agent's value at the optimum).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pivotal.markets.aggregate import solve_all
from pivotal.markets.generators import draw_market
from pivotal.markets.reference import reference_welfare


def fast_mechanism(draw) -> tuple[float, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    agg = draw.aggregate()
    sol = solve_all(agg)
    gain = sol.welfare - sol.welfare_without
    transfers = np.where(agg.sign > 0, sol.values + gain, -(sol.values - gain))
    return time.perf_counter() - start, gain, transfers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--generic-sizes", default="1000,10000")
    parser.add_argument("--generic-sample", type=int, default=100)
    parser.add_argument("--generic-solver", choices=("highs", "osqp"), default="highs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    generic_sizes = {int(s) for s in args.generic_sizes.split(",") if s}
    print(
        f"{'agents':>9} {'fast s':>8} {'generic':>8} {'solves':>7} {'generic s':>10} "
        f"{'ratio':>9} {'max|dW|':>9} {'budget':>12}"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        draw = draw_market(n // 2, n - n // 2, np.random.default_rng(args.seed))
        t_fast, gain, transfers = fast_mechanism(draw)
        budget = float(transfers.sum())
        if n not in generic_sizes:
            skipped = " ".join(f"{'-':>{w}}" for w in (8, 7, 10, 9, 9))
            print(f"{n:>9} {t_fast:>8.3f} {skipped} {budget:>12.1f}")
            continue
        market = draw.market()
        rng = np.random.default_rng(args.seed)
        start = time.perf_counter()
        w_star = reference_welfare(market.agents, args.generic_solver)
        t_main = time.perf_counter() - start
        picked = np.arange(n) if n <= 2000 else rng.choice(n, args.generic_sample, replace=False)
        start = time.perf_counter()
        diffs = []
        for k in picked:
            w_minus = reference_welfare(market.without(market.agents[k].name), args.generic_solver)
            diffs.append(abs((w_star - w_minus) - gain[k]))
        t_cf = time.perf_counter() - start
        total = t_main + t_cf * (n / len(picked))
        mark = "" if len(picked) == n else "~"
        solver = args.generic_solver
        print(
            f"{n:>9} {t_fast:>8.3f} {solver:>8} {n + 1:>7} {mark + f'{total:.2f}':>10} "
            f"{total / t_fast:>9.0f} {max(diffs):>9.1e} {budget:>12.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
