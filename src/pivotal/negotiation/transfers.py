"""Clarke pivot transfers relative to the status quo, on top of the consensus protocol.

Parties: a hub (the retailer), which holds every plan block, and vendors, each owning one
block. The status quo ``q_SQ`` is the hub's own preferred plan (its just-in-time order), which
the vendors must ship. With ``q*`` the joint plan and ``q^{-v}`` the best plan for the others
when vendor ``v`` is held at its status-quo block (one more protocol run without ``v``), vendor
``v`` pays (DESIGN.md section 3)

    P_v = sum_{j != v} C_j(q*) - sum_{j != v} C_j(q^{-v})

to the hub. With one vendor ``q^{-v} = q_SQ`` and ``P_V = C_R(q*) - C_R(q_SQ)``: the vendor
compensates the retailer for the change it causes and keeps the whole saving. An optional
activity fee (a lump sum per vendor, independent of reports) moves money from each vendor to the
hub. Transfers are signed from the party's side: positive = paid to the party.

For comparison, the naive rule "split the saving equally" gives each of the ``V + 1`` parties
``S / (V + 1)`` of the reported total saving ``S``; it is not truthful.

Accuracy: transfers are differences of optimal costs, so protocol tolerances go straight into
money. Counterfactual runs start cold (from the status quo, zero prices) by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pivotal.arrays import FloatArray
from pivotal.errors import InputError
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.agents import Party
from pivotal.negotiation.coordinator import AdmmResult, RoundRecord
from pivotal.negotiation.protocol import MessageLog, RoundCallback, ask_cost
from pivotal.negotiation.session import (
    NegotiationSession,
    SessionTerms,
    Task,
    party_views,
    raise_if_failed,
)
from pivotal.results import Provenance, ResultKind, Tolerances, sha256_of

__all__ = ["NegotiationOutcome", "answer", "drive", "negotiate", "party_views", "settle"]


@dataclass(frozen=True)
class NegotiationOutcome:
    """The joint plan, costs, transfers and gains, with the protocol's history."""

    parties: tuple[str, ...]
    plan: tuple[FloatArray, ...]
    status_quo_plan: tuple[FloatArray, ...]
    costs: Mapping[str, Mapping[str, float]]
    transfers: Mapping[str, float]
    gains: Mapping[str, float]
    gains_without_fee: Mapping[str, float]
    activity_fee: float
    naive_split_transfers: Mapping[str, float]
    naive_split_gains: Mapping[str, float]
    joint: AdmmResult
    counterfactuals: Mapping[str, AdmmResult]
    counterfactual_costs: Mapping[str, Mapping[str, float]]
    provenance: Provenance

    @property
    def kind(self) -> ResultKind:
        """``negotiation`` (the result contract, :class:`pivotal.results.Outcome`)."""
        return ResultKind.NEGOTIATION

    @property
    def participants(self) -> tuple[str, ...]:
        """The retailer, then the vendors."""
        return self.parties

    @property
    def utilities(self) -> Mapping[str, float]:
        """Each party's gain: its cost saving plus its transfer."""
        return self.gains

    @property
    def rounds(self) -> int:
        """Rounds of the joint run."""
        return self.joint.rounds

    @property
    def converged(self) -> bool:
        """Whether the joint run and every counterfactual run converged."""
        return self.joint.converged and all(r.converged for r in self.counterfactuals.values())

    @property
    def total_cost(self) -> float:
        """Sum of the parties' costs at the joint plan."""
        return float(sum(c["joint"] for c in self.costs.values()))

    @property
    def status_quo_cost(self) -> float:
        """Sum of the parties' costs at the status quo."""
        return float(sum(c["status_quo"] for c in self.costs.values()))


def answer(
    party: Party, task: Task, log: MessageLog | None = None
) -> FloatArray | dict[str, float]:
    """A party's answer to a best-response or costs task (the agent's side of the protocol)."""
    if task.kind == "best_response":
        assert task.z is not None and task.prices is not None and task.rho is not None
        x = party.best_response(task.z, task.prices, task.rho)
        if log is not None:
            log.plan(party.name, task.round, x)
        return x
    if task.kind == "costs":
        return {label: ask_cost(party, label, plan, log) for label, plan in task.plans.items()}
    raise InputError(f"a party cannot answer a '{task.kind}' task here")


def drive(
    session: NegotiationSession, parties: Sequence[Party], log: MessageLog | None = None
) -> None:
    """Run a session to its end with every party in this process."""
    by_name = {p.name: p for p in parties}
    while session.status == "running":
        for name in session.missing():
            task = session.task(name)
            session.submit(name, task.phase, task.round, answer(by_name[name], task, log))


