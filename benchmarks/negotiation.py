"""Consensus planning: rounds and time to converge, fixed rho (plain ADMM) against adaptive.

Usage::

    .venv/bin/python benchmarks/negotiation.py [--max-rounds 1000] [--sizes ...]

For each scenario (the built-in truck example and generated ones of growing size, written
``K.F.R.T.V`` = products, sites, regions, weeks, vendors) it runs the joint protocol with

- plain ADMM at three fixed penalties (``rho`` = 1e-4, 1e-3, 1e-2; no residual balancing, no
  over-relaxation, no Anderson acceleration), and
- pivotal's adaptive defaults (normalized residual balancing every 5 rounds, over-relaxation
  alpha = 1.3, safeguarded Anderson acceleration with memory 10),

all with the same stopping rule (``eps_abs = eps_rel = 1e-6``) from the same status-quo start,
and prints rounds (``>N`` when not converged within ``--max-rounds``), wall time, and the gap of
the final plan's total cost to the centralized LP optimum. For the adaptive settings it also runs
the whole mechanism (counterfactual runs included) and prints the largest transfer error against
transfers from centralized solves.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.centralized import solve_centralized
from pivotal.negotiation.cost_models import plan_blocks, scenario_models
from pivotal.negotiation.protocol import run_protocol
from pivotal.negotiation.scenario import Scenario, generate_scenario, truck_example
from pivotal.negotiation.simulation import build_parties, simulate, split_blocks
from pivotal.negotiation.transfers import party_views


def joint_run(scenario: Scenario, settings: AdmmSettings) -> tuple[int, bool, float, float]:
    hub, vendors, blocks = build_parties(scenario)
    sq = split_blocks(blocks, hub.preferred_plan())
    views = party_views(hub.name, [v.name for v in vendors])
    start = time.perf_counter()
    result = run_protocol(
        [hub, *vendors], views, [b.size for b in blocks], settings, initial_plan=sq
    )
    seconds = time.perf_counter() - start
    plan = result.plan
    total = hub.cost_at(np.concatenate(plan)) + sum(
        v.cost_at(p) for v, p in zip(vendors, plan, strict=True)
    )
    models = scenario_models(scenario)
    best = solve_centralized(models, views, [b.size for b in plan_blocks(scenario)]).total_cost
    return result.rounds, result.converged, seconds, (total - best) / max(1.0, abs(best))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rounds", type=int, default=1000)
    parser.add_argument("--sizes", default="4.3.3.2.2,6.4.4.3.3,10.6.6.4.3,20.10.10.6.3")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    scenarios = [("truck-example", truck_example())]
    for spec in args.sizes.split(","):
        k, f, r, t, v = (int(x) for x in spec.split("."))
        scenarios.append((spec, generate_scenario(k, f, r, t, v, np.random.default_rng(args.seed))))
    configs = [
        (
            f"fixed rho={rho:g}",
            AdmmSettings(
                rho=rho, adapt_rho=False, alpha=1.0, anderson=0, max_rounds=args.max_rounds
            ),
        )
        for rho in (1e-4, 1e-3, 1e-2)
    ] + [("adaptive", AdmmSettings(max_rounds=args.max_rounds))]
    print(
        f"{'scenario':<15} {'settings':<16} {'rounds':>7} {'seconds':>8} {'gap':>9} "
        f"{'transfer err':>13}"
    )
    for name, scenario in scenarios:
        worst = 0
        adaptive_rounds = 0
        for label, settings in configs:
            rounds, converged, seconds, gap = joint_run(scenario, settings)
            shown = str(rounds) if converged else f">{rounds}"
            err_txt = ""
            if label == "adaptive":
                adaptive_rounds = rounds if converged else 10**9
                sim = simulate(scenario, settings, require_convergence=False)
                assert sim.centralized is not None
                err = max(
                    abs(sim.outcome.transfers[p] - sim.centralized.transfers[p])
                    for p in sim.outcome.transfers
                )
                scale = max(abs(x) for x in sim.centralized.transfers.values())
                err_txt = f"{err:.3g} ({err / max(scale, 1.0):.1e} rel)"
            else:
                worst = max(worst, rounds if converged else args.max_rounds)
            print(
                f"{name:<15} {label:<16} {shown:>7} {seconds:>8.2f} {gap:>9.1e} {err_txt:>13}",
                flush=True,
            )
        ratio = worst / adaptive_rounds if adaptive_rounds < 10**9 else float("nan")
        print(f"{name:<15} worst fixed / adaptive rounds: >= {ratio:.1f}", flush=True)


if __name__ == "__main__":
    main()
