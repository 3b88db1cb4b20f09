"""The negotiation's result document: plans, costs, transfers and gains, the protocol's
history, the simulation's centralized check (when there is one) and the input.

Both the in-process simulation (``pivotal negotiate run``) and the coordinator service (the
operator's ``/v1/outcome``) write this document; a service outcome records no ``input`` (the
coordinator holds only public terms) and no centralized check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pivotal.arrays import FloatArray
from pivotal.documents import DocumentModel, ResultDocument
from pivotal.results import ResultKind, tagged

if TYPE_CHECKING:
    from pivotal.negotiation.cost_models import Block
    from pivotal.negotiation.transfers import NegotiationOutcome

Plan = dict[str, dict[str, dict[str, list[float]]]]
"""``{vendor: {product: {site: [quantity per week]}}}``."""


class PartyCosts(DocumentModel):
    """A party's reported cost of the status-quo plan and of the joint plan."""

    status_quo: float
    joint: float


class NaiveSplit(DocumentModel):
    """The equal split of the saving, for comparison (not incentive compatible)."""

    transfers: dict[str, float]
    gains: dict[str, float]


class Residuals(DocumentModel):
    """One round of the joint run: residuals, their tolerances and the penalty."""

    round: int
    primal: float
    dual: float
    eps_primal: float
    eps_dual: float
    rho: float


class NegotiationResult(ResultDocument):
    """The document of ``pivotal negotiate run`` and of the service's outcome. ``transfers``
    are paid **to** each party; ``gains`` are its cost saving plus its transfer.

    ``gain_bounds`` and ``transfer_bounds`` certify the money: each value is within its bound
    of the exact VCG value (:mod:`pivotal.negotiation.certificate`); ``run_bounds`` bound each
    protocol run's total cost. ``kept_status_quo``: the joint plan saved less than its bound, so
    the outcome is the status quo and no money moves."""

    scenario: str
    parties: list[str]
    plan: Plan
    status_quo_plan: Plan
    costs: dict[str, PartyCosts]
    transfers: dict[str, float]
    gains: dict[str, float]
    gains_without_fee: dict[str, float]
    activity_fee: float
    naive_split: NaiveSplit
    total_cost: float
    status_quo_cost: float
    rounds: int
    converged: bool
    counterfactual_rounds: dict[str, int]
    residuals: list[Residuals]
    gain_bounds: dict[str, float] | None = None
    transfer_bounds: dict[str, float] | None = None
    run_bounds: dict[str, float] | None = None
    kept_status_quo: bool = False
    centralized_cost: float | None = None
    relative_gap: float | None = None
    centralized_transfers: dict[str, float] | None = None
    centralized_gains: dict[str, float] | None = None
    price_trajectories: dict[str, list[float]] | None = None
    input: dict[str, Any] | None = None


@dataclass(frozen=True)
class PartyShare:
    """What one party may see of an outcome: the plan blocks it holds (the retailer every
    block, a vendor its own), at the joint plan and at the status quo, its own reported costs,
    its transfer (paid to it) and its gain, each with its certified bound."""

    party: str
    plan: tuple[float, ...]
    status_quo_plan: tuple[float, ...]
    costs: Mapping[str, float]
    transfer: float
    gain: float
    gain_without_fee: float
    bound: float
    rounds: int


def party_share(outcome: NegotiationOutcome, party: str) -> PartyShare:
    """``party``'s share of ``outcome`` (the retailer is the first party, then the vendors in
    block order).

    Raises
    ------
    KeyError
        If ``party`` is not a party of the outcome.
    """
    hub, *vendors = outcome.parties
    if party not in outcome.parties:
        raise KeyError(party)
    blocks = range(len(outcome.plan)) if party == hub else (vendors.index(party),)
    return PartyShare(
        party=party,
        plan=tuple(x for b in blocks for x in outcome.plan[b].tolist()),
        status_quo_plan=tuple(x for b in blocks for x in outcome.status_quo_plan[b].tolist()),
        costs=dict(outcome.costs[party]),
        transfer=outcome.transfers[party],
        gain=outcome.gains[party],
        gain_without_fee=outcome.gains_without_fee[party],
        bound=outcome.gain_bounds.get(party, 0.0),
        rounds=outcome.rounds,
    )


def plan_document(blocks: tuple[Block, ...], plan: tuple[FloatArray, ...]) -> Plan:
    """A plan as ``{vendor: {product: {site: [per week]}}}``."""
    out: Plan = {}
    for block, flat in zip(blocks, plan, strict=True):
        arr = block.as_array(flat)
        out[block.owner] = {
            p: {s: arr[k, f].tolist() for f, s in enumerate(block.sites)}
            for k, p in enumerate(block.products)
        }
    return out


def price_trajectories(
    history: list[Mapping[str, FloatArray]], plan: Plan, per_vendor: int = 3
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


def negotiation_result(
    o: NegotiationOutcome,
    blocks: tuple[Block, ...],
    name: str,
    *,
    input: dict[str, Any] | None = None,
    trajectories: bool = False,
) -> dict[str, Any]:
    """The result document of a negotiation outcome (see :class:`NegotiationResult`), with the
    recorded ``input`` and (``trajectories``) the vendors' price trajectories when given; the
    simulation fills in the centralized check."""
    plan = plan_document(blocks, o.plan)
    doc = tagged(
        ResultKind.NEGOTIATION,
        {
            "scenario": name,
            "parties": list(o.parties),
            "plan": plan,
            "status_quo_plan": plan_document(blocks, o.status_quo_plan),
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
            "gain_bounds": dict(o.gain_bounds),
            "transfer_bounds": dict(o.transfer_bounds),
            "run_bounds": dict(o.run_bounds),
            "kept_status_quo": o.kept_status_quo,
            "centralized_cost": None,
            "relative_gap": None,
            "centralized_transfers": None,
            "centralized_gains": None,
            "provenance": o.provenance.to_dict(),
        },
    )
    if input is not None:
        doc["input"] = input
    history = [h.prices for h in o.joint.history if h.prices]
    if trajectories and history:
        doc["price_trajectories"] = price_trajectories(history, plan)
    return doc


__all__ = [
    "NegotiationResult",
    "PartyShare",
    "negotiation_result",
    "party_share",
    "plan_document",
    "price_trajectories",
]
