"""Models are checked before a solver sees them; solver refusals are SolverError, never a bare
solver exception (issue 19); objective scaling by powers of two (issue 20)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from pivotal.errors import SolverError
from pivotal.solvers import (
    InteriorPointFailure,
    InteriorPointOptions,
    InteriorPointSession,
    LinearModel,
    LinearModelBuilder,
    QpOptions,
    QuadraticModel,
    SolveStatus,
    checked_qp,
    power_of_two_scale,
    solve_linear,
    solve_qp,
    solve_qp_active_set,
)


def projection(lower: list[float], upper: list[float]) -> QuadraticModel:
    """``min ||x - (1, 1)||^2`` s.t. ``lower <= x <= upper`` (bounds as rows, OSQP's form)."""
    n = len(lower)
    return QuadraticModel(
        p_matrix=sp.identity(n, format="csc") * 2.0,
        q=-2.0 * np.ones(n),
        a_matrix=sp.identity(n, format="csc"),
        lower=np.array(lower),
        upper=np.array(upper),
    )


def test_rounding_crossing_is_closed_larger_crossing_is_infeasible() -> None:
    # issue 19: a VCG payment 3.6e-15 above its bid made OSQP's set-up raise OSQPException(1)
    v = 11.988405292772267
    model = projection([11.98840529277227, 0.0], [v, 2.0])
    checked = checked_qp(model)
    assert checked.lower[0] == checked.upper[0] == v
    for solve in (solve_qp, solve_qp_active_set):
        solution = solve(model)
        assert solution.status is SolveStatus.OPTIMAL and solution.x is not None
        assert solution.x[0] == pytest.approx(v, rel=1e-9)
    with pytest.raises(SolverError, match="lower bound 12.0 above its upper bound") as info:
        solve_qp(projection([12.0, 0.0], [11.0, 2.0]))
    assert info.value.status == "infeasible"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"q": np.array([np.nan, 0.0])}, "non-finite"),
        ({"lower": np.array([np.inf, 0.0])}, "lower bound \\+inf"),
        ({"upper": np.array([np.nan, 1.0])}, "NaN"),
        ({"p_matrix": sp.csc_matrix(np.array([[2.0, 1.0], [0.0, 2.0]]) + np.eye(2) * 0)}, None),
        ({"p_matrix": sp.csc_matrix(np.array([[2.0, 1.0], [0.5, 2.0]]))}, "not symmetric"),
        ({"a_matrix": sp.identity(3, format="csc")}, "inconsistent QP dimensions"),
    ],
)
def test_invalid_models_raise_solver_error(change: dict[str, object], message: str | None) -> None:
    base = projection([0.0, 0.0], [2.0, 2.0])
    model = QuadraticModel(**{**base.__dict__, **change})  # type: ignore[arg-type]
    if message is None:  # an upper triangle alone is a valid Hessian
        assert checked_qp(model).p_matrix.nnz == 3
        return
    for call in (checked_qp, solve_qp, solve_qp_active_set, InteriorPointSession):
        with pytest.raises(SolverError, match=message):
            call(model)  # type: ignore[operator]


def test_osqp_refusal_is_a_solver_error() -> None:
    # a nonconvex Hessian passes the structural checks; OSQP's own set-up refuses it
    model = QuadraticModel(
        p_matrix=sp.csc_matrix(np.diag([-2.0, 2.0])),
        q=np.zeros(2),
        a_matrix=sp.identity(2, format="csc"),
        lower=np.zeros(2),
        upper=np.ones(2),
    )
    with pytest.raises(SolverError, match="OSQP refused the QP: non-convex") as info:
        solve_qp(model)
    assert info.value.status == "osqp non-convex problem"


