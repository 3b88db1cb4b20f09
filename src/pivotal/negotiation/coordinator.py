"""The coordinator: a steppable state machine for consensus ADMM over opaque parties.

The coordinator knows the plan's block sizes and which blocks each party holds; nothing about
anybody's costs. The caller drives it:

    broadcasts = coordinator.start()
    while broadcasts:
        responses = {name: party.best_response(b.z, b.prices, b.rho) for name, b in ...}
        broadcasts = coordinator.step(responses)
    result = coordinator.result()

so transport (in-process, an execution engine, HTTP), logging, persistence and progress bars
wrap the loop. Update formulas: :mod:`pivotal.negotiation.admm`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pivotal.arrays import FloatArray
from pivotal.errors import InputError, UnsafeStepError
from pivotal.negotiation.acceleration import Acceleration, PlainRound, acceleration_for
from pivotal.negotiation.admm import AdmmSettings


@dataclass(frozen=True)
class PartyView:
    """A party's name and the plan blocks it holds a copy of (in order)."""

    name: str
    blocks: tuple[int, ...]


@dataclass(frozen=True)
class Broadcast:
    """What one party receives in a round: the consensus plan of its blocks, its prices, rho."""

    round: int
    party: str
    z: FloatArray
    prices: FloatArray
    rho: float


@dataclass(frozen=True)
class RoundRecord:
    """History of one round."""

    round: int
    primal_residual: float
    dual_residual: float
    eps_primal: float
    eps_dual: float
    rho: float
    plan: tuple[FloatArray, ...]
    prices: Mapping[str, FloatArray]
    party_primal: FloatArray | None = None
    """Each party's own primal residual ``||x_i - z_G(i)||`` (parties in the views' order)."""
    party_dual: FloatArray | None = None
    """Each party's own dual residual ``rho ||z_G(i) - z_G(i)^old||``."""


@dataclass(frozen=True)
class AdmmResult:
    """Outcome of a run: the consensus plan (per block), convergence and full history."""

    plan: tuple[FloatArray, ...]
    converged: bool
    rounds: int
    history: tuple[RoundRecord, ...]
    settings: AdmmSettings
    final_rho: float
    prices: Mapping[str, FloatArray] = field(default_factory=dict)
    answer_prices: Mapping[str, FloatArray] = field(default_factory=dict)
    """Each party's ``mu_i = lambda_i + rho (x_i - z_i)`` in the last round: the prices at which
    its last answer ``x_i`` is its best plan (``-mu_i`` is a subgradient of its cost there);
    :mod:`pivotal.negotiation.certificate` turns them into the bound on the money."""


