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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from pivotal.errors import InputError
from pivotal.negotiation.acceleration import AndersonAccelerator
from pivotal.negotiation.admm import AdmmSettings, balance_rho

FloatArray = npt.NDArray[np.float64]


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
        self._holders = holders
        if initial_plan is None:
            self.z = [np.zeros(n) for n in self.block_sizes]
        else:
            self.z = [np.maximum(np.asarray(p, dtype=np.float64).copy(), 0.0) for p in initial_plan]
            if [len(p) for p in self.z] != list(self.block_sizes):
                raise InputError("the initial plan does not match the block sizes")
        self.prices = {
            name: (
                np.asarray(initial_prices[name], dtype=np.float64).copy()
                if initial_prices is not None and name in initial_prices
                else np.zeros(self._local_size(name))
            )
            for name in self.views
        }
        scale = float(np.mean(np.abs(np.concatenate(self.z)))) if sum(self.block_sizes) else 1.0
        self.rho = self.settings.rho if self.settings.rho is not None else 1.0 / max(1.0, scale)
        self.round = 0
        self._anderson = (
            AndersonAccelerator(self.settings.anderson) if self.settings.anderson > 0 else None
        )
        self._fallback: tuple[list[FloatArray], dict[str, FloatArray]] | None = None
        self._last_plain_norm = np.inf
        self.history: list[RoundRecord] = []
        self.converged = False
        self.done = False

    def _local_size(self, name: str) -> int:
        return sum(self.block_sizes[b] for b in self.views[name].blocks)

    def _local(self, name: str, blocks: Sequence[FloatArray]) -> FloatArray:
        parts = [blocks[b] for b in self.views[name].blocks]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _split(self, name: str, local: FloatArray) -> list[FloatArray]:
        out, start = [], 0
        for b in self.views[name].blocks:
            out.append(local[start : start + self.block_sizes[b]])
            start += self.block_sizes[b]
        return out

    def broadcasts(self) -> dict[str, Broadcast]:
        """The current round's broadcast to every party (empty once the run is over)."""
        if self.done:
            return {}
        return {name: self.broadcast(name) for name in self.views}

    def broadcast(self, name: str) -> Broadcast:
        """The current round's broadcast to one party."""
        return Broadcast(
            self.round, name, self._local(name, self.z), self.prices[name].copy(), self.rho
        )

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
        if self.done:
            raise InputError("the negotiation is over; no more rounds")
        missing = sorted(set(self.views) - set(responses))
        unknown = sorted(set(responses) - set(self.views))
        if missing or unknown:
            raise InputError(f"responses missing from {missing} / from unknown parties {unknown}")
        s = self.settings
        x: dict[str, FloatArray] = {}
        for name, value in responses.items():
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (self._local_size(name),) or not np.all(np.isfinite(arr)):
                raise InputError(
                    f"party '{name}' sent a plan of shape {arr.shape} (expected "
                    f"({self._local_size(name)},), finite)"
                )
            x[name] = arr
        z_old = [b.copy() for b in self.z]
        prices_old = {k: v.copy() for k, v in self.prices.items()}
        # over-relaxation and z-update (projection on plans >= 0)
        sums = [np.zeros(n) for n in self.block_sizes]
        relaxed: dict[str, list[FloatArray]] = {}
        for name in self.views:
            zl = self._split(name, self._local(name, z_old))
            xs = self._split(name, x[name])
            ls = self._split(name, self.prices[name])
            relaxed[name] = [
                s.alpha * xb + (1 - s.alpha) * zb for xb, zb in zip(xs, zl, strict=True)
            ]
            for b, xh, lam in zip(self.views[name].blocks, relaxed[name], ls, strict=True):
                sums[b] += xh + lam / self.rho
        self.z = [np.maximum(sums[b] / self._holders[b], 0.0) for b in range(len(sums))]
        # price update
        for name in self.views:
            zl = self._split(name, self._local(name, self.z))
            ls = self._split(name, self.prices[name])
            new = [
                lam + self.rho * (xh - zb)
                for lam, xh, zb in zip(ls, relaxed[name], zl, strict=True)
            ]
            self.prices[name] = np.concatenate(new) if new else np.zeros(0)
        # residuals
        primal_sq = dual_sq = x_sq = z_sq = lam_sq = 0.0
        p = 0
        for name in self.views:
            z_new_local = self._local(name, self.z)
            z_old_local = self._local(name, z_old)
            primal_sq += float(np.sum((x[name] - z_new_local) ** 2))
            dual_sq += float(np.sum((z_new_local - z_old_local) ** 2))
            x_sq += float(np.sum(x[name] ** 2))
            z_sq += float(np.sum(z_new_local**2))
            lam_sq += float(np.sum(self.prices[name] ** 2))
            p += len(z_new_local)
        primal = np.sqrt(primal_sq)
        dual = self.rho * np.sqrt(dual_sq)
        eps_primal = np.sqrt(p) * s.eps_abs + s.eps_rel * max(np.sqrt(x_sq), np.sqrt(z_sq))
        eps_dual = np.sqrt(p) * s.eps_abs + s.eps_rel * np.sqrt(lam_sq)
        self.history.append(
            RoundRecord(
                self.round,
                float(primal),
                float(dual),
                float(eps_primal),
                float(eps_dual),
                self.rho,
                tuple(b.copy() for b in self.z),
                {k: v.copy() for k, v in self.prices.items()},
            )
        )
        if not self.keep_plans and len(self.history) > 1:
            self.history[-2] = replace(self.history[-2], plan=(), prices={})
        self.round += 1
        if primal <= eps_primal and dual <= eps_dual:
            self.converged = self.done = True
            return {}
        if self.round >= s.max_rounds:
            self.done = True
            return {}
        new_rho = balance_rho(
            self.round, self.rho, float(primal), float(dual), float(eps_primal), float(eps_dual), s
        )
        if self._anderson is not None:
            self._accelerate(z_old, prices_old, rho_changed=new_rho != self.rho)
        self.rho = new_rho
        return self.broadcasts()

    def _pack(self, z: Sequence[FloatArray], prices: Mapping[str, FloatArray]) -> FloatArray:
        return np.concatenate([*z, *(prices[n] / self.rho for n in self.views)])

    def _unpack(self, state: FloatArray) -> tuple[list[FloatArray], dict[str, FloatArray]]:
        z, start = [], 0
        for n in self.block_sizes:
            z.append(np.maximum(state[start : start + n], 0.0))
            start += n
        prices = {}
        for name in self.views:
            size = self._local_size(name)
            prices[name] = state[start : start + size] * self.rho
            start += size
        return z, prices

    def _accelerate(
        self, z_old: list[FloatArray], prices_old: dict[str, FloatArray], *, rho_changed: bool
    ) -> None:
        """Safeguarded Anderson step on the state (see :mod:`.acceleration`)."""
        assert self._anderson is not None
        state = self._pack(z_old, prices_old)
        plain = self._pack(self.z, self.prices)
        norm = float(np.linalg.norm(plain - state))
        if self._fallback is not None and norm > self._last_plain_norm:
            # the extrapolated point did worse than plain ADMM: go back to the plain iterate
            self.z, self.prices = self._fallback
            self._fallback = None
            self._anderson.reset()
            return
        self._fallback = None
        self._last_plain_norm = norm
        if rho_changed:
            self._anderson.reset()
            return
        self._anderson.push(state, plain)
        candidate = self._anderson.extrapolate()
        if candidate is None:
            return
        self._fallback = ([b.copy() for b in self.z], {k: v.copy() for k, v in self.prices.items()})
        self.z, self.prices = self._unpack(candidate)

    def result(self) -> AdmmResult:
        """The consensus plan and history so far."""
        return AdmmResult(
            plan=tuple(b.copy() for b in self.z),
            converged=self.converged,
            rounds=self.round,
            history=tuple(self.history),
            settings=self.settings,
            final_rho=self.rho,
            prices={k: v.copy() for k, v in self.prices.items()},
        )
