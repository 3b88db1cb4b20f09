"""Consensus ADMM: settings, residuals and penalty adaptation (Boyd et al. 2011).

S. Boyd, N. Parikh, E. Chu, B. Peleato, J. Eckstein, "Distributed Optimization and Statistical
Learning via the Alternating Direction Method of Multipliers", Foundations and Trends in Machine
Learning 3(1), 2011. General form consensus with regularization (sections 7.1-7.2): the plan is
split into blocks; party ``i`` keeps a copy ``x_i`` of the blocks ``G(i)`` it cares about, with
prices ``lambda_i`` (the unscaled duals, ``lambda = rho * u``). One round:

    x_i   <- argmin C_i(x) + lambda_i'x + (rho/2)||x - z_G(i)||^2          (each party, locally)
    xh_i  <- alpha x_i + (1 - alpha) z_G(i)                 (over-relaxation, section 3.4.3)
    z_b   <- max(0, mean over i with b in G(i) of (xh_i,b + lambda_i,b / rho))  (plans are >= 0)
    lambda_i <- lambda_i + rho (xh_i - z_G(i))

Residuals (section 3.3.1, eq. 3.12 and section 7.2.2):

    primal_residual = sqrt(sum_i ||x_i - z_G(i)||^2)
    dual_residual   = rho * sqrt(sum_i ||z_G(i) - z_G(i)^old||^2)
    eps_primal = sqrt(p) eps_abs + eps_rel * max(||x||, ||z~||)
    eps_dual   = sqrt(p) eps_abs + eps_rel * ||lambda||

with ``p`` the total length of the local copies; the run stops when both residuals are within
their tolerances. Residual balancing (section 3.4.1, eq. 3.13) compares the residuals *relative
to their tolerances* (plans are in units, prices in money per unit, so raw residuals are not
comparable; B. Wohlberg, "ADMM Penalty Parameter Selection by Residual Balancing",
arXiv:1704.06209, 2017, section 3): with ``ratio = (primal / eps_primal) / (dual / eps_dual)``,
if ``ratio > mu`` then ``rho <- tau * rho``; if ``ratio < 1 / mu`` then ``rho <- rho / tau``,
where ``tau = min(sqrt(ratio or 1/ratio), tau_max)`` (Wohlberg's adaptive factor). The unscaled
prices need no rescaling when ``rho`` changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pivotal.errors import InputError


@dataclass(frozen=True)
class AdmmSettings:
    """Settings of a consensus ADMM run.

    Attributes
    ----------
    rho:
        Initial penalty; ``None`` picks ``1 / max(1, mean |z0|)`` (prices per unit over typical
        quantities).
    eps_abs, eps_rel:
        Absolute and relative stopping tolerances.
    max_rounds:
        Rounds before the run stops unconverged.
    adapt_rho:
        Residual balancing on or off (plain ADMM with fixed ``rho`` when off).
    mu, tau_max:
        Residual-balancing threshold and largest factor per change.
    adapt_every, adapt_until:
        Adapt ``rho`` only every ``adapt_every`` rounds and not after round ``adapt_until``
        (a penalty that eventually stays fixed keeps ADMM's convergence guarantee).
    alpha:
        Over-relaxation parameter in ``[1, 2)`` (1 = none).
    anderson:
        Memory of the safeguarded Anderson acceleration (0 = off); see
        :mod:`pivotal.negotiation.acceleration`.
    """

    rho: float | None = None
    eps_abs: float = 1e-6
    eps_rel: float = 1e-6
    max_rounds: int = 500
    adapt_rho: bool = True
    mu: float = 10.0
    tau_max: float = 10.0
    adapt_every: int = 5
    adapt_until: int | None = None
    alpha: float = 1.3
    anderson: int = 10

    def __post_init__(self) -> None:
        if self.rho is not None and not (self.rho > 0 and math.isfinite(self.rho)):
            raise InputError(f"rho must be a positive number, got {self.rho}")
        if not (self.eps_abs > 0 and self.eps_rel >= 0):
            raise InputError("tolerances must be positive (eps_abs > 0, eps_rel >= 0)")
        if self.max_rounds < 1:
            raise InputError(f"max_rounds must be at least 1, got {self.max_rounds}")
        if not (1.0 <= self.alpha < 2.0):
            raise InputError(f"alpha (over-relaxation) must be in [1, 2), got {self.alpha}")
        if self.mu <= 1 or self.tau_max <= 1:
            raise InputError("residual balancing needs mu > 1 and tau_max > 1")


def balance_rho(
    round_: int,
    rho: float,
    primal: float,
    dual: float,
    eps_primal: float,
    eps_dual: float,
    settings: AdmmSettings,
) -> float:
    """Normalized residual balancing (Boyd et al. 2011 eq. 3.13; Wohlberg 2017)."""
    if not settings.adapt_rho or primal <= 0 or dual <= 0:
        return rho
    if round_ % settings.adapt_every != 0:
        return rho
    if settings.adapt_until is not None and round_ > settings.adapt_until:
        return rho
    ratio = (primal / eps_primal) / (dual / eps_dual)
    if ratio > settings.mu:
        return rho * min(math.sqrt(ratio), settings.tau_max)
    if ratio < 1.0 / settings.mu:
        return rho / min(math.sqrt(1.0 / ratio), settings.tau_max)
    return rho
