"""A whole negotiation as one message-driven state machine, independent of transport.

The session sequences the phases of :mod:`pivotal.negotiation.transfers` (DESIGN.md section 3):

1. ``status_quo`` (only when the status quo is not given): the hub posts its preferred plan;
2. ``joint``: consensus ADMM with every party;
3. ``without:V`` for each vendor ``V`` (two or more vendors): consensus ADMM with ``V`` held at
   its status-quo block by the session itself (``V`` has nothing to do in this phase);
4. ``costs``: every party posts its scalar cost at each named plan it holds a part of, and
   for every run it took part in its value ``min C(x) + nu'x`` at the prices ``nu`` that
   certify the run (:mod:`pivotal.negotiation.certificate`);

then the transfers. Parties see :class:`Task` objects and answer with :meth:`submit`; a phase
round advances when every expected answer is in. The session is deterministic: replaying the
accepted answers in the order they were accepted rebuilds the same state bit for bit, which is
how the coordinator service resumes after a crash.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt

from pivotal.errors import ConvergenceError, InputError, PivotalError, StateError, UnsafeStepError
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.certificate import fixed_term, lagrangian_prices, run_bound
from pivotal.negotiation.clarke import clarke_payments
from pivotal.negotiation.coordinator import AdmmResult, Coordinator, PartyView, RoundRecord
from pivotal.results import Provenance, Tolerances, package_version

FloatArray = npt.NDArray[np.float64]
TaskKind = Literal["status_quo", "best_response", "costs", "wait", "done", "failed"]
PhaseRoundCallback = Callable[[str, RoundRecord], None]


class StaleMessageError(StateError):
    """An answer for a phase or round that is not the current one (HTTP 409)."""


def party_views(hub: str, vendors: Sequence[str]) -> list[PartyView]:
    """The hub holds every block; vendor ``v`` holds block ``v``."""
    return [PartyView(hub, tuple(range(len(vendors))))] + [
        PartyView(name, (b,)) for b, name in enumerate(vendors)
    ]


@dataclass(frozen=True)
class SessionTerms:
    """The public terms of a negotiation: who holds which plan block, and the protocol settings."""

    hub: str
    vendors: tuple[str, ...]
    block_sizes: tuple[int, ...]
    settings: AdmmSettings = field(default_factory=AdmmSettings)
    counterfactual_settings: AdmmSettings | None = None
    activity_fee: float = 0.0
    warm_start_counterfactuals: bool = False
    require_convergence: bool = True
    tolerances: Tolerances = field(default_factory=lambda: Tolerances(abs_tol=1e-3, rel_tol=1e-4))
    keep_plans: bool = True
    max_quantity: float = math.inf
    """Public bound on every plan entry an answer carries (``|entry| <= max_quantity``)."""
    max_cost: float = math.inf
    """Public bound on every cost an answer carries (``|cost| <= max_cost``)."""

    def __post_init__(self) -> None:
        names = (self.hub, *self.vendors)
        if len(set(names)) != len(names):
            raise InputError(f"party names must be unique, got {list(names)}")
        if len(self.block_sizes) != len(self.vendors):
            raise InputError("one plan block per vendor is needed")
        if any(n <= 0 for n in self.block_sizes):
            raise InputError("every plan block needs at least one entry")
        for name in ("max_quantity", "max_cost"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name)}")
        if not (np.isfinite(self.activity_fee) and self.activity_fee >= 0):
            raise InputError(
                f"the activity fee must be a finite number >= 0, got {self.activity_fee}"
            )

    @property
    def parties(self) -> tuple[str, ...]:
        """The hub first, then the vendors."""
        return (self.hub, *self.vendors)

    @property
    def views(self) -> list[PartyView]:
        """Who holds which plan block."""
        return party_views(self.hub, self.vendors)

    def local_size(self, party: str) -> int:
        """Length of a party's copy of the plan."""
        return self._local_sizes[party]

    @cached_property
    def _local_sizes(self) -> dict[str, int]:
        sizes = dict(zip(self.vendors, self.block_sizes, strict=True))
        sizes[self.hub] = sum(self.block_sizes)
        return sizes


