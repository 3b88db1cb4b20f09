"""In-process simulation of a scenario: every party as an object, plus centralized checks.

:func:`simulate` builds one :class:`~pivotal.negotiation.agents.LpParty` per party from the
scenario, takes the retailer's preferred plan as the status quo, runs
:func:`~pivotal.negotiation.transfers.negotiate`, and (simulation only) compares the result with
the centralized LP: the total cost gap and the transfers computed from centralized solves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pivotal.arrays import FloatArray
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.agents import LpParty
from pivotal.negotiation.centralized import solve_centralized
from pivotal.negotiation.clarke import clarke_transfers
from pivotal.negotiation.cost_models import Block, plan_blocks, scenario_models
from pivotal.negotiation.deployment import BOUND_FACTOR
from pivotal.negotiation.protocol import MessageLog, RoundCallback
from pivotal.negotiation.result import negotiation_result
from pivotal.negotiation.scenario import Scenario
from pivotal.negotiation.session import WARM_PLAIN_ROUNDS
from pivotal.negotiation.transfers import NegotiationOutcome, negotiate, party_views
from pivotal.results import sha256_of


@dataclass(frozen=True)
class CentralizedCheck:
    """Centralized reference numbers (simulation only)."""

    total_cost: float
    relative_gap: float
    transfers: dict[str, float]
    plan: tuple[FloatArray, ...]
    gains: dict[str, float]
    """Each party's exact VCG gain (its cost saving at the centralized plan plus its
    transfer): unlike the transfers, the same for every optimal plan."""
    costs: dict[str, float]
    """Each party's cost at the centralized plan. When the optimum is not unique, another
    optimal plan splits the same total differently, and a transfer follows the split."""


@dataclass(frozen=True)
class MoneyComparison:
    """The negotiated gains or transfers against the centralized ones."""

    what: str
    worst: str
    excess: float
    """The largest difference beyond the party's certified bound (for transfers, also beyond
    the party's cost shift between the two plans); at most 0 when all are within."""
    shifted: str
    shift: float
    """The largest shift of a party's cost between the agreed and the centralized plan (0 for
    gains, which do not depend on the split)."""


def compare_money(
    outcome: NegotiationOutcome, check: CentralizedCheck
) -> tuple[MoneyComparison, MoneyComparison]:
    """Gains and transfers against the centralized VCG. A gain must lie within its bound of
    the centralized gain. A transfer is the gain minus the party's saving at the agreed plan:
    it may differ from the centralized transfer by its bound plus the party's cost shift
    between the agreed plan and the centralized one (both optimal within the gap when the
    optimum is not unique)."""
    parties = outcome.parties
    shift = {p: outcome.costs[p]["joint"] - check.costs[p] for p in parties}
    gains = {p: abs(outcome.gains[p] - check.gains[p]) - outcome.gain_bounds[p] for p in parties}
    transfers = {
        p: abs(outcome.transfers[p] - check.transfers[p])
        - outcome.transfer_bounds[p]
        - abs(shift[p])
        for p in parties
    }
    shifted = max(parties, key=lambda p: abs(shift[p]))
    out = []
    for what, excess, moved in (("gains", gains, 0.0), ("transfers", transfers, shift[shifted])):
        worst = max(parties, key=lambda p: excess[p])
        out.append(MoneyComparison(what, worst, excess[worst], shifted, abs(moved)))
    return out[0], out[1]


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
            doc["centralized_gains"] = c.gains
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
    without: dict[str, dict[str, float]] = {}
    for b, name in enumerate(names):
        others = [v for v in views if v.name != name]
        # the others' best plan with this vendor held at its status-quo block (an LP)
        cf = solve_centralized(
            {v.name: models[v.name] for v in others},
            others,
            sizes,
            fixed={b: outcome.status_quo_plan[b]},
        )
        without[name] = dict(cf.costs)
    hub = scenario.retailer.name
    fee = outcome.activity_fee
    transfers = clarke_transfers(hub, names, joint.costs, without, fee)
    sq = {
        name: LpParty(name, models[name]).cost_at(
            np.concatenate(outcome.status_quo_plan)
            if name == hub
            else outcome.status_quo_plan[names.index(name)]
        )
        for name in scenario.parties
    }
    gains = {n: sq[n] - joint.costs[n] + transfers[n] for n in scenario.parties}
    gap = (outcome.total_cost - joint.total_cost) / max(1.0, abs(joint.total_cost))
    return CentralizedCheck(joint.total_cost, gap, transfers, joint.plan, gains, dict(joint.costs))


def public_max_quantity(scenario: Scenario) -> float:
    """The public bound on plan entries a deployment of the scenario would publish
    (:func:`~pivotal.negotiation.deployment.derived_bounds`: ten times the total demand)."""
    demand = sum(sum(series) for r in scenario.retailer.regions for series in r.demand.values())
    return min(1e15, BOUND_FACTOR * max(1.0, demand))


def simulate(
    scenario: Scenario,
    settings: AdmmSettings | None = None,
    *,
    activity_fee: float = 0.0,
    check: bool = True,
    log: MessageLog | None = None,
    on_round: RoundCallback | None = None,
    require_convergence: bool = True,
    warm_start_counterfactuals: bool = True,
    warm_plain_rounds: int = WARM_PLAIN_ROUNDS,
) -> Simulation:
    """Negotiate a scenario in-process; with ``check``, compare with the centralized LP.

    ``warm_start_counterfactuals=False`` starts the counterfactual runs cold, and
    ``warm_plain_rounds`` bounds the plain ADMM stage of a warm one
    (:func:`~pivotal.negotiation.transfers.negotiate`)."""
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
        warm_start_counterfactuals=warm_start_counterfactuals,
        warm_plain_rounds=warm_plain_rounds,
        input_sha256=sha256_of(scenario.to_dict()),
        max_quantity=public_max_quantity(scenario),
    )
    centralized = centralized_check(scenario, outcome) if check else None
    return Simulation(scenario, blocks, outcome, centralized)
