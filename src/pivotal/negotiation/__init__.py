"""Private firm-to-firm negotiation: consensus ADMM between a retailer and its vendors, with VCG
transfers relative to the status-quo plan.

What a library user needs, from the scenario to the outcome::

    from pivotal.negotiation import AdmmSettings, simulate, truck_example

    sim = simulate(truck_example(), AdmmSettings(eps_abs=1e-6, eps_rel=1e-6))
    sim.outcome.transfers, sim.outcome.gains

Scenario files are described in ``docs/scenario-format.md``. The names below are loaded on first
use, so that importing one submodule (the service's agent, say) does not load them all.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pivotal.negotiation.admm import AdmmSettings
    from pivotal.negotiation.agents import LpParty, Party
    from pivotal.negotiation.centralized import CentralizedSolution, solve_centralized
    from pivotal.negotiation.deployment import (
        NegotiationConfig,
        load_config,
        load_private,
        split_scenario,
    )
    from pivotal.negotiation.scenario import (
        Scenario,
        built_in,
        generate_scenario,
        load_scenario,
        scenario_from_document,
        truck_example,
    )
    from pivotal.negotiation.session import NegotiationSession, SessionTerms
    from pivotal.negotiation.simulation import CentralizedCheck, Simulation, simulate
    from pivotal.negotiation.transfers import NegotiationOutcome, negotiate
    from pivotal.results import Tolerances

_EXPORTS = {
    "AdmmSettings": "pivotal.negotiation.admm",
    "CentralizedCheck": "pivotal.negotiation.simulation",
    "CentralizedSolution": "pivotal.negotiation.centralized",
    "LpParty": "pivotal.negotiation.agents",
    "NegotiationConfig": "pivotal.negotiation.deployment",
    "NegotiationOutcome": "pivotal.negotiation.transfers",
    "NegotiationSession": "pivotal.negotiation.session",
    "Party": "pivotal.negotiation.agents",
    "Scenario": "pivotal.negotiation.scenario",
    "SessionTerms": "pivotal.negotiation.session",
    "Simulation": "pivotal.negotiation.simulation",
    "Tolerances": "pivotal.results",
    "built_in": "pivotal.negotiation.scenario",
    "generate_scenario": "pivotal.negotiation.scenario",
    "load_config": "pivotal.negotiation.deployment",
    "load_private": "pivotal.negotiation.deployment",
    "load_scenario": "pivotal.negotiation.scenario",
    "negotiate": "pivotal.negotiation.transfers",
    "scenario_from_document": "pivotal.negotiation.scenario",
    "simulate": "pivotal.negotiation.simulation",
    "solve_centralized": "pivotal.negotiation.centralized",
    "split_scenario": "pivotal.negotiation.deployment",
    "truck_example": "pivotal.negotiation.scenario",
}

__all__ = [
    "AdmmSettings",
    "CentralizedCheck",
    "CentralizedSolution",
    "LpParty",
    "NegotiationConfig",
    "NegotiationOutcome",
    "NegotiationSession",
    "Party",
    "Scenario",
    "SessionTerms",
    "Simulation",
    "Tolerances",
    "built_in",
    "generate_scenario",
    "load_config",
    "load_private",
    "load_scenario",
    "negotiate",
    "scenario_from_document",
    "simulate",
    "solve_centralized",
    "split_scenario",
    "truck_example",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pivotal.negotiation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