@dataclass(frozen=True)
class Task:
    """What a party is asked to do now.

    ``best_response``: return ``argmin C(x) + prices'x + (rho/2)||x - z||^2``;
    ``status_quo``: return the plan you would choose alone (the hub only);
    ``costs``: return your cost at each plan of ``plans``, and for each label of ``values`` the
    value ``min C(x) + nu'x`` over ``0 <= x <= max_quantity`` at those prices ``nu``; ``wait``,
    ``done``, ``failed``: nothing to do.
    """

    kind: TaskKind
    phase: str
    round: int
    z: FloatArray | None = None
    prices: FloatArray | None = None
    rho: float | None = None
    plans: Mapping[str, FloatArray] = field(default_factory=dict)
    values: Mapping[str, FloatArray] = field(default_factory=dict)
    max_quantity: float = math.inf


VALUE_LABEL = "bound:"
"""Prefix of a value query's label: ``bound:joint``, ``bound:without:V``."""


@dataclass(frozen=True)
class RunCertificate:
    """What certifies one run: each free party's query prices and ``sum_b N_b's_b``."""

    prices: Mapping[str, FloatArray]
    fixed: float


@dataclass(frozen=True)
class SessionOutcome:
    """Everything the transfers are computed from."""

    plan: tuple[FloatArray, ...]
    status_quo_plan: tuple[FloatArray, ...]
    costs: Mapping[str, Mapping[str, float]]
    counterfactual_costs: Mapping[str, Mapping[str, float]]
    payments: Mapping[str, float]
    joint: AdmmResult
    counterfactuals: Mapping[str, AdmmResult]
    run_bounds: Mapping[str, float]
    """Each run's certified cost error ``eps_R`` (``joint``, ``without:V``)."""