def test_osqp_statuses_come_from_osqps_enum() -> None:
    # min -x, x >= 0 is unbounded (OSQP: dual infeasible), not infeasible as a substring match
    # of "dual_infeasible" had it; max 0 s.t. 1 <= x <= 0 via two rows is primal infeasible.
    unbounded = QuadraticModel(
        p_matrix=sp.csc_matrix((1, 1)),
        q=np.array([-1.0]),
        a_matrix=sp.identity(1, format="csc"),
        lower=np.zeros(1),
        upper=np.array([np.inf]),
    )
    assert solve_qp(unbounded).status is SolveStatus.UNBOUNDED
    infeasible = QuadraticModel(
        p_matrix=sp.identity(1, format="csc"),
        q=np.zeros(1),
        a_matrix=sp.csc_matrix(np.array([[1.0], [1.0]])),
        lower=np.array([1.0, -np.inf]),
        upper=np.array([np.inf, 0.0]),
    )
    assert solve_qp(infeasible).status is SolveStatus.INFEASIBLE


def test_active_set_qp_is_exact_where_regularized_qp_was_not() -> None:
    # LLG's nearest core point: min (p1 - 12)^2 + (p2 - 6)^2, p1 + p2 = 30 -> (18, 12). With
    # HiGHS's default proximal regularization (1e-7) the point was 17.99999985 / 12.00000015.
    model = QuadraticModel(
        p_matrix=sp.identity(2, format="csc") * 2.0,
        q=np.array([-24.0, -12.0]),
        a_matrix=sp.csc_matrix(np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])),
        lower=np.array([30.0, 12.0, 6.0]),
        upper=np.array([30.0, 24.0, 18.0]),
    )
    solution = solve_qp_active_set(model, QpOptions())
    assert solution.status is SolveStatus.OPTIMAL and solution.x is not None
    assert list(solution.x) == [18.0, 12.0]
    assert solution.solver == "highs"


def test_power_of_two_scale() -> None:
    assert power_of_two_scale(1.0) == 1.0
    assert power_of_two_scale(3.0) == 2.0
    assert power_of_two_scale(1e-9) == math.ldexp(1.0, -30)
    assert power_of_two_scale(1e20) == math.ldexp(1.0, 66)
    assert power_of_two_scale(0.0) == power_of_two_scale(math.inf) == 1.0


def knapsack(values: list[float], scale: bool) -> LinearModel:
    """``max sum v x`` with at most one item chosen (binaries)."""
    n = len(values)
    return LinearModel(
        c=np.array(values),
        a_matrix=sp.csc_matrix(np.ones((1, n))),
        row_lower=np.array([-np.inf]),
        row_upper=np.array([1.0]),
        col_lower=np.zeros(n),
        col_upper=np.ones(n),
        integrality=np.ones(n, dtype=np.bool_),
        scale_objective=scale,
    )


def test_objective_scaling_separates_tiny_and_huge_values() -> None:
    # unscaled, HiGHS's absolute tolerances cannot tell 2e-9 from 1e-9 (mip_abs_gap 1e-9), and
    # it reads a cost of 1e20 as infinite
    tiny = solve_linear(knapsack([1e-9, 2e-9], scale=True))
    assert tiny.x is not None and list(tiny.x) == [0.0, 1.0] and tiny.objective == 2e-9
    huge = solve_linear(knapsack([8e19, 1e20], scale=True))
    assert huge.x is not None and list(huge.x) == [0.0, 1.0] and huge.objective == 1e20
    with pytest.raises(SolverError, match="infinite cost") as info:
        solve_linear(knapsack([8e19, 1e20], scale=False))
    assert info.value.status == "invalid_model"
    with pytest.raises(SolverError, match="non-finite objective"):
        solve_linear(knapsack([1.0, math.nan], scale=True))


def _mixed_qp(q: np.ndarray, rho: float) -> QuadraticModel:
    """``min rho/2 ||x||^2 + q'x`` s.t. ``x1 + x2 + x3 = 3``, ``x1 - x2 <= 1``, ``0 <= x <= 2``
    (bounds as rows, as the negotiation agents pass them)."""
    rows = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0], *np.eye(3)])
    return QuadraticModel(
        p_matrix=sp.identity(3, format="csc") * rho,
        q=q,
        a_matrix=sp.csc_matrix(rows),
        lower=np.array([3.0, -np.inf, 0.0, 0.0, 0.0]),
        upper=np.array([3.0, 1.0, 2.0, 2.0, 2.0]),
    )


