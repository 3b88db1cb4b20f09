"""Cross-check path (tests and benchmarks only): the market as an LP/QP, solved n+1 times.

``min sum_j c_j(y_j) - sum_i b_i(x_i)`` s.t. ``sum_i x_i - sum_j y_j = 0`` and bounds, with one
variable per linear or quadratic agent (quadratic terms on the diagonal of ``P``) and one per
segment of a piecewise-linear curve (convexity makes cheaper segments fill first). Solved
through :mod:`pivotal.solvers`, independently of the price search: HiGHS's simplex when every
curve is piecewise-linear (an LP), OSQP (polished) as soon as one curve is quadratic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from pivotal.errors import SolverError
from pivotal.markets.curves import CurveKind
from pivotal.markets.market import Agent, Market
from pivotal.solvers import (
    LinearModel,
    QpOptions,
    QuadraticModel,
    SolveStatus,
    require_optimal,
    solve_linear,
    solve_qp,
    solve_qp_active_set,
)


def _columns(agents: Sequence[Agent]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Linear cost, quadratic diagonal, upper bound and balance coefficient per variable."""
    c, q, ub, bal = [], [], [], []
    for agent in agents:
        curve = agent.curve
        s = curve.sign  # +1 producer (cost, supplies), -1 buyer (benefit, demands)
        if curve.kind is CurveKind.PIECEWISE_LINEAR:
            for (q0, v0), (q1, v1) in zip(curve.points, curve.points[1:], strict=False):
                c.append(s * (v1 - v0) / (q1 - q0))
                q.append(0.0)
                ub.append(q1 - q0)
                bal.append(-s)
        elif curve.kind in {CurveKind.LINEAR, CurveKind.QUADRATIC}:
            c.append(s * curve.a)
            q.append(2.0 * curve.b if curve.kind is CurveKind.QUADRATIC else 0.0)
            ub.append(curve.capacity)
            bal.append(-s)
        else:
            raise SolverError("the reference path handles closed-form curves only")
    return np.array(c), np.array(q), np.array(ub), np.array(bal)


def _solve(agents: Sequence[Agent], solver: str) -> tuple[float, np.ndarray]:
    """Optimal welfare and the variables' values (``solver``: auto, highs or osqp).

    ``highs`` solves a QP (some curve quadratic) with HiGHS's active-set QP solver, an LP with
    its simplex; ``osqp`` always uses OSQP; ``auto`` is HiGHS's simplex for an LP and OSQP for a
    QP.
    """
    c, q, ub, bal = _columns(agents)
    n = len(c)
    a = sp.csc_matrix(bal.reshape(1, n))
    if solver == "highs" and bool(np.any(q > 0)):
        # an exact active-set method: no iteration tolerance to tighten (OSQP at 1e-10 ended
        # with status 'error' on counterfactuals of a 1,000-agent market)
        qp = QuadraticModel(
            p_matrix=sp.diags(q).tocsc(),
            q=c,
            a_matrix=sp.vstack([a, sp.identity(n, format="csc")]).tocsc(),
            lower=np.zeros(n + 1),
            upper=np.concatenate([[0.0], ub]),
        )
        found = solve_qp_active_set(qp)
        if found.status is not SolveStatus.OPTIMAL or found.x is None:
            raise SolverError(f"HiGHS's QP solver ended with status '{found.status.value}'")
        x = np.clip(found.x, 0.0, ub)
        return -float(c @ x + 0.5 * q @ (x * x)), x
    use_osqp = solver == "osqp" or (solver == "auto" and bool(np.any(q > 0)))
    if use_osqp:
        model = QuadraticModel(
            p_matrix=sp.diags(q).tocsc(),
            q=c,
            a_matrix=sp.vstack([a, sp.identity(n, format="csc")]).tocsc(),
            lower=np.zeros(n + 1),
            upper=np.concatenate([[0.0], ub]),
        )
        # tighter than the default: polishing does not always land on the exact active set, and
        # at 1e-8 the welfare was found 7e-7 short on a 9-agent market (W = 86.25)
        result = solve_qp(model, QpOptions(eps_abs=1e-10, eps_rel=1e-10))
        if result.status is not SolveStatus.OPTIMAL or result.x is None:
            raise SolverError(f"OSQP ended with status '{result.status.value}'")
        x = np.clip(result.x, 0.0, ub)
        return -float(c @ x + 0.5 * q @ (x * x)), x
    linear = LinearModel(
        c=c,
        a_matrix=a,
        row_lower=np.zeros(1),
        row_upper=np.zeros(1),
        col_lower=np.zeros(n),
        col_upper=ub,
        integrality=np.zeros(n, dtype=np.bool_),
        maximize=False,
    )
    solution = require_optimal(solve_linear(linear), what="the reference market LP")
    assert solution.x is not None and solution.objective is not None
    return -solution.objective, solution.x


def reference_welfare(agents: Sequence[Agent], solver: str = "auto") -> float:
    """Optimal welfare by one LP/QP solve."""
    if not agents:
        return 0.0
    return _solve(agents, solver)[0]


def reference_quantities(market: Market, solver: str = "auto") -> dict[str, float]:
    """Optimal quantities of the full market from the LP/QP."""
    _, x = _solve(market.agents, solver)
    out: dict[str, float] = {}
    col = 0
    for agent in market.agents:
        width = len(agent.curve.points) - 1 if agent.curve.kind is CurveKind.PIECEWISE_LINEAR else 1
        out[agent.name] = float(x[col : col + width].sum())
        col += width
    return out


def reference_transfers(market: Market, solver: str = "auto") -> dict[str, float]:
    """VCG transfers from n+1 generic solves (positive = paid to the agent)."""
    w_star, _ = _solve(market.agents, solver)
    quantities = reference_quantities(market, solver)
    out: dict[str, float] = {}
    for agent in market.agents:
        gain = w_star - reference_welfare(market.without(agent.name), solver)
        value = agent.curve.value(quantities[agent.name])
        out[agent.name] = value + gain if agent.curve.sign > 0 else -(value - gain)
    return out