class NegotiationSession:
    """The negotiation's state machine (see the module docstring).

    Parameters
    ----------
    terms:
        Public terms.
    status_quo:
        The status-quo plan per block; ``None`` asks the hub for it first.
    on_round:
        Called with ``(phase, record)`` after every completed ADMM round.
    """

    def __init__(
        self,
        terms: SessionTerms,
        status_quo: Sequence[FloatArray] | None = None,
        *,
        on_round: PhaseRoundCallback | None = None,
    ) -> None:
        self.terms = terms
        self.on_round = on_round
        self.started = time.perf_counter()
        self.status: Literal["running", "done", "failed"] = "running"
        self.message = ""
        self.phase = "status_quo"
        self.round = 0
        self._pending: dict[str, FloatArray | dict[str, float]] = {}
        self._coordinator: Coordinator | None = None
        self._fixed: tuple[str, FloatArray] | None = None
        self.status_quo: tuple[FloatArray, ...] | None = None
        self.joint: AdmmResult | None = None
        self.counterfactuals: dict[str, AdmmResult] = {}
        self.certificates: dict[str, RunCertificate] = {}
        self._queue: list[str] = []
        self.reported_costs: dict[str, dict[str, float]] = {}
        self._parties = frozenset(terms.parties)
        self._set_expected()
        if status_quo is not None:
            self._set_status_quo(self._checked_plan(np.concatenate(status_quo), terms.hub))

    # ----------------------------------------------------------------------- inspection
    def expected(self) -> tuple[str, ...]:
        """Parties whose answer the current step needs (answered or not)."""
        if self.status != "running":
            return ()
        return self._expected

    def _set_expected(self) -> None:
        if self.phase == "status_quo":
            self._expected: tuple[str, ...] = (self.terms.hub,)
        elif self.phase == "costs":
            self._expected = self.terms.parties
        else:
            fixed = None if self._fixed is None else self._fixed[0]
            self._expected = tuple(p for p in self.terms.parties if p != fixed)
        self._expected_set = frozenset(self._expected)

    def missing(self) -> tuple[str, ...]:
        """Parties the current step still waits for."""
        return tuple(p for p in self.expected() if p not in self._pending)

    def complete(self) -> bool:
        """Whether every expected answer of the current step is in."""
        return len(self._pending) == len(self._expected)

    def idle(self, party: str) -> bool:
        """Whether a party has nothing to do now while the negotiation runs (its task is
        ``wait``): it is not part of this step or has answered it."""
        return self.status == "running" and (
            party not in self._expected_set or party in self._pending
        )

    def task(self, party: str) -> Task:
        """The current task of a party."""
        if party not in self._parties:
            raise InputError(f"unknown party '{party}'")
        if self.status == "done":
            return Task("done", self.phase, self.round)
        if self.status == "failed":
            return Task("failed", self.phase, self.round)
        if self.idle(party):
            return Task("wait", self.phase, self.round)
        if self.phase == "status_quo":
            return Task("status_quo", self.phase, self.round)
        if self.phase == "costs":
            return Task(
                "costs",
                self.phase,
                self.round,
                plans=self._cost_plans(party),
                values=self._value_prices(party),
                max_quantity=self.terms.max_quantity,
            )
        assert self._coordinator is not None
        b = self._coordinator.broadcast(party)
        return Task("best_response", self.phase, self.round, b.z, b.prices, b.rho)

    # ----------------------------------------------------------------------- answering
    def submit(
        self, party: str, phase: str, round_: int, answer: FloatArray | Mapping[str, float]
    ) -> Literal["accepted", "duplicate"]:
        """Take a party's answer to its current task.

        Returns ``"duplicate"`` (and changes nothing) when the party already answered this step.

        Raises
        ------
        StaleMessageError
            If ``phase``/``round_`` is not the current step or the party has nothing to answer.
        InputError
            If the answer has the wrong form (length, non-finite or negative entries, labels).
        """
        if party not in self._parties:
            raise InputError(f"unknown party '{party}'")
        if self.status != "running" or phase != self.phase or round_ != self.round:
            raise StaleMessageError(
                f"the answer is for {phase} round {round_}, but the negotiation is at "
                f"{self.phase} round {self.round} ({self.status})"
            )
        if party not in self._expected_set:
            raise StaleMessageError(f"party '{party}' has nothing to answer in {self.phase}")
        if party in self._pending:
            return "duplicate"
        if self.phase == "costs":
            if not isinstance(answer, Mapping):
                raise InputError(
                    "a costs answer is a mapping from plan label to cost", field="costs"
                )
            self._pending[party] = self._checked_costs(party, answer)
        else:
            if isinstance(answer, Mapping):
                raise InputError("this step needs a plan, not costs", field="plan")
            self._pending[party] = self._checked_plan(answer, party)
        if self.complete():
            try:
                self._advance()
            except PivotalError:  # the step is refused with the answer that completed it
                self._pending.pop(party, None)
                raise
        return "accepted"

    def _checked_plan(self, answer: FloatArray, party: str) -> FloatArray:
        arr = np.asarray(answer, dtype=np.float64)
        n = self.terms.local_size(party)
        if arr.shape != (n,):
            raise InputError(f"plan: expected {n} numbers, got shape {arr.shape}", field="plan")
        bound = self.terms.max_quantity
        # one pass: false for NaN, and for +-inf too (the bound is at most the largest float)
        if not (np.abs(arr) <= min(bound, sys.float_info.max)).all():
            if not np.isfinite(arr).all():
                raise InputError("plan: every entry must be a finite number", field="plan")
            i = int(np.argmax(np.abs(arr)))
            raise InputError(
                f"plan[{i}] = {arr[i]:.6g} is outside the public bound |entry| <= "
                f"max_quantity = {bound:.6g}",
                field="plan",
            )
        if self.phase == "status_quo" and np.any(arr < 0):
            raise InputError("plan: a status-quo plan has no negative entries", field="plan")
        return arr.copy()

    def _checked_costs(self, party: str, answer: Mapping[str, float]) -> dict[str, float]:
        want = set(self._cost_plans(party)) | set(self._value_prices(party))
        got = set(answer)
        if got != want:
            raise InputError(
                f"costs: expected labels {sorted(want)}, got {sorted(got)}", field="costs"
            )
        out = {k: float(v) for k, v in answer.items()}
        if not all(np.isfinite(v) for v in out.values()):
            raise InputError("costs: every cost must be a finite number", field="costs")
        bound = self.terms.max_cost
        for label, v in out.items():
            if not abs(v) <= bound:
                raise InputError(
                    f"costs['{label}'] = {v:.6g} is outside the public bound |cost| <= "
                    f"max_cost = {bound:.6g}",
                    field="costs",
                )
        return out

    # ----------------------------------------------------------------------- phases
    def _set_status_quo(self, full: FloatArray) -> None:
        blocks, start = [], 0
        for n in self.terms.block_sizes:
            blocks.append(full[start : start + n].copy())
            start += n
        self.status_quo = tuple(blocks)
        self._queue = ["joint"]
        if len(self.terms.vendors) > 1:
            self._queue += [f"without:{v}" for v in self.terms.vendors]
        self._queue.append("costs")
        self._next_phase()

    def _next_phase(self) -> None:
        self.phase = self._queue.pop(0)
        self.round = 0
        self._pending = {}
        self._fixed = None
        self._coordinator = None
        if self.phase == "costs":
            self._set_expected()
            return
        assert self.status_quo is not None
        t = self.terms
        if self.phase == "joint":
            self._coordinator = Coordinator(
                t.block_sizes,
                t.views,
                t.settings,
                initial_plan=self.status_quo,
                keep_plans=t.keep_plans,
            )
            self._set_expected()
            return
        vendor = self.phase.removeprefix("without:")
        self._fixed = (vendor, self.status_quo[t.vendors.index(vendor)])
        self._set_expected()
        warm = t.warm_start_counterfactuals and self.joint is not None
        self._coordinator = Coordinator(
            t.block_sizes,
            t.views,
            t.counterfactual_settings or t.settings,
            initial_plan=self.joint.plan if warm and self.joint else self.status_quo,
            initial_prices=self.joint.prices if warm and self.joint else None,
            keep_plans=t.keep_plans,
        )

    def _advance(self) -> None:
        pending = self._pending
        if self.phase == "status_quo":
            plan = pending[self.terms.hub]
            assert not isinstance(plan, dict)
            saved = dict(self.__dict__)
            try:
                self._set_status_quo(plan)
            except PivotalError:  # e.g. a plan that gives no usable penalty: nothing changes
                self.__dict__.clear()
                self.__dict__.update(saved)
                raise
            return
        if self.phase == "costs":
            reported = {p: dict(v) for p, v in pending.items() if isinstance(v, dict)}
            payments = self._payments(reported)
            bad = [v for v, money in payments.items() if not math.isfinite(money)]
            if bad:
                raise UnsafeStepError(
                    f"the reported costs give a non-finite payment for {bad}", field="costs"
                )
            self.reported_costs = reported
            self.status = "done"
            self._pending = {}
            return
        assert self._coordinator is not None
        responses = {p: v for p, v in pending.items() if not isinstance(v, dict)}
        if self._fixed is not None:
            responses[self._fixed[0]] = self._fixed[1].copy()
        more = self._coordinator.advance(responses)
        if self.on_round is not None:
            self.on_round(self.phase, self._coordinator.history[-1])
        self._pending = {}
        if more:
            self.round += 1
            return
        result = self._coordinator.result()
        self.certificates[self.phase] = self._certificate(result)
        if self.phase == "joint":
            self.joint = result
            what = "the joint protocol run"
        else:
            vendor = self.phase.removeprefix("without:")
            self.counterfactuals[vendor] = result
            what = f"the counterfactual run without '{vendor}'"
        if not result.converged and self.terms.require_convergence:
            self.status = "failed"
            self.message = convergence_message(result, what)
            return
        self._next_phase()

    def _certificate(self, result: AdmmResult) -> RunCertificate:
        """The query prices of a finished run (see :mod:`pivotal.negotiation.certificate`)."""
        assert self.status_quo is not None
        t = self.terms
        held = None if self._fixed is None else self._fixed[0]
        fixed = {} if self._fixed is None else {t.vendors.index(self._fixed[0]): self._fixed[1]}
        free = {p: mu for p, mu in result.answer_prices.items() if p != held}
        prices = lagrangian_prices(t.views, t.block_sizes, free, hub=t.hub, fixed=fixed)
        return RunCertificate(prices, fixed_term(prices[t.hub], t.block_sizes, fixed))

    def _cf_plan(self, vendor: str) -> tuple[FloatArray, ...]:
        """The plan of the run without ``vendor``, its block set exactly to its status quo (so
        that the plan is feasible for that run: see :mod:`pivotal.negotiation.certificate`)."""
        assert self.status_quo is not None
        if len(self.terms.vendors) == 1:
            return self.status_quo
        b = self.terms.vendors.index(vendor)
        plan = list(self.counterfactuals[vendor].plan)
        plan[b] = self.status_quo[b]
        return tuple(plan)

    def _value_prices(self, party: str) -> dict[str, FloatArray]:
        """The value queries of a party: one per run it was free in."""
        return {
            VALUE_LABEL + phase: c.prices[party]
            for phase, c in self.certificates.items()
            if party in c.prices
        }

    def _cost_plans(self, party: str) -> dict[str, FloatArray]:
        """Named plans a party is asked to cost (its own part of each)."""
        assert self.status_quo is not None and self.joint is not None
        t = self.terms

        def part(plan: Sequence[FloatArray]) -> FloatArray:
            if party == t.hub:
                return np.concatenate(plan)
            return np.asarray(plan[t.vendors.index(party)]).copy()

        plans = {"status_quo": part(self.status_quo), "joint": part(self.joint.plan)}
        for v in t.vendors:
            if v != party:
                plans[f"without:{v}"] = part(self._cf_plan(v))
        return plans

    # ----------------------------------------------------------------------- outcome
    def outcome(self) -> SessionOutcome:
        """The plans, reported costs and each vendor's payment (once the session is done)."""
        if self.status != "done":
            raise InputError(f"the negotiation is not finished ({self.status}, {self.phase})")
        assert self.status_quo is not None and self.joint is not None
        t = self.terms
        rc = self.reported_costs
        costs = {p: {"status_quo": rc[p]["status_quo"], "joint": rc[p]["joint"]} for p in t.parties}
        cf_costs = {v: {p: rc[p][f"without:{v}"] for p in t.parties if p != v} for v in t.vendors}
        payments = self._payments(rc)
        run_bounds = {}
        for phase, c in self.certificates.items():
            upper = sum(rc[p][phase] for p in c.prices)
            values = {p: rc[p][VALUE_LABEL + phase] for p in c.prices}
            run_bounds[phase] = run_bound(upper, values, c.fixed)
        return SessionOutcome(
            plan=self.joint.plan,
            status_quo_plan=self.status_quo,
            costs=costs,
            counterfactual_costs=cf_costs,
            payments=payments,
            joint=self.joint,
            counterfactuals=dict(self.counterfactuals),
            run_bounds=run_bounds,
        )

    def _payments(self, reported: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        """Each vendor's Clarke payment from the reported costs (DESIGN.md section 3)."""
        t = self.terms
        joint = {p: reported[p]["joint"] for p in t.parties}
        without = {
            v: {p: reported[p][f"without:{v}"] for p in t.parties if p != v} for v in t.vendors
        }
        return clarke_payments(t.vendors, joint, without)

    def provenance(self, *, input_sha256: str, seconds: float | None = None) -> Provenance:
        """The record of how the outcome was computed from the input whose hash is given."""
        t = self.terms
        s = t.settings
        n = sum(r.rounds for r in self.counterfactuals.values())
        joint_rounds = self.joint.rounds if self.joint is not None else 0
        return Provenance(
            mechanism="consensus-planning-vcg",
            input_sha256=input_sha256,
            solver="piqp+highs",
            solver_version=f"piqp {package_version('piqp')}, highspy {package_version('highspy')}",
            tolerances=t.tolerances,
            parameters={
                "eps_abs": s.eps_abs,
                "eps_rel": s.eps_rel,
                "max_rounds": s.max_rounds,
                "adapt_rho": s.adapt_rho,
                "alpha": s.relaxation,
                "acceleration": s.acceleration,
                "rho0": s.rho,
                "activity_fee": t.activity_fee,
                "warm_start_counterfactuals": t.warm_start_counterfactuals,
            },
            seconds=time.perf_counter() - self.started if seconds is None else seconds,
            n_solves=joint_rounds + n,
            exact=bool(
                self.joint is not None
                and self.joint.converged
                and all(r.converged for r in self.counterfactuals.values())
            ),
        )


def convergence_message(result: AdmmResult, what: str) -> str:
    """Why a run counts as unconverged, with its last residuals relative to their tolerances
    (the message is public: absolute residuals and tolerances would reveal norms of the plan
    and the prices)."""
    last = result.history[-1] if result.history else None
    detail = (
        f"; last primal residual {last.primal_residual / last.eps_primal:.3g} times its "
        f"tolerance, dual residual {last.dual_residual / last.eps_dual:.3g} times its tolerance"
        if last is not None
        else ""
    )
    return (
        f"{what} did not converge in {result.rounds} rounds{detail}; raise --max-rounds or "
        "loosen the tolerances"
    )


def raise_if_failed(session: NegotiationSession) -> None:
    """Turn a failed session into :class:`ConvergenceError`."""
    if session.status == "failed":
        raise ConvergenceError(session.message)