def negotiate(
    hub: Party,
    vendors: Sequence[Party],
    block_sizes: Sequence[int],
    status_quo: Sequence[FloatArray],
    settings: AdmmSettings | None = None,
    *,
    activity_fee: float = 0.0,
    log: MessageLog | None = None,
    on_round: RoundCallback | None = None,
    counterfactual_settings: AdmmSettings | None = None,
    warm_start_counterfactuals: bool = False,
    require_convergence: bool = True,
    tolerances: Tolerances | None = None,
    input_sha256: str | None = None,
) -> NegotiationOutcome:
    """Run the joint protocol, the counterfactual runs and compute the transfers.

    The parties answer a :class:`~pivotal.negotiation.session.NegotiationSession` in this
    process; the coordinator service drives the same session over HTTP.

    Parameters
    ----------
    hub, vendors:
        The parties (vendor ``v`` owns block ``v``).
    block_sizes, status_quo:
        The plan's blocks and the status-quo plan per block.
    settings, counterfactual_settings:
        ADMM settings of the joint and counterfactual runs.
    activity_fee:
        Lump sum each vendor pays the hub.
    on_round:
        Called after every round of the joint run.
    warm_start_counterfactuals:
        Start counterfactual runs from the joint plan and prices instead of cold (for the
        accuracy demonstration; with early stopping it gives wrong transfers).
    require_convergence:
        Raise :class:`ConvergenceError` if a run ends unconverged (default).
    input_sha256:
        Hash of the input the parties were built from (a scenario's); by default the hash of
        the public terms (parties, block sizes, status quo, settings, fee).
    """
    terms = SessionTerms(
        hub.name,
        tuple(v.name for v in vendors),
        tuple(int(n) for n in block_sizes),
        settings or AdmmSettings(),
        counterfactual_settings,
        activity_fee,
        warm_start_counterfactuals,
        require_convergence,
        tolerances or Tolerances(abs_tol=1e-3, rel_tol=1e-4),
    )

    def forward(phase: str, record: RoundRecord) -> None:
        if on_round is not None and phase == "joint":
            on_round(record)

    session = NegotiationSession(terms, status_quo, on_round=forward)
    drive(session, [hub, *vendors], log)
    raise_if_failed(session)
    if input_sha256 is None:
        input_sha256 = sha256_of(
            {
                "parties": list(terms.parties),
                "block_sizes": list(terms.block_sizes),
                "status_quo": [np.asarray(b, dtype=float).tolist() for b in status_quo],
                "settings": repr(terms.settings),
                "counterfactual_settings": repr(terms.counterfactual_settings),
                "activity_fee": activity_fee,
            }
        )
    return settle(session, input_sha256=input_sha256)


def settle(
    session: NegotiationSession, *, input_sha256: str, seconds: float | None = None
) -> NegotiationOutcome:
    """Transfers and gains from a finished session, computed from the input whose SHA-256 is
    ``input_sha256`` (the scenario, or the service's config)."""
    result = session.outcome()
    terms = session.terms
    activity_fee = terms.activity_fee
    costs = result.costs
    payments = result.payments
    names = terms.vendors
    hub_name = terms.hub
    transfers = {hub_name: float(sum(payments.values()) + activity_fee * len(names))}
    for vendor in names:
        transfers[vendor] = -(payments[vendor] + activity_fee)
    saving = {n: c["status_quo"] - c["joint"] for n, c in costs.items()}
    gains = {n: saving[n] + transfers[n] for n in costs}
    gains_without_fee = {
        n: gains[n] + (-activity_fee * len(names) if n == hub_name else activity_fee) for n in costs
    }
    share = sum(saving.values()) / len(costs)
    naive_transfers = {n: share - saving[n] for n in costs}
    naive_gains = {n: saving[n] + naive_transfers[n] for n in costs}
    provenance = session.provenance(input_sha256=input_sha256, seconds=seconds)
    return NegotiationOutcome(
        parties=terms.parties,
        plan=result.plan,
        status_quo_plan=result.status_quo_plan,
        costs=costs,
        transfers=transfers,
        gains=gains,
        gains_without_fee=gains_without_fee,
        activity_fee=activity_fee,
        naive_split_transfers=naive_transfers,
        naive_split_gains=naive_gains,
        joint=result.joint,
        counterfactuals=result.counterfactuals,
        counterfactual_costs=result.counterfactual_costs,
        provenance=provenance,
    )
