"""What follows a plain ADMM round: the accelerations behind one small protocol.

:class:`Acceleration` turns a plain round (:class:`PlainRound`) into the state and penalty the
next round starts from. :class:`HalpernRestarts` (the default) anchors each round to its
epoch's start and re-estimates ``rho`` at restarts; :class:`BalancedAnderson` balances the
residuals and, with a memory, extrapolates the state (Anderson, type II, below).

Safeguarded Anderson acceleration of the ADMM round (type II).

The coordinator's round is a fixed-point map ``f = G(s)`` on its state ``s = (z, lambda/rho)``
(plans and scaled prices, both in units). Anderson acceleration (D. G. Anderson, J. ACM 12(4),
1965; as used for ADMM/Douglas-Rachford by A. Fu, J. Zhang, S. Boyd, "Anderson Accelerated
Douglas-Rachford Splitting", SIAM J. Sci. Comput. 42(6), 2020) extrapolates from the last ``m``
pairs ``(s_j, f_j)`` with residuals ``g_j = f_j - s_j``:

    gamma = argmin ||g_k - dG gamma||^2,   s_next = f_k - dF gamma,

where ``dG`` and ``dF`` hold successive differences. Safeguard: the extrapolated point is kept
only if the next round's fixed-point residual does not exceed the last plain round's; otherwise
the coordinator falls back to the plain ADMM iterate and clears the memory (it is also cleared
whenever ``rho`` changes, since the scaled prices change with it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pivotal.arrays import FloatArray, IntArray
from pivotal.negotiation.admm import AdmmSettings, balance_rho, restart_due, restart_rho


class AndersonAccelerator:
    """Memory of recent ``(s, f)`` pairs and the type-II extrapolation."""

    def __init__(self, memory: int, regularization: float = 1e-10) -> None:
        self.memory = memory
        self.regularization = regularization
        self._s: deque[FloatArray] = deque(maxlen=memory + 1)
        self._f: deque[FloatArray] = deque(maxlen=memory + 1)

    def reset(self) -> None:
        """Forget the history."""
        self._s.clear()
        self._f.clear()

    def snapshot(self) -> tuple[deque[FloatArray], deque[FloatArray]]:
        """The memory (its arrays are never changed in place)."""
        return deque(self._s, maxlen=self._s.maxlen), deque(self._f, maxlen=self._f.maxlen)

    def restore(self, memory: tuple[deque[FloatArray], deque[FloatArray]]) -> None:
        """Go back to a :meth:`snapshot`."""
        self._s, self._f = memory

    def push(self, s: FloatArray, f: FloatArray) -> None:
        """Record one round: the state broadcast and the plain ADMM update from it."""
        self._s.append(s.copy())
        self._f.append(f.copy())

    def extrapolate(self) -> FloatArray | None:
        """The accelerated next state, or ``None`` with fewer than two pairs."""
        if len(self._s) < 2:
            return None
        # one row per round (contiguous differences; the state is long, the memory short)
        f = np.stack(list(self._f))
        g = f - np.stack(list(self._s))
        d_g = g[1:] - g[:-1]
        d_f = f[1:] - f[:-1]
        gram = d_g @ d_g.T
        reg = self.regularization * max(1.0, float(np.trace(gram)))
        try:
            gamma = np.linalg.solve(gram + reg * np.eye(gram.shape[0]), d_g @ g[-1])
        except np.linalg.LinAlgError:
            return None
        candidate = f[-1] - gamma @ d_f
        if not np.all(np.isfinite(candidate)):
            return None
        return np.asarray(candidate, dtype=np.float64)


@dataclass(frozen=True)
class PlainRound:
    """One plain ADMM round as an acceleration sees it: the state it started from
    (``z_old``, ``lam_old``), the state it produced (``z``, ``lam``), the penalty, its residuals
    and tolerances, the rounds completed so far, and each copied entry's plan position."""

    round: int
    z_old: FloatArray
    lam_old: FloatArray
    z: FloatArray
    lam: FloatArray
    rho: float
    primal: float
    dual: float
    eps_primal: float
    eps_dual: float
    index: IntArray


class Acceleration(Protocol):
    """What follows a plain round that did not converge: the plan and prices the next round
    starts from, and its penalty. ``snapshot``/``restore`` let the coordinator take back a round
    it refuses (:class:`~pivotal.errors.UnsafeStepError`)."""

    restarts: int
    """Restarts so far (0 for an acceleration that never restarts)."""

    def after(self, step: PlainRound) -> tuple[FloatArray, FloatArray, float]:
        """The next round's plan, prices and penalty."""
        ...

    def snapshot(self) -> object:
        """The acceleration's state, to :meth:`restore` if the round is refused."""
        ...

    def restore(self, snapshot: object) -> None:
        """Go back to a :meth:`snapshot`."""
        ...


