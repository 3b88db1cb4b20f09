"""A whole negotiation as one message-driven state machine, independent of transport.

The session sequences the phases of :mod:`pivotal.negotiation.transfers` (DESIGN.md section 3):

1. ``status_quo`` (only when the status quo is not given): the hub posts its preferred plan;
2. the protocol runs: ``joint``, consensus ADMM with every party, and (two or more vendors)
   ``without:V`` for each vendor ``V``, consensus ADMM with ``V`` held at its status-quo block by
   the session itself (``V`` has nothing to do in that run). By default
   (``warm_start_counterfactuals``) the ``without:V`` runs start from the joint run's final plan
   and prices, once it has ended, and go on together (plain ADMM first, for at most
   ``warm_plain_rounds``; then the run's own settings for as many rounds as the joint run took;
   then cold, each stage numbering its rounds on: a warm start can stall, and a cold run takes
   about as many rounds as the joint one); with ``warm_start_counterfactuals=False``
   they start cold (the status quo, zero prices) and go on together with the joint run. Each
   run is a coordinator of its own and advances when every answer of its round is in; a party's
   open tasks are one per run that waits for it, and a transport sends them together (one
   message per round carries every run's task), so a negotiation takes about as many exchanges
   as the joint run plus its longest counterfactual (cold: its longest run) instead of the sum
   of them. A warm start is the coordinator's: an answer is still a function of its task only;
3. ``costs``: every party posts its scalar cost at each named plan it holds a part of, and
   for every run it took part in its value ``min C(x) + nu'x`` at the prices ``nu`` that
   certify the run (:mod:`pivotal.negotiation.certificate`);

then the transfers. Parties see :class:`Task` objects and answer with :meth:`submit`. The session
is deterministic: the runs are independent of each other, so replaying the accepted answers in
the order they were accepted rebuilds the same state bit for bit (each run sees its own answers
in the same order), which is how the coordinator service resumes after a crash.

Phases are :class:`Phase` values; their strings (``status_quo``, ``joint``, ``without:V``,
``costs``) exist only at the wire and in the store (:meth:`Phase.parse`, ``str(phase)``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Literal

import numpy as np

from pivotal.arrays import FloatArray
from pivotal.errors import ConvergenceError, InputError, PivotalError, StateError, UnsafeStepError
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.certificate import fixed_term, lagrangian_prices, run_bound
from pivotal.negotiation.clarke import clarke_payments
from pivotal.negotiation.coordinator import AdmmResult, Coordinator, PartyView, RoundRecord
from pivotal.results import Provenance, Tolerances, package_version


class TaskKind(StrEnum):
    """What a party is asked to do now."""

    STATUS_QUO = "status_quo"
    """Post the plan you would choose alone (the hub, when no status quo is given)."""
    BEST_RESPONSE = "best_response"
    """Post ``argmin C(x) + prices'x + (rho/2)||x - z||^2``."""
    COSTS = "costs"
    """Post your cost at each named plan and your value at each named set of prices."""
    WAIT = "wait"
    """Nothing to do now: ask again."""
    DONE = "done"
    """The negotiation ended with an outcome."""
    FAILED = "failed"
    """The negotiation ended without one."""


class PhaseKind(StrEnum):
    """The kinds of phase of a negotiation."""

    STATUS_QUO = "status_quo"
    """The hub posts its preferred plan."""
    JOINT = "joint"
    """The protocol run with every party."""
    WITHOUT = "without"
    """The protocol run with one vendor held at its status quo."""
    COSTS = "costs"
    """The scalar cost and value queries."""


