"""Agents: each party's best-response oracle, the only way its costs reach the protocol.

A :class:`Party` answers these questions and nothing else:

- ``best_response(z, prices, rho)``: ``argmin_x C(x) + prices'x + (rho/2)||x - z||^2`` over its
  own copy ``x`` of the plan blocks it cares about (consensus ADMM's local step);
- ``cost_at(plan)``: the scalar ``C(plan)`` at a named plan, asked after convergence for the
  transfers;
- ``value_at_prices(prices, max_quantity)``: the scalar ``min C(x) + prices'x`` over the public
  box, asked after convergence to certify the money (:mod:`pivotal.negotiation.certificate`);
- ``preferred_plan()``: the hub's own plan, the status quo when none is given.

:class:`LpParty` holds a private :class:`~pivotal.negotiation.cost_models.PlanCostModel`. Its
local problem is a QP in the LP's variables ``y = [x; internal]``: ``min c'y + prices'x +
(rho/2)||x - z||^2`` s.t. the LP's constraints, solved by PIQP's sparse interior point method
through :mod:`pivotal.solvers`, set up once per ``rho`` and updated each round (``q``). The
answer is a function of the task and the private model only: no warm start from earlier answers,
and the solver's scaling is recomputed from the current data, so a restarted agent answers bit
for bit what a running one would have (issue 14). An interior point method also reaches the
accuracy the protocol needs whatever the size (OSQP, warm-started, hit its iteration limit at
100 products; issue 17). Costs are LP values from HiGHS.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp

from pivotal.arrays import FloatArray
from pivotal.errors import InputError, SolverError
from pivotal.negotiation.cost_models import PlanCostModel
from pivotal.solvers import (
    InteriorPointFailure,
    InteriorPointOptions,
    InteriorPointSession,
    LinearModel,
    QuadraticModel,
    require_optimal,
    solve_linear,
)


class Party(Protocol):
    """A negotiating party as the coordinator sees it."""

    name: str

    def best_response(self, z: FloatArray, prices: FloatArray, rho: float) -> FloatArray:
        """The party's local ADMM step."""
        ...

    def cost_at(self, plan: FloatArray) -> float:
        """The party's cost of a plan (a scalar)."""
        ...

    def value_at_prices(self, prices: FloatArray, max_quantity: float) -> float:
        """``min C(x) + prices'x`` over ``0 <= x <= max_quantity`` (a scalar): the party's
        term of the Lagrangian lower bound that certifies the money
        (:mod:`pivotal.negotiation.certificate`)."""
        ...

    def preferred_plan(self) -> FloatArray:
        """The plan the party would choose alone (asked of the hub when no status quo is
        given)."""
        ...


SESSIONS_KEPT = 8
"""Set-up QPs a party keeps, one per penalty ``rho``: the protocol runs go on together, each with
its own ``rho``, and a set-up costs about a fifth more than a re-solve (the retailer at 40
products: 73 ms against 60 ms)."""


