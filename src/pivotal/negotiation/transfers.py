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
money. Every gain and transfer carries a certified error bound
(:mod:`pivotal.negotiation.certificate`); when the joint plan saves less than the bound on its
cost, nothing is certain to be gained and the outcome is the status quo with no transfers.
Counterfactual runs start warm by default: from the joint run's final plan and prices, after
it (``warm_start_counterfactuals=False``: cold, from the status quo and zero prices, beside it).
A warm-started run that stops early is off by as much as its certified bound says, no more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pivotal.arrays import FloatArray
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.agents import Party
from pivotal.negotiation.certificate import gain_bounds
from pivotal.negotiation.clarke import clarke_transfers
from pivotal.negotiation.coordinator import AdmmResult, RoundRecord
from pivotal.negotiation.protocol import MessageLog, RoundCallback, answer, drive
from pivotal.negotiation.session import (
    JOINT,
    WARM_PLAIN_ROUNDS,
    NegotiationSession,
    Phase,
    SessionTerms,
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
    gain_bounds: Mapping[str, float]
    """Certified error of each gain (and of the transfer, which differs from the gain by the
    party's exact cost saving); see :mod:`pivotal.negotiation.certificate`."""
    run_bounds: Mapping[str, float]
    """Certified error of each run's total cost (``joint``, ``without:V``)."""
    kept_status_quo: bool = False
    """The joint plan saved less than its bound: the outcome is the status quo, no transfers."""

    @property
    def transfer_bounds(self) -> Mapping[str, float]:
        """Certified error of each transfer (the gain's bound)."""
        return self.gain_bounds

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
    warm_start_counterfactuals: bool = True,
    require_convergence: bool = True,
    tolerances: Tolerances | None = None,
    warm_plain_rounds: int = WARM_PLAIN_ROUNDS,
    input_sha256: str | None = None,
    max_quantity: float = math.inf,
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
        Start counterfactual runs from the joint plan and prices, after the joint run (the
        default), instead of cold (``False``: from the status quo and zero prices, beside the
        joint run): at 40-100 products a third of the rounds or fewer (K40 seed 7: 106 + 49
        against 106 + 328, with the plain stage of ``warm_plain_rounds``) for fewer exchanges
        on the wire. A warm run that has not converged by then goes on with the default
        acceleration, then cold (a warm start can stall: one small interacting scenario, 500
        rounds unconverged warm). An early-stopped run is off by as much as its certified
        bounds say (see ``benchmarks/results/2026-12-02-negotiation-scale.md``,
        ``2026-12-02-negotiation-warm.md`` and ``2026-12-02-negotiation-plain-warm.md``).
    require_convergence:
        Raise :class:`ConvergenceError` if a run ends unconverged (default).
    warm_plain_rounds:
        Rounds of plain ADMM a warm-started counterfactual run tries first, before the run's
        own settings take over from the same start (0: none; see
        :meth:`~pivotal.negotiation.session.NegotiationSession._new_run`). Near the joint
        run's end plain ADMM converges in a few rounds (K100 seed 7: 15/16/18 against
        26/46/68).
    input_sha256:
        Hash of the input the parties were built from (a scenario's); by default the hash of
        the public terms (parties, block sizes, status quo, settings, fee).
    max_quantity:
        Public bound on every plan entry; the certificate of the money assumes an optimal plan
        within it (an infinite bound lets a value query have no finite answer).
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
        max_quantity=max_quantity,
        warm_plain_rounds=warm_plain_rounds,
    )

    def forward(phase: Phase, record: RoundRecord) -> None:
        if on_round is not None and phase == JOINT:
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
    names = terms.vendors
    hub_name = terms.hub
    costs = result.costs
    bounds = result.run_bounds
    joint_bound = bounds.get("joint", 0.0)
    saving_total = sum(c["status_quo"] - c["joint"] for c in costs.values())
    kept = saving_total < joint_bound or saving_total <= 0
    plan = result.plan
    activity_fee = terms.activity_fee
    if kept:  # nothing is certainly gained: no deal, no money moves
        costs = {
            n: {"status_quo": c["status_quo"], "joint": c["status_quo"]} for n, c in costs.items()
        }
        plan = result.status_quo_plan
        activity_fee = 0.0
        transfers = {n: 0.0 for n in terms.parties}
        bounded = {n: 0.0 for n in terms.parties}
    else:
        transfers = clarke_transfers(
            hub_name,
            names,
            {n: c["joint"] for n, c in costs.items()},
            result.counterfactual_costs,
            activity_fee,
        )
        without = {v: bounds.get(f"without:{v}", 0.0) for v in names}
        bounded = gain_bounds(hub_name, names, joint_bound, without)
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
        plan=plan,
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
        gain_bounds=bounded,
        run_bounds=dict(bounds),
        kept_status_quo=kept,
    )