@dataclass(frozen=True)
class Phase:
    """A phase: its kind, and the vendor held at its status quo for ``without``."""

    kind: PhaseKind
    vendor: str = ""

    def __str__(self) -> str:
        """The wire and store form: ``status_quo``, ``joint``, ``without:V``, ``costs``."""
        return f"without:{self.vendor}" if self.kind is PhaseKind.WITHOUT else self.kind.value

    @classmethod
    def without(cls, vendor: str) -> Phase:
        """The run with ``vendor`` held at its status quo."""
        return cls(PhaseKind.WITHOUT, vendor)

    @classmethod
    def parse(cls, text: str) -> Phase:
        """A phase from its wire form.

        Raises
        ------
        InputError
            If ``text`` names no phase.
        """
        kind, sep, vendor = text.partition(":")
        if kind == PhaseKind.WITHOUT and sep and vendor:
            return cls.without(vendor)
        if not sep and kind in (PhaseKind.STATUS_QUO, PhaseKind.JOINT, PhaseKind.COSTS):
            return cls(PhaseKind(kind))
        raise InputError(f"'{text}' is not a phase", field="phase")

    @property
    def is_run(self) -> bool:
        """Whether the phase is a protocol run (``joint`` or ``without:V``)."""
        return self.kind in (PhaseKind.JOINT, PhaseKind.WITHOUT)


STATUS_QUO = Phase(PhaseKind.STATUS_QUO)
JOINT = Phase(PhaseKind.JOINT)
COSTS = Phase(PhaseKind.COSTS)
PhaseRoundCallback = Callable[[Phase, RoundRecord], None]


class StaleMessageError(StateError):
    """An answer for a phase or round that is not the current one (HTTP 409)."""


def party_views(hub: str, vendors: Sequence[str]) -> list[PartyView]:
    """The hub holds every block; vendor ``v`` holds block ``v``."""
    return [PartyView(hub, tuple(range(len(vendors))))] + [
        PartyView(name, (b,)) for b, name in enumerate(vendors)
    ]


WARM_PLAIN_ROUNDS = 30
"""Default of :attr:`SessionTerms.warm_plain_rounds`: on the generated scenarios measured (K40
and K100 seed 7, 48 small ones) a plain warm run that converges does so in 1-19 rounds, and one
that has not by 30 is stalling (``benchmarks/results/2026-12-02-negotiation-plain-warm.md``)."""
UNRECORDED: Mapping[str, int] = {"warm_start_counterfactuals": False, "warm_plain_rounds": 0}
"""What a record (stored terms, a result's parameters) written before a field existed ran with:
cold counterfactual runs; warm runs without a plain ADMM stage."""
MAX_WARM_PLAIN_ROUNDS = 10**6
"""Largest :attr:`SessionTerms.warm_plain_rounds` (the terms, the command line, ``verify``)."""


@dataclass(frozen=True)
class SessionTerms:
    """The public terms of a negotiation: who holds which plan block, and the protocol settings."""

    hub: str
    vendors: tuple[str, ...]
    block_sizes: tuple[int, ...]
    settings: AdmmSettings = field(default_factory=AdmmSettings)
    counterfactual_settings: AdmmSettings | None = None
    activity_fee: float = 0.0
    warm_start_counterfactuals: bool = True
    """Start the counterfactual runs from the joint run's final plan and prices, after it (about
    half the rounds of cold runs; the certificate bounds the money whatever the start); a warm
    run that has taken as many rounds as the joint run goes on cold."""
    require_convergence: bool = True
    tolerances: Tolerances = field(default_factory=lambda: Tolerances(abs_tol=1e-3, rel_tol=1e-4))
    keep_plans: bool = True
    warm_plain_rounds: int = WARM_PLAIN_ROUNDS
    """Rounds of plain ADMM a warm-started counterfactual run tries first (0: none; see
    :meth:`NegotiationSession._new_run`)."""
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
        if not 0 <= self.warm_plain_rounds <= MAX_WARM_PLAIN_ROUNDS:
            raise InputError(
                f"warm_plain_rounds must be between 0 and {MAX_WARM_PLAIN_ROUNDS}, got "
                f"{self.warm_plain_rounds:.6g}"
            )
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
    """What a party is asked to do now (see :class:`TaskKind`).

    ``best_response``: return ``argmin C(x) + prices'x + (rho/2)||x - z||^2``;
    ``status_quo``: return the plan you would choose alone (the hub only);
    ``costs``: return your cost at each plan of ``plans``, and for each label of ``values`` the
    value ``min C(x) + nu'x`` over ``0 <= x <= max_quantity`` at those prices ``nu``; ``wait``,
    ``done``, ``failed``: nothing to do.
    """

    kind: TaskKind
    phase: Phase
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