class LpParty:
    """A party whose private cost is an LP value function.

    Parameters
    ----------
    name:
        The party's public name.
    model:
        Its private cost model (never leaves this object).
    qp_options:
        Interior point settings of the local step.
    """

    def __init__(
        self, name: str, model: PlanCostModel, qp_options: InteriorPointOptions | None = None
    ) -> None:
        self.name = name
        self._model = model
        self._qp_options = qp_options or InteriorPointOptions()
        self._sessions: dict[float, InteriorPointSession] = {}

    @property
    def dimension(self) -> int:
        """Length of the party's plan copy."""
        return self._model.n_plan

    def _quadratic(self, rho: float, linear: FloatArray) -> QuadraticModel:
        m = self._model
        n = m.n_vars
        idx = np.arange(m.n_plan)
        p = sp.csc_matrix((np.full(m.n_plan, rho), (idx, idx)), shape=(n, n))
        a = sp.vstack([m.a_matrix, sp.identity(n, format="csr")]).tocsc()
        return QuadraticModel(
            p_matrix=p,
            q=linear,
            a_matrix=a,
            lower=np.concatenate([m.row_lower, m.y_lower]),
            upper=np.concatenate([m.row_upper, m.y_upper]),
        )

    def best_response(self, z: FloatArray, prices: FloatArray, rho: float) -> FloatArray:
        """``argmin C(x) + prices'x + (rho/2)||x - z||^2`` (a function of the task only).

        Raises
        ------
        SolverError
            If the interior point method cannot certify the answer; the message names the
            party and the solver's last residuals.
        """
        m = self._model
        linear = m.c.copy()
        linear[: m.n_plan] += prices - rho * z
        session = self._sessions.pop(rho, None)
        if session is None:
            # a new penalty: a new set-up (an in-place Hessian update changes the last bits)
            session = InteriorPointSession(self._quadratic(rho, linear), self._qp_options)
        else:
            session.update_q(linear)
        self._sessions[rho] = session  # the most recently used last
        while len(self._sessions) > SESSIONS_KEPT:
            del self._sessions[next(iter(self._sessions))]
        x = session.solve()
        if isinstance(x, InteriorPointFailure):
            raise SolverError(
                f"{self.name}'s best response could not be computed: PIQP {x.describe()}",
                status=x.status,
            )
        return np.maximum(x[: m.n_plan], 0.0)

    def _lp(
        self, lower: FloatArray, upper: FloatArray, prices: FloatArray | None = None
    ) -> tuple[float, FloatArray]:
        m = self._model
        y_lower, y_upper = m.y_lower.copy(), m.y_upper.copy()
        y_lower[: m.n_plan] = lower
        y_upper[: m.n_plan] = upper
        c = m.c
        if prices is not None:
            c = c.copy()
            c[: m.n_plan] += prices
        model = LinearModel(
            c=c,
            a_matrix=sp.csc_matrix(m.a_matrix),
            row_lower=m.row_lower,
            row_upper=m.row_upper,
            col_lower=y_lower,
            col_upper=y_upper,
            integrality=np.zeros(m.n_vars, dtype=np.bool_),
            maximize=False,
        )
        solution = require_optimal(solve_linear(model), what=f"{self.name}'s cost LP")
        if solution.x is None or solution.objective is None:
            raise SolverError(f"{self.name}'s cost LP returned no solution")
        return solution.objective, solution.x[: m.n_plan]

    def cost_at(self, plan: FloatArray) -> float:
        """``C(plan)`` (negative entries from rounding are read as 0)."""
        x = np.maximum(np.asarray(plan, dtype=np.float64), 0.0)
        return self._lp(x, x)[0]

    def value_at_prices(self, prices: FloatArray, max_quantity: float) -> float:
        """``min C(x) + prices'x`` over ``0 <= x <= max_quantity`` (an LP value, HiGHS).

        Raises
        ------
        InputError
            If the prices do not match the party's copy of the plan or are not finite.
        SolverError
            If the LP has no finite value (an infinite ``max_quantity`` with a price below
            the cost of taking another unit).
        """
        m = self._model
        p = np.asarray(prices, dtype=np.float64)
        if p.shape != (m.n_plan,) or not np.isfinite(p).all():
            raise InputError(
                f"prices: expected {m.n_plan} finite numbers, got shape {p.shape}", field="prices"
            )
        if not max_quantity > 0:
            raise InputError(f"max_quantity must be > 0, got {max_quantity}", field="max_quantity")
        return self._lp(np.zeros(m.n_plan), np.full(m.n_plan, float(max_quantity)), p)[0]

    def preferred_plan(self) -> FloatArray:
        """``argmin_x C(x)`` over ``x >= 0``: the plan this party would choose alone."""
        m = self._model
        return self._lp(np.zeros(m.n_plan), np.full(m.n_plan, np.inf))[1]
