"""Consensus planning: rounds and time to converge, fixed rho (plain ADMM) against adaptive.

Usage::

    .venv/bin/python benchmarks/negotiation.py [--max-rounds 1000] [--sizes ...]

For each scenario (the built-in truck example and generated ones of growing size, written
``K.F.R.T.V`` = products, sites, regions, weeks, vendors, with the generator's seed) it runs the
joint protocol with

- plain ADMM at three fixed penalties (``rho`` = 1e-4, 1e-3, 1e-2; no penalty adaptation, no
  over-relaxation, no acceleration),
- pivotal's adaptive defaults ("adaptive": restarted Halpern iteration with alpha = 2 and the
  penalty re-estimated at restarts; see :mod:`pivotal.negotiation.admm`), and
- the previous defaults ("balance+anderson": normalized residual balancing every 5 rounds,
  alpha = 1.3, safeguarded Anderson acceleration with memory 10),

all with the same stopping rule (``eps_abs = eps_rel = 1e-6``) from the same status-quo start,
and prints rounds (``>N`` when not converged within ``--max-rounds``), wall time, and the gap of
the final plan's total cost to the centralized LP optimum. For the adaptive defaults it also runs
the whole mechanism (counterfactual runs included) and prints the largest transfer error against
transfers from centralized solves, and the largest share of the allowed error used (each transfer
may be off by 1e-3 of itself or 1 currency unit, whichever is larger). ``--seeds 1,2,3``
repeats the generated scenarios with other generator seeds; ``--skip-fixed`` leaves out the
(slow) fixed-penalty runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.centralized import solve_centralized
from pivotal.negotiation.coordinator import RoundRecord
from pivotal.negotiation.cost_models import plan_blocks, scenario_models
from pivotal.negotiation.protocol import drive
from pivotal.negotiation.scenario import Scenario, generate_scenario, truck_example
from pivotal.negotiation.session import NegotiationSession, SessionTerms, party_views
from pivotal.negotiation.simulation import (
    build_parties,
    public_max_quantity,
    simulate,
    split_blocks,
)


def joint_run(scenario: Scenario, settings: AdmmSettings) -> tuple[int, bool, float, float]:
    """The joint run alone, driven by the one in-process driver: the counterfactual runs get one
    round each (not converged, not required) and the joint run's time ends at its last round."""
    hub, vendors, blocks = build_parties(scenario)
    sq = split_blocks(blocks, hub.preferred_plan())
    views = party_views(hub.name, [v.name for v in vendors])
    terms = SessionTerms(
        hub.name,
        tuple(v.name for v in vendors),
        tuple(b.size for b in blocks),
        settings,
        counterfactual_settings=AdmmSettings(max_rounds=1),
        require_convergence=False,
        max_quantity=public_max_quantity(scenario),
    )
    ended = [0.0]

    def on_round(phase: object, record: RoundRecord) -> None:
        if str(phase) == "joint":  # a Phase (its string is the phase's name)
            ended[0] = time.perf_counter()

    session = NegotiationSession(terms, sq, on_round=on_round)
    start = time.perf_counter()
    drive(session, [hub, *vendors])
    seconds = ended[0] - start
    result = session.joint
    assert result is not None
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
    parser.add_argument("--seeds", default="1", help="generator seeds, comma-separated")
    parser.add_argument("--skip-fixed", action="store_true", help="no fixed-rho runs")
    args = parser.parse_args()
    scenarios = [("truck-example", truck_example())]
    for seed in (int(x) for x in args.seeds.split(",")):
        for spec in args.sizes.split(","):
            k, f, r, t, v = (int(x) for x in spec.split("."))
            rng = np.random.default_rng(seed)
            scenarios.append((f"{spec} s{seed}", generate_scenario(k, f, r, t, v, rng)))
    fixed = [
        (
            f"fixed rho={rho:g}",
            AdmmSettings(
                rho=rho, adapt_rho=False, alpha=1.0, acceleration="none", max_rounds=args.max_rounds
            ),
        )
        for rho in (1e-4, 1e-3, 1e-2)
    ]
    configs = ([] if args.skip_fixed else fixed) + [
        ("adaptive", AdmmSettings(max_rounds=args.max_rounds)),
        ("balance+anderson", AdmmSettings(max_rounds=args.max_rounds, acceleration="anderson")),
    ]
    most = {label: 0 for label, _ in configs if not label.startswith("fixed")}
    print(
        f"{'scenario':<18} {'settings':<16} {'rounds':>7} {'seconds':>8} {'gap':>9} "
        f"{'transfer err':>24}"
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
                # the criterion per transfer: within 1e-3 relative or 1 currency unit
                errors = {
                    p: abs(sim.outcome.transfers[p] - sim.centralized.transfers[p])
                    for p in sim.outcome.transfers
                }
                err = max(errors.values())
                used = max(
                    e / max(1.0, 1e-3 * abs(sim.centralized.transfers[p]))
                    for p, e in errors.items()
                )
                err_txt = f"{err:.3g} ({used:.2f} of allowed)"
            if label in most:
                most[label] = max(most[label], rounds if converged else 10**9)
            elif label.startswith("fixed"):
                worst = max(worst, rounds if converged else args.max_rounds)
            print(
                f"{name:<18} {label:<16} {shown:>7} {seconds:>8.2f} {gap:>9.1e} {err_txt:>24}",
                flush=True,
            )
        if not args.skip_fixed:
            ratio = worst / adaptive_rounds if adaptive_rounds < 10**9 else float("nan")
            print(f"{name:<18} worst fixed / adaptive rounds: >= {ratio:.1f}", flush=True)
    for label, rounds in most.items():
        shown = str(rounds) if rounds < 10**9 else f"not converged within {args.max_rounds}"
        print(f"most rounds over all scenarios, {label}: {shown} (target: at most 200)")


if __name__ == "__main__":
    main()
