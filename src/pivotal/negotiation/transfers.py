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

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pivotal.errors import ConvergenceError
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.agents import FixedPlanParty, Party
from pivotal.negotiation.coordinator import AdmmResult, PartyView
from pivotal.negotiation.protocol import MessageLog, RoundCallback, ask_cost, run_protocol
from pivotal.results import Provenance, Tolerances, package_version

FloatArray = npt.NDArray[np.float64]


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


def party_views(hub: str, vendors: Sequence[str]) -> list[PartyView]:
    return [PartyView(hub, tuple(range(len(vendors))))] + [
        PartyView(name, (b,)) for b, name in enumerate(vendors)
    ]


def _require(result: AdmmResult, what: str) -> None:
    if not result.converged:
        last = result.history[-1] if result.history else None
        detail = (
            f"; last primal residual {last.primal_residual:.3g} (tolerance {last.eps_primal:.3g}), "
            f"dual residual {last.dual_residual:.3g} (tolerance {last.eps_dual:.3g})"
            if last is not None
            else ""
        )
        raise ConvergenceError(
            f"{what} did not converge in {result.rounds} rounds{detail}; raise --max-rounds or "
            "loosen the tolerances"
        )


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
) -> NegotiationOutcome:
    """Run the joint protocol, the counterfactual runs and compute the transfers.

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
    warm_start_counterfactuals:
        Start counterfactual runs from the joint plan and prices instead of cold (for the
        accuracy demonstration; with early stopping it gives wrong transfers).
    require_convergence:
        Raise :class:`ConvergenceError` if a run ends unconverged (default).
    """
    start = time.perf_counter()
    s = settings or AdmmSettings()
    cs = counterfactual_settings or s
    names = [v.name for v in vendors]
    parties: list[Party] = [hub, *vendors]
    views = party_views(hub.name, names)
    sq = [np.asarray(p, dtype=np.float64) for p in status_quo]
    joint = run_protocol(
        parties, views, block_sizes, s, initial_plan=sq, log=log, on_round=on_round
    )
    if require_convergence:
        _require(joint, "the joint protocol run")
    plan = joint.plan
    full = np.concatenate(plan)
    full_sq = np.concatenate(sq)
    costs: dict[str, dict[str, float]] = {
        hub.name: {
            "status_quo": ask_cost(hub, "status_quo", full_sq, log),
            "joint": ask_cost(hub, "joint", full, log),
        }
    }
    for b, vendor in enumerate(vendors):
        costs[vendor.name] = {
            "status_quo": ask_cost(vendor, "status_quo", sq[b], log),
            "joint": ask_cost(vendor, "joint", plan[b], log),
        }
    counterfactuals: dict[str, AdmmResult] = {}
    cf_costs: dict[str, dict[str, float]] = {}
    payments: dict[str, float] = {}
    for b, vendor in enumerate(vendors):
        others = [p for p in parties if p.name != vendor.name]
        if len(vendors) == 1:
            cf_plan: Sequence[FloatArray] = sq
        else:
            stand_in = FixedPlanParty(vendor.name, sq[b])
            run_parties: list[Party] = [stand_in if p.name == vendor.name else p for p in parties]
            result = run_protocol(
                run_parties,
                views,
                block_sizes,
                cs,
                initial_plan=plan if warm_start_counterfactuals else sq,
                initial_prices=joint.prices if warm_start_counterfactuals else None,
                log=log,
            )
            if require_convergence:
                _require(result, f"the counterfactual run without '{vendor.name}'")
            counterfactuals[vendor.name] = result
            cf_plan = result.plan
        label = f"without:{vendor.name}"
        cf_costs[vendor.name] = {}
        for p in others:
            if p.name == hub.name:
                cf_costs[vendor.name][p.name] = ask_cost(p, label, np.concatenate(cf_plan), log)
            else:
                cf_costs[vendor.name][p.name] = ask_cost(
                    p, label, cf_plan[names.index(p.name)], log
                )
        payments[vendor.name] = sum(costs[p.name]["joint"] for p in others) - sum(
            cf_costs[vendor.name].values()
        )
    transfers = {hub.name: float(sum(payments.values()) + activity_fee * len(vendors))}
    for vendor in vendors:
        transfers[vendor.name] = -(payments[vendor.name] + activity_fee)
    saving = {n: c["status_quo"] - c["joint"] for n, c in costs.items()}
    gains = {n: saving[n] + transfers[n] for n in costs}
    gains_without_fee = {
        n: gains[n] + (-activity_fee * len(vendors) if n == hub.name else activity_fee)
        for n in costs
    }
    share = sum(saving.values()) / len(costs)
    naive_transfers = {n: share - saving[n] for n in costs}
    naive_gains = {n: saving[n] + naive_transfers[n] for n in costs}
    provenance = Provenance(
        mechanism="consensus-planning-vcg",
        input_sha256="",
        solver="osqp+highs",
        solver_version=f"osqp {package_version('osqp')}, highspy {package_version('highspy')}",
        tolerances=tolerances or Tolerances(abs_tol=1e-3, rel_tol=1e-4),
        parameters={
            "eps_abs": s.eps_abs,
            "eps_rel": s.eps_rel,
            "max_rounds": s.max_rounds,
            "adapt_rho": s.adapt_rho,
            "alpha": s.alpha,
            "rho0": s.rho,
            "activity_fee": activity_fee,
            "warm_start_counterfactuals": warm_start_counterfactuals,
        },
        seconds=time.perf_counter() - start,
        n_solves=joint.rounds + sum(r.rounds for r in counterfactuals.values()),
        exact=joint.converged and all(r.converged for r in counterfactuals.values()),
    )
    return NegotiationOutcome(
        parties=(hub.name, *names),
        plan=plan,
        status_quo_plan=tuple(sq),
        costs=costs,
        transfers=transfers,
        gains=gains,
        gains_without_fee=gains_without_fee,
        activity_fee=activity_fee,
        naive_split_transfers=naive_transfers,
        naive_split_gains=naive_gains,
        joint=joint,
        counterfactuals=counterfactuals,
        counterfactual_costs=cf_costs,
        provenance=provenance,
    )