@dataclass
class _Run:
    """A running protocol run: its coordinator, who answers it, the answers of its round."""

    phase: Phase
    coordinator: Coordinator
    expected: tuple[str, ...]
    fixed: tuple[str, FloatArray] | None
    pending: dict[str, FloatArray] = field(default_factory=dict)
    next_stage: int | None = None
    """The stage that takes over if this one ends unconverged (see ``_new_run``)."""


Stage = Literal["status_quo", "runs", "costs"]


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
        self.stage: Stage = "status_quo"
        self.asked_status_quo = status_quo is None
        self._pending: dict[str, FloatArray | dict[str, float]] = {}
        self._runs: dict[Phase, _Run] = {}
        self._later: list[Phase] = []
        self.status_quo: tuple[FloatArray, ...] | None = None
        self.joint: AdmmResult | None = None
        self.counterfactuals: dict[str, AdmmResult] = {}
        self.certificates: dict[Phase, RunCertificate] = {}
        self.reported_costs: dict[str, dict[str, float]] = {}
        self._parties = frozenset(terms.parties)
        if status_quo is not None:
            self._set_status_quo(self._checked_plan(np.concatenate(status_quo), terms.hub))

    # ----------------------------------------------------------------------- inspection
    @property
    def phase(self) -> Phase:
        """The current phase: the first running run's during the runs (see :attr:`runs`)."""
        if self.stage == "status_quo":
            return STATUS_QUO
        if self.stage == "costs" or not self._runs:
            return COSTS
        return next(iter(self._runs))

    @property
    def round(self) -> int:
        """The current round of :attr:`phase` (0 outside the runs)."""
        run = self._runs.get(self.phase)
        return 0 if run is None else run.coordinator.round

    @property
    def runs(self) -> dict[Phase, int]:
        """Every running protocol run and its current round."""
        return {p: r.coordinator.round for p, r in self._runs.items()}

    @property
    def coordinators(self) -> dict[Phase, Coordinator]:
        """The coordinator of every running protocol run."""
        return {p: r.coordinator for p, r in self._runs.items()}

    @property
    def position(self) -> tuple[object, ...]:
        """Where the negotiation is: changes whenever any step completes."""
        return (self.status, self.stage, tuple(self.runs.items()))

    @property
    def wire_rounds(self) -> int:
        """Exchanges of tasks and answers so far when every party answers all its open tasks
        at once: the status-quo exchange (when asked), the runs (the longest one when they run
        together; the joint run then the longest counterfactual with warm starts) and the
        costs exchange."""
        cf = [r.rounds for r in self.counterfactuals.values()]
        cf += [r.coordinator.round for p, r in self._runs.items() if p != JOINT]
        joint = self.joint.rounds if self.joint is not None else self.runs.get(JOINT, 0)
        if self.terms.warm_start_counterfactuals:
            runs = joint + max(cf, default=0)
        else:
            runs = max([joint, *cf])
        return (
            int(self.asked_status_quo) + runs + int(self.stage == "costs" or self.status == "done")
        )

    def expected(self) -> tuple[str, ...]:
        """Parties some current step needs an answer from (answered or not)."""
        if self.status != "running":
            return ()
        if self.stage == "status_quo":
            return (self.terms.hub,)
        if self.stage == "costs":
            return self.terms.parties
        return tuple(
            p for p in self.terms.parties if any(p in r.expected for r in self._runs.values())
        )

    def missing(self) -> tuple[str, ...]:
        """Parties with an open task (a step still waits for their answer)."""
        if self.status != "running":
            return ()
        if self.stage != "runs":
            return tuple(p for p in self.expected() if p not in self._pending)
        return tuple(p for p in self.terms.parties if self._open_runs(p))

    def _open_runs(self, party: str) -> list[_Run]:
        return [r for r in self._runs.values() if party in r.expected and party not in r.pending]

    def idle(self, party: str) -> bool:
        """Whether a party has nothing to do now while the negotiation runs (its task is
        ``wait``): no current step needs it, or it has answered them all."""
        if self.status != "running":
            return False
        if self.stage == "runs":
            return not self._open_runs(party)
        return party not in self.expected() or party in self._pending

    def task(self, party: str) -> Task:
        """The current task of a party (the first of :meth:`tasks`, or ``wait``, ``done``,
        ``failed``)."""
        tasks = self.tasks(party)
        if tasks:
            return tasks[0]
        kind = {"done": TaskKind.DONE, "failed": TaskKind.FAILED}.get(self.status, TaskKind.WAIT)
        return Task(kind, self.phase, self.round)

    def tasks(self, party: str) -> tuple[Task, ...]:
        """Every open task of a party: one per running protocol run that waits for it, the
        status-quo or the costs task; empty when it has nothing to do."""
        if party not in self._parties:
            raise InputError(f"unknown party '{party}'")
        if self.status != "running" or self.idle(party):
            return ()
        if self.stage == "status_quo":
            return (Task(TaskKind.STATUS_QUO, STATUS_QUO, 0),)
        if self.stage == "costs":
            return (
                Task(
                    TaskKind.COSTS,
                    COSTS,
                    0,
                    plans=self._cost_plans(party),
                    values=self._value_prices(party),
                    max_quantity=self.terms.max_quantity,
                ),
            )
        out = []
        for run in self._open_runs(party):
            b = run.coordinator.broadcast(party)
            out.append(Task(TaskKind.BEST_RESPONSE, run.phase, b.round, b.z, b.prices, b.rho))
        return tuple(out)

    def _where(self) -> str:
        if self.status != "running":
            return f"over ({self.status})"
        if self.stage != "runs":
            return f"at {self.phase} round 0"
        return "at " + ", ".join(f"{p} round {r}" for p, r in self.runs.items())

    # ----------------------------------------------------------------------- answering
    def submit(
        self, party: str, phase: Phase, round_: int, answer: FloatArray | Mapping[str, float]
    ) -> Literal["accepted", "duplicate"]:
        """Take a party's answer to one of its open tasks.

        Returns ``"duplicate"`` (and changes nothing) when the party already answered this step.

        Raises
        ------
        StaleMessageError
            If ``phase``/``round_`` is not a current step or the party has nothing to answer.
        InputError
            If the answer has the wrong form (length, non-finite or negative entries, labels).
        """
        if party not in self._parties:
            raise InputError(f"unknown party '{party}'")
        run = self._runs.get(phase) if self.status == "running" else None
        current = run.coordinator.round if run is not None else 0
        if self.status != "running" or (run is None and phase != self.phase) or round_ != current:
            raise StaleMessageError(
                f"the answer is for {phase} round {round_}, but the negotiation is {self._where()}"
            )
        if run is not None:
            return self._submit_run(run, party, answer)
        if party not in self.expected():
            raise StaleMessageError(f"party '{party}' has nothing to answer in {phase}")
        if party in self._pending:
            return "duplicate"
        if self.stage == "costs":
            if not isinstance(answer, Mapping):
                raise InputError(
                    "a costs answer is a mapping from plan label to cost", field="costs"
                )
            self._pending[party] = self._checked_costs(party, answer)
        else:
            if isinstance(answer, Mapping):
                raise InputError("this step needs a plan, not costs", field="plan")
            self._pending[party] = self._checked_plan(answer, party, status_quo=True)
        if len(self._pending) == len(self.expected()):
            try:
                self._advance()
            except PivotalError:  # the step is refused with the answer that completed it
                self._pending.pop(party, None)
                raise
        return "accepted"

    def _submit_run(
        self, run: _Run, party: str, answer: FloatArray | Mapping[str, float]
    ) -> Literal["accepted", "duplicate"]:
        if party not in run.expected:
            raise StaleMessageError(f"party '{party}' has nothing to answer in {run.phase}")
        if party in run.pending:
            return "duplicate"
        if isinstance(answer, Mapping):
            raise InputError("this step needs a plan, not costs", field="plan")
        run.pending[party] = self._checked_plan(answer, party)
        if len(run.pending) == len(run.expected):
            try:
                self._advance_run(run)
            except PivotalError:  # the round is refused with the answer that completed it
                run.pending.pop(party, None)
                raise
        return "accepted"

    def _checked_plan(
        self, answer: FloatArray, party: str, *, status_quo: bool = False
    ) -> FloatArray:
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
        if status_quo and np.any(arr < 0):
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
        self.stage = "runs"
        self._pending = {}
        cfs = [Phase.without(v) for v in self.terms.vendors] if len(self.terms.vendors) > 1 else []
        self._runs = {JOINT: self._new_run(JOINT)}
        if self.terms.warm_start_counterfactuals:
            self._later = cfs
        else:
            for phase in cfs:
                self._runs[phase] = self._new_run(phase)

    def _new_run(self, phase: Phase, *, stage: int = 0, first_round: int = 0) -> _Run:
        """A run's coordinator, numbering its rounds from ``first_round``.

        The joint run, and every run of a cold schedule, starts cold: from the status quo
        and zero prices. A counterfactual run under ``warm_start_counterfactuals`` goes
        through up to three stages, each taking over, numbering its rounds on, where the last
        one stopped unconverged:

        0. plain ADMM (no acceleration, residual balancing; :class:`AdmmSettings` with
           ``acceleration="none"``) from the joint run's final plan and prices, for at most
           ``warm_plain_rounds`` rounds: near that start it converges in a few rounds, where the
           restarted Halpern iteration, anchored to its start, takes two to four times as many
           (K100 seed 7: 15/16/18 rounds against 26/46/68); it stalls when the vendor's absence
           moves the optimum far (vendors that compete for storage);
        1. the run's own settings from the same start, for at most as many rounds as the joint
           run took (a cold run takes about as many);
        2. cold, with the run's own settings.

        Every stage's tasks are of the same form (``z``, prices, ``rho``): an answer is a
        function of its task whatever the stage."""
        assert self.status_quo is not None
        t = self.terms
        fixed = None
        if phase.kind is PhaseKind.WITHOUT:
            fixed = (phase.vendor, self.status_quo[t.vendors.index(phase.vendor)])
        settings = t.settings if phase == JOINT else t.counterfactual_settings or t.settings
        joint = self.joint if phase != JOINT and t.warm_start_counterfactuals else None
        if joint is not None and stage == 0 and t.warm_plain_rounds == 0:
            stage = 1
        if joint is not None and stage < 2:
            if stage == 0:
                budget = min(settings.max_rounds, t.warm_plain_rounds)
                run_settings = replace(settings, max_rounds=budget, acceleration="none", alpha=None)
            else:
                budget = min(settings.max_rounds, max(1, joint.rounds))
                run_settings = replace(settings, max_rounds=budget)
            coordinator = Coordinator(
                t.block_sizes,
                t.views,
                run_settings,
                initial_plan=joint.plan,
                initial_prices=joint.prices,
                keep_plans=t.keep_plans,
                first_round=first_round,
            )
            # a stage that can still hand over to the next one
            next_stage = stage + 1 if budget < settings.max_rounds or stage == 0 else None
        else:
            coordinator = Coordinator(
                t.block_sizes,
                t.views,
                settings,
                initial_plan=self.status_quo,
                keep_plans=t.keep_plans,
                first_round=first_round,
            )
            next_stage = None
        expected = tuple(p for p in t.parties if fixed is None or p != fixed[0])
        return _Run(phase, coordinator, expected, fixed, next_stage=next_stage)

    def _advance(self) -> None:
        """Complete the status-quo or the costs step."""
        pending = self._pending
        if self.stage == "status_quo":
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

    def _advance_run(self, run: _Run) -> None:
        """Complete a round of one protocol run."""
        responses = dict(run.pending)
        if run.fixed is not None:
            responses[run.fixed[0]] = run.fixed[1].copy()
        more = run.coordinator.advance(responses)
        if self.on_round is not None:
            self.on_round(run.phase, run.coordinator.history[-1])
        run.pending = {}
        if more:
            return
        result = run.coordinator.result()
        if run.next_stage is not None and not result.converged:  # this stage used up its rounds
            self._runs[run.phase] = self._new_run(
                run.phase, stage=run.next_stage, first_round=result.rounds
            )
            return
        self.certificates[run.phase] = self._certificate(run, result)
        del self._runs[run.phase]
        if run.phase == JOINT:
            self.joint = result
            what = "the joint protocol run"
        else:
            self.counterfactuals[run.phase.vendor] = result
            what = f"the counterfactual run without '{run.phase.vendor}'"
        if not result.converged and self.terms.require_convergence:
            self.status = "failed"
            self.message = convergence_message(result, what)
            if run.phase != JOINT and self.terms.warm_start_counterfactuals:
                # a warm run that had the whole round limit (the joint run took as many)
                self.message += (
                    ", or start the counterfactual runs cold (warm_start_counterfactuals = "
                    "false), which can converge where a warm start does not"
                )
            return
        if run.phase == JOINT:
            for phase in self._later:
                self._runs[phase] = self._new_run(phase)
            self._later = []
        if not self._runs:
            self.stage = "costs"
            self._pending = {}

    def _certificate(self, run: _Run, result: AdmmResult) -> RunCertificate:
        """The query prices of a finished run (see :mod:`pivotal.negotiation.certificate`)."""
        t = self.terms
        held = None if run.fixed is None else run.fixed[0]
        fixed = {} if run.fixed is None else {t.vendors.index(run.fixed[0]): run.fixed[1]}
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
            VALUE_LABEL + str(phase): c.prices[party]
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

        plans = {str(STATUS_QUO): part(self.status_quo), str(JOINT): part(self.joint.plan)}
        for v in t.vendors:
            if v != party:
                plans[str(Phase.without(v))] = part(self._cf_plan(v))
        return plans

    # ----------------------------------------------------------------------- outcome
    def outcome(self) -> SessionOutcome:
        """The plans, reported costs and each vendor's payment (once the session is done)."""
        if self.status != "done":
            raise StateError(f"the negotiation is not finished ({self.status}, {self.phase})")
        assert self.status_quo is not None and self.joint is not None
        t = self.terms
        rc = self.reported_costs
        sq, joint = str(STATUS_QUO), str(JOINT)
        costs = {p: {"status_quo": rc[p][sq], "joint": rc[p][joint]} for p in t.parties}
        cf_costs = {
            v: {p: rc[p][str(Phase.without(v))] for p in t.parties if p != v} for v in t.vendors
        }
        payments = self._payments(rc)
        run_bounds = {}
        for phase, c in self.certificates.items():
            label = str(phase)
            upper = sum(rc[p][label] for p in c.prices)
            values = {p: rc[p][VALUE_LABEL + label] for p in c.prices}
            run_bounds[label] = run_bound(upper, values, c.fixed)
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
        joint = {p: reported[p][str(JOINT)] for p in t.parties}
        without = {
            v: {p: reported[p][str(Phase.without(v))] for p in t.parties if p != v}
            for v in t.vendors
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
                "warm_plain_rounds": t.warm_plain_rounds,
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
        f"{what} did not converge in {result.rounds} rounds{detail}; raise the round limit "
        "(max_rounds) or loosen the tolerances"
    )


def raise_if_failed(session: NegotiationSession) -> None:
    """Turn a failed session into :class:`ConvergenceError`."""
    if session.status == "failed":
        raise ConvergenceError(session.message, field="max_rounds")
