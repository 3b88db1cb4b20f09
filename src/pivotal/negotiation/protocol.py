"""Driving the coordinator in-process, with a record of every message it receives.

The driver passes broadcasts to the parties and their answers back to the coordinator; a
:class:`MessageLog` keeps what the coordinator received (plans with round numbers, and scalar
costs at named plans), so tests can check that nothing else ever crosses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pivotal.arrays import FloatArray
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.agents import Party
from pivotal.negotiation.coordinator import AdmmResult, Coordinator, PartyView, RoundRecord

RoundCallback = Callable[[RoundRecord], None]


@dataclass
class MessageLog:
    """Messages received from parties, as plain JSON-like records."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    def plan(self, party: str, round_: int, plan: FloatArray) -> None:
        """A best-response plan for a round."""
        self.messages.append(
            {"type": "plan", "party": party, "round": round_, "plan": plan.tolist()}
        )

    def cost(self, party: str, plan_name: str, cost: float) -> None:
        """A scalar cost at a named plan."""
        self.messages.append({"type": "cost", "party": party, "plan": plan_name, "cost": cost})


def run_protocol(
    parties: Sequence[Party],
    views: Sequence[PartyView],
    block_sizes: Sequence[int],
    settings: AdmmSettings,
    *,
    initial_plan: Sequence[FloatArray] | None = None,
    initial_prices: Mapping[str, FloatArray] | None = None,
    log: MessageLog | None = None,
    on_round: RoundCallback | None = None,
) -> AdmmResult:
    """Run consensus ADMM to convergence (or ``max_rounds``) with the parties in this process."""
    by_name = {p.name: p for p in parties}
    coordinator = Coordinator(
        block_sizes, views, settings, initial_plan=initial_plan, initial_prices=initial_prices
    )
    broadcasts = coordinator.start()
    while broadcasts:
        responses = {}
        for name, b in broadcasts.items():
            x = by_name[name].best_response(b.z, b.prices, b.rho)
            if log is not None:
                log.plan(name, b.round, x)
            responses[name] = x
        broadcasts = coordinator.step(responses)
        if on_round is not None:
            on_round(coordinator.history[-1])
    return coordinator.result()


def ask_cost(party: Party, plan_name: str, plan: FloatArray, log: MessageLog | None) -> float:
    """A scalar cost query, recorded in the log."""
    cost = float(party.cost_at(plan))
    if log is not None:
        log.cost(party.name, plan_name, cost)
    return cost