class HalpernRestarts:
    """Restarted Halpern iteration (the default; :mod:`pivotal.negotiation.admm`): each plain
    round's state is anchored to its epoch's first, ``s <- (s0 + (k + 1) T(s)) / (k + 2)``; an
    epoch restarts on the HPR-LP criteria, and a restart re-estimates ``rho``."""

    def __init__(self, settings: AdmmSettings, z: FloatArray, lam: FloatArray) -> None:
        self.settings = settings
        self.anchor = (z, lam)
        self.restart_point = self.anchor
        self.epoch_round = 0
        self.r0 = 0.0
        self.r_prev: float | None = None
        self.restarts = 0
        self.rho0: float | None = None  # the run's initial penalty (the band's centre)

    def after(self, step: PlainRound) -> tuple[FloatArray, FloatArray, float]:
        s = self.settings
        rho = step.rho
        if self.rho0 is None:
            self.rho0 = rho
        # fixed-point residual over plan copies and scaled prices, both in units
        r = float(np.hypot(step.dual, np.linalg.norm(step.lam - step.lam_old))) / rho
        k = self.epoch_round
        if k == 0:
            self.r0 = r
        z0, lam0 = self.anchor
        z = (z0 + (k + 1) * step.z) / (k + 2)
        lam = (lam0 + (k + 1) * step.lam) / (k + 2)
        self.epoch_round = k + 1
        if not restart_due(k + 1, step.round, r, self.r0, self.r_prev):
            self.r_prev = r
            return z, lam, rho
        self.restarts += 1
        if (
            s.adapt_rho
            and self.restarts > 1
            and (s.adapt_until is None or step.round <= s.adapt_until)
        ):
            z_ref, lam_ref = self.restart_point
            rho = restart_rho(
                rho,
                float(np.linalg.norm(lam - lam_ref)),
                float(np.linalg.norm((z - z_ref)[step.index])),
                self.rho0,
            )
        self.anchor = self.restart_point = (z, lam)
        self.epoch_round = 0
        self.r_prev = None
        return z, lam, rho

    def snapshot(self) -> object:
        return dict(self.__dict__)  # every field is replaced by a round, never changed in place

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, dict)
        self.__dict__.update(snapshot)


class BalancedAnderson:
    """Residual balancing of ``rho`` (Boyd et al. 2011 eq. 3.13), with safeguarded Anderson
    extrapolation of the state when ``memory > 0`` (``acceleration="anderson"``; ``"none"`` is
    balancing alone). The extrapolated point is kept only if the next plain round's fixed-point
    residual does not exceed the last one's; otherwise the plain iterate is restored and the
    memory cleared (also whenever ``rho`` changes)."""

    def __init__(self, settings: AdmmSettings, n_plan: int, memory: int) -> None:
        self.settings = settings
        self.n_plan = n_plan
        self.anderson = AndersonAccelerator(memory) if memory > 0 else None
        self.fallback: tuple[FloatArray, FloatArray] | None = None
        self.last_plain_norm = np.inf
        self.restarts = 0  # it never restarts

    def after(self, step: PlainRound) -> tuple[FloatArray, FloatArray, float]:
        new_rho = balance_rho(
            step.round, step.rho, step.primal, step.dual, step.eps_primal, step.eps_dual,
            self.settings,
        )  # fmt: skip
        z, lam = step.z, step.lam
        if self.anderson is not None:
            z, lam = self._extrapolate(step, rho_changed=new_rho != step.rho)
        return z, lam, new_rho

    def _pack(self, z: FloatArray, lam: FloatArray, rho: float) -> FloatArray:
        return np.concatenate([z, lam / rho])

    def _extrapolate(self, step: PlainRound, *, rho_changed: bool) -> tuple[FloatArray, FloatArray]:
        assert self.anderson is not None
        state = self._pack(step.z_old, step.lam_old, step.rho)
        plain = self._pack(step.z, step.lam, step.rho)
        norm = float(np.linalg.norm(plain - state))
        if self.fallback is not None and norm > self.last_plain_norm:
            # the extrapolated point did worse than plain ADMM: go back to the plain iterate
            z, lam = self.fallback
            self.fallback = None
            self.anderson.reset()
            return z, lam
        self.fallback = None
        self.last_plain_norm = norm
        if rho_changed:
            self.anderson.reset()
            return step.z, step.lam
        self.anderson.push(state, plain)
        candidate = self.anderson.extrapolate()
        if candidate is None:
            return step.z, step.lam
        self.fallback = (step.z.copy(), step.lam.copy())
        return np.maximum(candidate[: self.n_plan], 0.0), candidate[self.n_plan :] * step.rho

    def snapshot(self) -> object:
        memory = None if self.anderson is None else self.anderson.snapshot()
        return dict(self.__dict__), memory

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, tuple)
        attributes, memory = snapshot
        self.__dict__.update(attributes)
        if self.anderson is not None and memory is not None:
            self.anderson.restore(memory)


def acceleration_for(
    settings: AdmmSettings, z: FloatArray, lam: FloatArray
) -> HalpernRestarts | BalancedAnderson:
    """The acceleration ``settings.acceleration`` names, from plan ``z`` and prices ``lam``."""
    if settings.acceleration == "halpern":
        return HalpernRestarts(settings, z, lam)
    memory = settings.anderson if settings.acceleration == "anderson" else 0
    return BalancedAnderson(settings, len(z), memory)
