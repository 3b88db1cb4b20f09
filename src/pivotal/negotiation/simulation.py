"""In-process simulation of a scenario: every party as an object, plus centralized checks.

:func:`simulate` builds one :class:`~pivotal.negotiation.agents.LpParty` per party from the
scenario, takes the retailer's preferred plan as the status quo, runs
:func:`~pivotal.negotiation.transfers.negotiate`, and (simulation only) compares the result with
the centralized LP: the total cost gap and the transfers computed from centralized solves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.agents import LpParty
from pivotal.negotiation.centralized import solve_centralized
from pivotal.negotiation.cost_models import Block, plan_blocks, scenario_models
from pivotal.negotiation.protocol import MessageLog, RoundCallback
from pivotal.negotiation.scenario import Scenario
from pivotal.negotiation.transfers import NegotiationOutcome, negotiate, party_views
from pivotal.results import sha256_of

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CentralizedCheck:
    """Centralized reference numbers (simulation only)."""

    total_cost: float
    relative_gap: float
    transfers: dict[str, float]
    plan: tuple[FloatArray, ...]


@dataclass(frozen=True)
class Simulation:
    """A simulated negotiation: the scenario, its blocks, the outcome and the checks."""

    scenario: Scenario
    blocks: tuple[Block, ...]
    outcome: NegotiationOutcome
    centralized: CentralizedCheck | None

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON document."""
        doc = outcome_document(self.outcome, self.blocks, self.scenario.name)
        c = self.centralized
        doc["centralized_cost"] = None if c is None else c.total_cost
        doc["relative_gap"] = None if c is None else c.relative_gap
        doc["centralized_transfers"] = None if c is None else c.transfers
        doc["provenance"]["input_sha256"] = sha256_of(self.scenario.to_dict())
        doc["input"] = self.scenario.to_dict()
        history = [h.prices for h in self.outcome.joint.history if h.prices]
        if history:
            doc["price_trajectories"] = price_trajectories(history, doc["plan"])
        return doc


def outcome_document(o: NegotiationOutcome, blocks: tuple[Block, ...], name: str) -> dict[str, Any]:
    """A negotiation outcome as a JSON document (without the simulation-only checks)."""
    return {
        "scenario": name,
        "parties": list(o.parties),
        "plan": _plan_doc(blocks, o.plan),
        "status_quo_plan": _plan_doc(blocks, o.status_quo_plan),
        "costs": {k: dict(v) for k, v in o.costs.items()},
        "transfers": dict(o.transfers),
        "gains": dict(o.gains),
        "gains_without_fee": dict(o.gains_without_fee),
        "activity_fee": o.activity_fee,
        "naive_split": {
            "transfers": dict(o.naive_split_transfers),
            "gains": dict(o.naive_split_gains),
        },
        "total_cost": o.total_cost,
        "status_quo_cost": o.status_quo_cost,
        "rounds": o.rounds,
        "converged": o.converged,
        "counterfactual_rounds": {k: r.rounds for k, r in o.counterfactuals.items()},
        "residuals": [
            {
                "round": h.round,
                "primal": h.primal_residual,
                "dual": h.dual_residual,
                "eps_primal": h.eps_primal,
                "eps_dual": h.eps_dual,
                "rho": h.rho,
            }
            for h in o.joint.history
        ],
        "centralized_cost": None,
        "relative_gap": None,
        "centralized_transfers": None,
        "provenance": o.provenance.to_dict(),
    }


def price_trajectories(
    history: list[Mapping[str, FloatArray]], plan: dict[str, Any], per_vendor: int = 3
) -> dict[str, list[float]]:
    """Each vendor's own price on its largest joint-plan entries, per round of the joint run."""
    out: dict[str, list[float]] = {}
    for vendor, products in plan.items():
        entries = [
            (float(q), f"{vendor}: {product}->{site} wk {t + 1}", i)
            for i, (product, site, t, q) in enumerate(
                (p, s, t, q)
                for p, by_site in products.items()
                for s, weeks in by_site.items()
                for t, q in enumerate(weeks)
            )
        ]
        for _, label, index in sorted(entries, reverse=True)[:per_vendor]:
            out[label] = [float(h[vendor][index]) for h in history if vendor in h]
    return out


def _plan_doc(blocks: tuple[Block, ...], plan: tuple[FloatArray, ...]) -> dict[str, Any]:
    """``{vendor: {product: {site: [per week]}}}``."""
    out: dict[str, Any] = {}
    for block, flat in zip(blocks, plan, strict=True):
        arr = block.as_array(flat)
        out[block.owner] = {
            p: {s: arr[k, f].tolist() for f, s in enumerate(block.sites)}
            for k, p in enumerate(block.products)
        }
    return out


def build_parties(scenario: Scenario) -> tuple[LpParty, list[LpParty], tuple[Block, ...]]:
    """The retailer and vendor agents of a scenario, with its plan blocks."""
    models = scenario_models(scenario)
    blocks = plan_blocks(scenario)
    hub = LpParty(scenario.retailer.name, models[scenario.retailer.name])
    vendors = [LpParty(v.name, models[v.name]) for v in scenario.vendors]
    return hub, vendors, blocks


def split_blocks(blocks: tuple[Block, ...], flat: FloatArray) -> list[FloatArray]:
    """Cut a whole plan into its blocks."""
    out, start = [], 0
    for block in blocks:
        out.append(flat[start : start + block.size].copy())
        start += block.size
    return out


def centralized_check(scenario: Scenario, outcome: NegotiationOutcome) -> CentralizedCheck:
    """Total cost and transfers from centralized LPs (needs every private model)."""
    models = scenario_models(scenario)
    blocks = plan_blocks(scenario)
    sizes = [b.size for b in blocks]
    names = [v.name for v in scenario.vendors]
    views = party_views(scenario.retailer.name, names)
    joint = solve_centralized(models, views, sizes)
    transfers: dict[str, float] = {}
    total_payment = 0.0
    for b, name in enumerate(names):
        others = [v for v in views if v.name != name]
        # the others' best plan with this vendor held at its status-quo block (an LP)
        cf = solve_centralized(
            {v.name: models[v.name] for v in others},
            others,
            sizes,
            fixed={b: outcome.status_quo_plan[b]},
        )
        payment = sum(joint.costs[v.name] for v in others) - sum(cf.costs.values())
        transfers[name] = -(payment + outcome.activity_fee)
        total_payment += payment + outcome.activity_fee
    transfers[scenario.retailer.name] = total_payment
    gap = (outcome.total_cost - joint.total_cost) / max(1.0, abs(joint.total_cost))
    return CentralizedCheck(joint.total_cost, gap, transfers, joint.plan)


def simulate(
    scenario: Scenario,
    settings: AdmmSettings | None = None,
    *,
    activity_fee: float = 0.0,
    check: bool = True,
    log: MessageLog | None = None,
    on_round: RoundCallback | None = None,
    require_convergence: bool = True,
) -> Simulation:
    """Negotiate a scenario in-process; with ``check``, compare with the centralized LP."""
    hub, vendors, blocks = build_parties(scenario)
    status_quo = split_blocks(blocks, hub.preferred_plan())
    outcome = negotiate(
        hub,
        vendors,
        [b.size for b in blocks],
        status_quo,
        settings,
        activity_fee=activity_fee,
        log=log,
        on_round=on_round,
        require_convergence=require_convergence,
    )
    centralized = centralized_check(scenario, outcome) if check else None
    return Simulation(scenario, blocks, outcome, centralized)
