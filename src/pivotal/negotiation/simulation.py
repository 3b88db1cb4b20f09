"""In-process simulation of a scenario: every party as an object, plus centralized checks.

:func:`simulate` builds one :class:`~pivotal.negotiation.agents.LpParty` per party from the
scenario, takes the retailer's preferred plan as the status quo, runs
:func:`~pivotal.negotiation.transfers.negotiate`, and (simulation only) compares the result with
the centralized LP: the total cost gap and the transfers computed from centralized solves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pivotal.arrays import FloatArray
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.agents import LpParty
from pivotal.negotiation.centralized import solve_centralized
from pivotal.negotiation.cost_models import Block, plan_blocks, scenario_models
from pivotal.negotiation.protocol import MessageLog, RoundCallback
from pivotal.negotiation.result import negotiation_result
from pivotal.negotiation.scenario import Scenario
from pivotal.negotiation.transfers import NegotiationOutcome, negotiate, party_views
from pivotal.results import sha256_of


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
        """The result document (:class:`~pivotal.negotiation.result.NegotiationResult`)."""
        doc = negotiation_result(
            self.outcome,
            self.blocks,
            self.scenario.name,
            input=self.scenario.to_dict(),
            trajectories=True,
        )
        c = self.centralized
        if c is not None:
            doc["centralized_cost"] = c.total_cost
            doc["relative_gap"] = c.relative_gap
            doc["centralized_transfers"] = c.transfers
        return doc


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
        input_sha256=sha256_of(scenario.to_dict()),
    )
    centralized = centralized_check(scenario, outcome) if check else None
    return Simulation(scenario, blocks, outcome, centralized)
