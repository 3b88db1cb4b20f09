"""Money accuracy and rounds of the counterfactual runs over 48 small generated scenarios.

Usage::

    .venv/bin/python benchmarks/negotiation_accuracy.py [--warm-plain-rounds N] [--cold]

Scenarios: ``negotiate generate`` shapes K-F-R-T-V 3-2-2-2-3, 4-3-3-2-2, 5-3-3-2-5, 6-4-4-2-3,
6-4-4-3-3 and 8-6-6-4-4, seeds 1, 2, 3 and 7, plain and ``--interacting`` (vendors that
compete for storage). Each is negotiated in process with the library's defaults (or the given
plain ADMM stage of the warm runs, or cold runs) and compared with the centralized VCG money
(independent LPs, :func:`~pivotal.negotiation.simulation.centralized_check`). Prints one row per
scenario (joint and counterfactual rounds, the largest gain error and gain bound) and a summary:
the worst gain error as a share of the issue's accuracy bar (1 unit or 1e-3 of the exact gain,
whichever is larger), the counterfactual rounds in all, the runs that did not converge, the
gains outside their certified bounds, and the CPU time.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from pivotal.negotiation.scenario import generate_scenario
from pivotal.negotiation.session import WARM_PLAIN_ROUNDS
from pivotal.negotiation.simulation import simulate

SHAPES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 2, 2, 2, 3),
    (4, 3, 3, 2, 2),
    (5, 3, 3, 2, 5),
    (6, 4, 4, 2, 3),
    (6, 4, 4, 3, 3),
    (8, 6, 6, 4, 4),
)
SEEDS = (1, 2, 3, 7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-plain-rounds", type=int, default=WARM_PLAIN_ROUNDS)
    parser.add_argument("--cold", action="store_true", help="cold counterfactual runs")
    args = parser.parse_args()
    began = time.process_time()
    worst, worst_at, cf_rounds, unconverged, outside, widest = 0.0, "", 0, 0, 0, 0.0
    for shape, seed, interacting in itertools.product(SHAPES, SEEDS, (False, True)):
        scenario = generate_scenario(*shape, np.random.default_rng(seed), interacting=interacting)
        sim = simulate(
            scenario,
            require_convergence=False,
            warm_start_counterfactuals=not args.cold,
            warm_plain_rounds=args.warm_plain_rounds,
        )
        o, exact = sim.outcome, sim.centralized
        assert exact is not None
        errors = {p: abs(o.gains[p] - exact.gains[p]) for p in o.parties}
        outside += sum(errors[p] > o.gain_bounds[p] + 1e-9 for p in o.parties)
        unconverged += not o.converged
        rounds = [r.rounds for r in o.counterfactuals.values()]
        cf_rounds += sum(rounds)
        widest = max(widest, *o.gain_bounds.values())
        name = "-".join(map(str, shape)) + f" seed {seed}" + (" interacting" if interacting else "")
        for p in o.parties:
            share = errors[p] / max(1.0, 1e-3 * abs(exact.gains[p]))
            if share > worst:
                worst, worst_at = share, f"{name}, {p}: error {errors[p]:.3g}"
        print(
            f"{name:32s} joint {o.joint.rounds:4d}  counterfactual {rounds}  converged "
            f"{o.converged}  largest gain error {max(errors.values()):.3g}  largest bound "
            f"{max(o.gain_bounds.values()):.3g}",
            flush=True,
        )
    print(
        f"\nworst gain error {worst:.3f} of the accuracy bar ({worst_at}); counterfactual rounds "
        f"{cf_rounds}; unconverged {unconverged}; gains outside their bounds {outside}; largest "
        f"bound {widest:.3g}; CPU {time.process_time() - began:.1f} s"
    )


if __name__ == "__main__":
    main()