def test_interior_point_session_matches_the_closed_form() -> None:
    # q = 0, rho = 1: the nearest point to 0 on the plane sum = 3 is (1, 1, 1) (inside the box and
    # the inequality); another q: against HiGHS's active-set QP (exact vertex arithmetic)
    session = InteriorPointSession(_mixed_qp(np.zeros(3), 1.0))
    x = session.solve()
    assert isinstance(x, np.ndarray)
    np.testing.assert_allclose(x, [1.0, 1.0, 1.0], atol=1e-8)
    q = np.array([-4.0, 0.0, 0.5])
    exact = solve_qp_active_set(_mixed_qp(q, 2.0))
    assert exact.x is not None
    session = InteriorPointSession(_mixed_qp(np.zeros(3), 2.0))
    session.update_q(q)
    x = session.solve()
    assert isinstance(x, np.ndarray)
    np.testing.assert_allclose(x, exact.x, atol=1e-8)


def test_interior_point_answer_depends_on_the_data_only() -> None:
    # the same data after another history gives the same point bit for bit (no warm start, the
    # scaling recomputed on update): what a restarted negotiation agent relies on (issue 14)
    rng = np.random.default_rng(3)
    final_q, final_rho = rng.normal(size=3), 0.7
    busy = InteriorPointSession(_mixed_qp(rng.normal(size=3), final_rho))
    for _ in range(4):
        busy.update_q(rng.normal(size=3) * 10)
        assert isinstance(busy.solve(), np.ndarray)
    busy.update_q(final_q)
    fresh = InteriorPointSession(_mixed_qp(final_q, final_rho))
    a, b = busy.solve(), fresh.solve()
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
    assert a.tobytes() == b.tobytes()


def test_interior_point_failure_reports_status_and_residuals() -> None:
    session = InteriorPointSession(
        _mixed_qp(np.array([-4.0, 0.0, 0.5]), 2.0), InteriorPointOptions(max_iter=1)
    )
    failure = session.solve()
    assert isinstance(failure, InteriorPointFailure)
    assert failure.status == "max_iter_reached" and failure.iterations == 1
    assert failure.primal_residual > 0 and "primal residual" in failure.describe()
    with pytest.raises(SolverError, match="not finite"):
        session.update_q(np.array([np.nan, 0.0, 0.0]))


def test_model_builder_assembles_blocks_rows_and_fixed_columns() -> None:
    # two copies of min x0 + 2 x1 s.t. x0 + x1 >= 1, coupled so that copy 2's x0 equals copy 1's
    # x1, and copy 2's x1 fixed at 0.25: by hand, copy 2 needs x0 >= 0.75, so copy 1 has
    # x1 = 0.75 (cost 1.5) and x0 = 0.25 (cost 0.25); copy 2 costs 0.75 + 0.5. Optimum 3.0.
    inner = LinearModelBuilder()
    x0, x1 = inner.var(1.0), inner.var(2.0)
    inner.row([(x0, 1.0), (x1, 1.0)], lower=1.0)
    block = inner.build()
    outer = LinearModelBuilder()
    first, second = outer.append(block), outer.append(block)
    outer.row([(first + 1, 1.0), (second, -1.0)], 0.0, 0.0)
    outer.fix(second + 1, np.array([0.25]))
    model = outer.build()
    dense = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 1.0, -1.0, 0.0]])
    assert np.array_equal(model.a_matrix.toarray(), dense)
    assert model.col_lower[3] == model.col_upper[3] == 0.25
    solution = solve_linear(model)
    assert solution.objective is not None and math.isclose(solution.objective, 3.0)
