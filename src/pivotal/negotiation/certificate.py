"""Certified money: an error bound on every transfer and gain, from the final round and the
parties' answers to two scalar queries.

A protocol run ``R`` (the joint run, or the run without vendor ``v``) minimizes

    p*_R = min sum_{i in F} C_i(z_G(i))   over z >= 0 with the fixed blocks z_b = s_b,

where ``F`` are the run's free parties (the fixed vendor of a counterfactual is not free) and
each ``C_i`` is convex (an LP value function). The run ends with a consensus plan ``z_R``; the
parties report ``C_i(z_R)`` (the cost queries), so ``P_R = sum_{i in F} C_i(z_R)`` is known and,
``z_R`` being feasible (a counterfactual's plan is sent with the fixed block set exactly to
``s_b``), ``P_R >= p*_R``.

**Lower bound.** Boyd et al. 2011 (section 3.3.1, eq. 3.11) bound the suboptimality of an ADMM
iterate by ``p^k - p* <= -(y^k)'r^k + (x^k - x*)'s^k``: the final prices times the primal
residual plus the distance to an unknown optimum times the dual residual. The second term needs
``||x^k - x*||``, for which only the public bound ``max_quantity`` is available (ten times the
total demand, per entry): on a 40-product scenario that makes the bound larger than the gains
it should certify. Instead we evaluate a Lagrangian lower bound (weak duality, Boyd and
Vandenberghe, *Convex Optimization*, 2004, section 5.1.3) at prices derived from the last round.
In the last round party ``i`` answered ``x_i = argmin C_i(x) + lambda_i'x + (rho/2)||x - z_i||^2``
(the broadcast ``z_i``, ``lambda_i``, ``rho``), so ``-mu_i`` with

    mu_i = lambda_i + rho (x_i - z_i)

is a subgradient of ``C_i`` at ``x_i``: ``mu_i`` are the prices at which ``x_i`` is the party's
best plan. For any prices ``nu_i`` with ``N_b = sum_{i in F holding b} nu_i,b <= 0`` on every
free block ``b``, and any feasible ``z`` with ``0 <= z <= Q`` (``Q = max_quantity``),

    sum_i C_i(z_i) >= sum_i [D_i(nu_i) - nu_i'z_i] = sum_i D_i(nu_i) - sum_b N_b'z_b
                   >= sum_i D_i(nu_i) - sum_{b fixed} N_b's_b  =: L_R,

with ``D_i(nu) = min_{0 <= x <= Q} C_i(x) + nu'x``, one LP value each party reports (the
*value query*, :meth:`~pivotal.negotiation.agents.Party.value_at_prices`). So
``p*_R >= L_R`` whenever some optimal plan lies within the public bound ``Q``. The coordinator
takes ``nu_i = mu_i`` and lowers the hub's price (the hub holds every block) by ``max(M_b, 0)``,
``M_b = sum_i mu_i,b``, so that ``N_b <= 0``: at an exact ADMM fixed point ``M_b <= 0`` already
and ``L_R = P_R``; near it both differ from ``p*_R`` by the residual-sized duality gap. The run's
certified cost error is

    eps_R = |P_R - L_R| + NUMERICAL * (|P_R| + sum_i |D_i(nu_i)| + |sum_b N_b's_b|)

(so ``p*_R`` is in ``[P_R - eps_R, P_R]``). The last term covers the arithmetic of the scalar
answers: LP values from HiGHS (feasibility tolerance 1e-7) and sums of thousands of terms; on
the test scenarios the reported gains exceeded the residual term alone by up to 2e-12 of the
costs. The absolute value keeps the bound honest where that noise exceeds the duality gap.

**Money.** Exact VCG (DESIGN.md section 3, :mod:`pivotal.negotiation.clarke`) gives vendor ``v``
the gain ``G_v = C_v(s_v) + p*_{-v} - p*_J`` (``J`` the joint run, ``-v`` the run without
``v``), a difference of optimal values and so the same for every optimal plan. The reported gain
is ``C_v(s_v) + P_{-v} - P_J``; its error ``(P_{-v} - p*_{-v}) - (P_J - p*_J)`` lies in
``[-eps_J, eps_{-v}]``:

    |gain_v - G_v| <= max(eps_J, eps_{-v}).

The hub's gain is the total saving minus the vendors' gains; its error
``(V - 1)(P_J - p*_J) - sum_v (P_{-v} - p*_{-v})`` lies in ``[-sum_v eps_{-v}, (V-1) eps_J]``:

    |gain_hub - G_hub| <= max((V - 1) eps_J, sum_v eps_{-v}).

A transfer is a gain minus the party's own cost saving at the agreed plan, which the party
reported exactly; its bound is its gain's bound, relative to the exact VCG transfer at the
agreed plan. (When several plans are optimal, the cost split between parties, and so the
transfers, depend on which one is agreed; the gains do not.) With one vendor the counterfactual
plan is the status quo itself and every bound is 0. The activity fee moves fixed amounts and
adds nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from pivotal.arrays import FloatArray
from pivotal.negotiation.coordinator import PartyView


def lagrangian_prices(
    views: Sequence[PartyView],
    block_sizes: Sequence[int],
    answer_prices: Mapping[str, FloatArray],
    *,
    hub: str,
    fixed: Collection[int] = (),
) -> dict[str, FloatArray]:
    """The prices ``nu_i`` of the value queries (see the module docstring): each free party's
    ``mu_i``, the hub's lowered by ``max(M_b, 0)`` on free blocks so that ``N_b <= 0``.

    ``answer_prices`` holds ``mu_i`` of the free parties only; ``fixed`` are the blocks held at
    their status quo (the hub holds every block, in order)."""
    offsets = np.concatenate([[0], np.cumsum(block_sizes)]).astype(np.int64)
    total = np.zeros(int(offsets[-1]))
    for v in views:
        if v.name not in answer_prices:
            continue
        mu = answer_prices[v.name]
        at = 0
        for b in v.blocks:
            n = block_sizes[b]
            total[offsets[b] : offsets[b + 1]] += mu[at : at + n]
            at += n
    excess = np.maximum(total, 0.0)
    for b in fixed:
        excess[offsets[b] : offsets[b + 1]] = 0.0
    out = {name: np.asarray(mu, dtype=np.float64).copy() for name, mu in answer_prices.items()}
    out[hub] = out[hub] - excess
    return out


def fixed_term(
    hub_prices: FloatArray, block_sizes: Sequence[int], fixed: Mapping[int, FloatArray]
) -> float:
    """``sum_{b fixed} N_b's_b``: on a fixed block only the hub is free, so ``N_b`` is the hub's
    price there."""
    offsets = np.concatenate([[0], np.cumsum(block_sizes)]).astype(np.int64)
    return float(
        sum(
            float(hub_prices[offsets[b] : offsets[b + 1]] @ np.asarray(s, dtype=np.float64))
            for b, s in fixed.items()
        )
    )


NUMERICAL = 1e-9
"""Relative accuracy allowed for the parties' scalar answers (see the module docstring)."""


def run_bound(upper: float, values: Mapping[str, float], fixed: float) -> float:
    """``eps_R`` (see the module docstring) with ``L_R = sum_i D_i(nu_i) - fixed``."""
    scale = abs(upper) + float(sum(abs(v) for v in values.values())) + abs(fixed)
    return abs(upper - (float(sum(values.values())) - fixed)) + NUMERICAL * scale


def gain_bounds(
    hub: str, vendors: Sequence[str], joint: float, without: Mapping[str, float]
) -> dict[str, float]:
    """Each party's gain bound from the runs' bounds (see the module docstring; with one vendor
    its counterfactual is the status quo itself, whose bound is 0)."""
    out = {hub: max((len(vendors) - 1) * joint, float(sum(without[v] for v in vendors)))}
    for v in vendors:
        out[v] = max(joint, without[v])
    return out


__all__ = ["NUMERICAL", "fixed_term", "gain_bounds", "lagrangian_prices", "run_bound"]