class Coordinator:
    """Consensus ADMM over parties that hold copies of plan blocks.

    Parameters
    ----------
    block_sizes:
        Length of each plan block.
    views:
        Each party's blocks; every block must be held by at least one party.
    settings:
        ADMM settings.
    initial_plan:
        Starting consensus plan per block (zeros by default).
    initial_prices:
        Starting prices per party (zeros by default; a warm start passes the last run's).
    keep_plans:
        Keep every round's plan and prices in the history (default). When off, only the last
        round keeps them and earlier records hold residuals only (memory stays flat; a service
        that persists each round elsewhere needs no more).
    first_round:
        Number of the first round (0 by default): a run that takes over from an earlier one of
        the same name numbers its rounds on from it. The run's own rounds (``max_rounds``, the
        acceleration's schedule) still count from 0; :attr:`round` and the records carry the
        number.
    """

    def __init__(
        self,
        block_sizes: Sequence[int],
        views: Sequence[PartyView],
        settings: AdmmSettings | None = None,
        *,
        initial_plan: Sequence[FloatArray] | None = None,
        initial_prices: Mapping[str, FloatArray] | None = None,
        keep_plans: bool = True,
        first_round: int = 0,
    ) -> None:
        self.settings = settings or AdmmSettings()
        self.keep_plans = keep_plans
        self.block_sizes = tuple(int(n) for n in block_sizes)
        self.views = {v.name: v for v in views}
        if len(self.views) != len(views):
            raise InputError("party names must be unique")
        holders = [0] * len(self.block_sizes)
        for v in views:
            for b in v.blocks:
                if not 0 <= b < len(self.block_sizes):
                    raise InputError(f"party '{v.name}' names unknown block {b}")
                holders[b] += 1
        if any(h == 0 for h in holders):
            raise InputError("every plan block needs at least one party holding it")
        offsets = np.concatenate([[0], np.cumsum(self.block_sizes)]).astype(np.int64)
        self._offsets = offsets
        self._n = int(offsets[-1])
        self._holders = np.repeat(np.asarray(holders, dtype=np.float64), self.block_sizes)
        # each party's copy as positions in the flat plan; all copies stacked in party order
        self._slices: dict[str, slice] = {}
        parts, at = [], 0
        for v in views:
            pos = [np.arange(offsets[b], offsets[b + 1]) for b in v.blocks]
            local = np.concatenate(pos) if pos else np.zeros(0, dtype=np.int64)
            parts.append(local)
            self._slices[v.name] = slice(at, at + len(local))
            at += len(local)
        self._index = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        starts = [sl.start for sl in self._slices.values()]
        self._starts = np.asarray(starts, dtype=np.int64)
        self._all_hold = all(len(p) > 0 for p in parts)  # np.add.reduceat needs no empty copy
        if initial_plan is None:
            self._z = np.zeros(self._n)
        else:
            blocks = [np.asarray(p, dtype=np.float64) for p in initial_plan]
            if [len(p) for p in blocks] != list(self.block_sizes):
                raise InputError("the initial plan does not match the block sizes")
            self._z = np.maximum(np.concatenate(blocks) if blocks else np.zeros(0), 0.0)
        self._z_local = (self._z, self._z[self._index])
        self._lam = np.zeros(len(self._index))
        for name, sl in self._slices.items():
            if initial_prices is not None and name in initial_prices:
                given = np.asarray(initial_prices[name], dtype=np.float64)
                if given.shape != (self._local_size(name),):
                    raise InputError(f"initial prices of '{name}' do not match its blocks")
                self._lam[sl] = given
        with np.errstate(over="ignore"):  # an overflowing mean is refused just below
            scale = float(np.mean(np.abs(self._z))) if self._n else 1.0
        s = self.settings
        self.rho = s.rho if s.rho is not None else s.initial_rho_factor / max(1.0, scale)
        if not (np.isfinite(self._z).all() and np.isfinite(self._lam).all()):
            raise UnsafeStepError("the initial plan and prices must be finite", field="plan")
        if not (math.isfinite(self.rho) and self.rho > 0):
            raise UnsafeStepError(
                f"the initial plan gives the penalty rho = {self.rho:g} (mean |plan| {scale:g}); "
                "it must be a positive finite number",
                field="plan",
            )
        self.round = self._first_round = int(first_round)
        self._acceleration: Acceleration = acceleration_for(s, self._z, self._lam)
        self.history: list[RoundRecord] = []
        self._answer_prices = np.zeros(0)
        self.converged = False
        self.done = False

    def _local_size(self, name: str) -> int:
        sl = self._slices[name]
        return int(sl.stop - sl.start)

    def _blocks(self, flat: FloatArray) -> tuple[FloatArray, ...]:
        return tuple(
            flat[self._offsets[b] : self._offsets[b + 1]].copy()
            for b in range(len(self.block_sizes))
        )

    def _prices(self, lam: FloatArray) -> dict[str, FloatArray]:
        return {name: lam[sl].copy() for name, sl in self._slices.items()}

    @property
    def prices(self) -> dict[str, FloatArray]:
        """Every party's current prices (copies)."""
        return self._prices(self._lam)

    def broadcasts(self) -> dict[str, Broadcast]:
        """The current round's broadcast to every party (empty once the run is over)."""
        if self.done:
            return {}
        return {name: self.broadcast(name) for name in self.views}

    def broadcast(self, name: str) -> Broadcast:
        """The current round's broadcast to one party."""
        sl = self._slices[name]
        if self._z_local[0] is not self._z:  # every copy of z, computed once per new z
            self._z_local = (self._z, self._z[self._index])
        return Broadcast(self.round, name, self._z_local[1][sl], self._lam[sl].copy(), self.rho)

    def start(self) -> dict[str, Broadcast]:
        """Round 0's broadcasts."""
        return self.broadcasts()

    def step(self, responses: Mapping[str, FloatArray]) -> dict[str, Broadcast]:
        """Take every party's response to the current round; return the next broadcasts.

        Raises
        ------
        InputError
            If a party is missing, unknown, or sends a plan of the wrong length or with
            non-finite entries.
        """
        return self.broadcasts() if self.advance(responses) else {}

    def advance(self, responses: Mapping[str, FloatArray]) -> bool:
        """:meth:`step` without building the broadcasts: whether another round follows (a
        caller that sends each party its broadcast on demand uses :meth:`broadcast`).

        Every quantity the round computes (residuals, tolerances, the plan and prices after the
        Halpern or Anderson step, the penalty) is checked: a round that would leave a non-finite
        value or a penalty that is not positive is refused with :class:`UnsafeStepError` and
        the coordinator is left exactly as it was (the round can be run again with other
        responses)."""
        saved = self._save()
        try:
            with np.errstate(all="ignore"):  # overflow is detected below, not warned about
                more = self._advance(responses)
            self._check_state()
        except ArithmeticError as exc:
            self._restore(saved)
            raise UnsafeStepError(f"the round cannot be computed ({exc})", field="plan") from None
        except InputError:
            self._restore(saved)
            raise
        return more

    def _save(self) -> tuple[dict[str, Any], int, RoundRecord | None, object]:
        """What a refused round must restore: the attributes (arrays are replaced by a round,
        never changed in place), the history's length and last record, the acceleration's
        state."""
        last = self.history[-1] if self.history else None
        return dict(self.__dict__), len(self.history), last, self._acceleration.snapshot()

    def _restore(self, saved: tuple[dict[str, Any], int, RoundRecord | None, object]) -> None:
        attributes, n, last, acceleration = saved
        self.__dict__.update(attributes)
        del self.history[n:]
        if last is not None:
            self.history[n - 1] = last
        self._acceleration.restore(acceleration)

    def _check_state(self) -> None:
        """Refuse a round whose outcome is not finite or whose penalty is not positive."""
        record = self.history[-1]
        for name in ("primal_residual", "dual_residual", "eps_primal", "eps_dual"):
            value = getattr(record, name)
            if not math.isfinite(value):
                raise UnsafeStepError(f"the round's {name} would be {value}", field="plan")
        if not (math.isfinite(self.rho) and self.rho > 0):
            raise UnsafeStepError(
                f"the round would set the penalty rho to {self.rho:g}", field="plan"
            )
        if not np.isfinite(self._z).all():
            raise UnsafeStepError(
                "the round would make the consensus plan non-finite", field="plan"
            )
        if not np.isfinite(self._lam).all():
            raise UnsafeStepError("the round would make the prices non-finite", field="plan")

    def _advance(self, responses: Mapping[str, FloatArray]) -> bool:
        if self.done:
            raise InputError("the negotiation is over; no more rounds")
        missing = sorted(set(self.views) - set(responses))
        unknown = sorted(set(responses) - set(self.views))
        if missing or unknown:
            raise InputError(f"responses missing from {missing} / from unknown parties {unknown}")
        s = self.settings
        x = np.empty(len(self._index))
        for name, sl in self._slices.items():
            arr = np.asarray(responses[name], dtype=np.float64)
            size = self._local_size(name)
            if arr.shape != (size,):
                raise InputError(
                    f"party '{name}' sent a plan of shape {arr.shape} (expected ({size},))"
                )
            x[sl] = arr
        if not np.isfinite(x).all():
            bad = next(n for n, sl in self._slices.items() if not np.isfinite(x[sl]).all())
            raise InputError(f"party '{bad}' sent a plan with non-finite entries")
        z_old, lam_old = self._z, self._lam
        z_old_local = z_old[self._index]
        # over-relaxation, z-update (projection on plans >= 0), price update
        alpha = s.relaxation
        relaxed = alpha * x + (1 - alpha) * z_old_local
        sums = np.bincount(self._index, weights=relaxed + lam_old / self.rho, minlength=self._n)
        self._z = np.maximum(sums / self._holders, 0.0)
        z_local = self._z[self._index]
        self._lam = lam_old + self.rho * (relaxed - z_local)
        self._answer_prices = lam_old + self.rho * (x - z_old_local)
        # residuals (and each party's own, over its copy)
        gap2 = (x - z_local) ** 2
        move2 = (z_local - z_old_local) ** 2
        primal = float(np.sqrt(np.sum(gap2)))
        dual = self.rho * float(np.sqrt(np.sum(move2)))
        party_primal = np.sqrt(self._per_party(gap2))
        party_dual = self.rho * np.sqrt(self._per_party(move2))
        p = len(self._index)
        eps_primal = np.sqrt(p) * s.eps_abs + s.eps_rel * max(
            float(np.linalg.norm(x)), float(np.linalg.norm(z_local))
        )
        eps_dual = np.sqrt(p) * s.eps_abs + s.eps_rel * float(np.linalg.norm(self._lam))
        self.history.append(
            RoundRecord(
                self.round,
                primal,
                dual,
                float(eps_primal),
                float(eps_dual),
                self.rho,
                self._blocks(self._z),
                self._prices(self._lam),
                party_primal,
                party_dual,
            )
        )
        if not self.keep_plans and len(self.history) > 1:
            self.history[-2] = replace(self.history[-2], plan=(), prices={})
        self.round += 1
        finite = math.isfinite(primal) and math.isfinite(dual)  # inf <= inf is no convergence
        if finite and primal <= eps_primal and dual <= eps_dual:
            self.converged = self.done = True
            return False
        if self.round - self._first_round >= s.max_rounds:
            self.done = True
            return False
        self._z, self._lam, self.rho = self._acceleration.after(
            PlainRound(
                self.round - self._first_round, z_old, lam_old, self._z, self._lam, self.rho,
                primal, dual,
                float(eps_primal), float(eps_dual), self._index,
            )
        )  # fmt: skip
        return True

    @property
    def restarts(self) -> int:
        """Halpern restarts so far (0 under the other accelerations)."""
        return self._acceleration.restarts

    def _per_party(self, values: FloatArray) -> FloatArray:
        """Sums of ``values`` (one per copied entry) over each party's copy."""
        if self._all_hold and len(values):
            return np.add.reduceat(values, self._starts)
        return np.array([float(np.sum(values[sl])) for sl in self._slices.values()])

    def result(self) -> AdmmResult:
        """The consensus plan and history so far."""
        return AdmmResult(
            plan=self._blocks(self._z),
            converged=self.converged,
            rounds=self.round,
            history=tuple(self.history),
            settings=self.settings,
            final_rho=self.rho,
            prices=self._prices(self._lam),
            answer_prices=self._prices(self._answer_prices) if self.history else {},
        )
