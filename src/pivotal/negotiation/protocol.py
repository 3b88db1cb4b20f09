"""The one in-process driver of a negotiation, and the one way a party answers a task.

:func:`answer` is the agent's side of the protocol (the service's agent calls it on the task
it received over the wire, the driver and the tests on the session's task); :func:`drive` passes
each party its task and the answer back to the session until the negotiation ends. A
:class:`MessageLog` keeps what the coordinator received (plans with round numbers, scalar costs
at named plans and scalar values at named prices), so tests can check that nothing else ever
crosses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pivotal.arrays import FloatArray
from pivotal.errors import InputError
from pivotal.negotiation.agents import Party
from pivotal.negotiation.coordinator import RoundRecord
from pivotal.negotiation.session import NegotiationSession, Task

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

    def value(self, party: str, label: str, value: float) -> None:
        """A scalar value ``min C(x) + nu'x`` at the prices of a named run."""
        self.messages.append({"type": "value", "party": party, "label": label, "value": value})


def ask_cost(party: Party, plan_name: str, plan: FloatArray, log: MessageLog | None) -> float:
    """A scalar cost query, recorded in the log."""
    cost = float(party.cost_at(plan))
    if log is not None:
        log.cost(party.name, plan_name, cost)
    return cost


def answer(
    party: Party, task: Task, log: MessageLog | None = None
) -> FloatArray | dict[str, float]:
    """A party's answer to a task: a plan (``status_quo``, ``best_response``) or scalar costs
    and values by label (``costs``)."""
    if task.kind == "status_quo":
        return party.preferred_plan()
    if task.kind == "best_response":
        if task.z is None or task.prices is None or task.rho is None:
            raise InputError("a best-response task needs z, prices and rho")
        x = party.best_response(task.z, task.prices, task.rho)
        if log is not None:
            log.plan(party.name, task.round, x)
        return x
    if task.kind == "costs":
        out = {label: ask_cost(party, label, plan, log) for label, plan in task.plans.items()}
        for label, prices in task.values.items():
            out[label] = float(party.value_at_prices(prices, task.max_quantity))
            if log is not None:
                log.value(party.name, label, out[label])
        return out
    raise InputError(f"a party cannot answer a '{task.kind}' task")


def drive(
    session: NegotiationSession, parties: Sequence[Party], log: MessageLog | None = None
) -> None:
    """Run a session to its end with every party in this process: in each exchange every party
    with open tasks answers all of them (one task per running protocol run), as the service's
    agents do with the tasks a message carries."""
    by_name = {p.name: p for p in parties}
    while session.status == "running":
        for name in session.missing():
            for task in session.tasks(name):
                session.submit(name, task.phase, task.round, answer(by_name[name], task, log))
