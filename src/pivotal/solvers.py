"""The only module that calls a solver: a model in, a status and a solution out.

Models are plain arrays (see :class:`LinearModel`); domain modules build them and read the
solutions back. Every solve's status is checked here and mapped to :class:`SolveStatus`; an
outcome is never built from a solve that did not prove optimality unless the caller asks for an
approximate answer (DESIGN.md section 1).

QP: OSQP, set up once with tight tolerances and polishing (:func:`solve_qp`). HiGHS's QP
solver is not used: in highspy 1.15 it reports "unbounded" on some bounded convex QPs with a
semidefinite Hessian (reproduced here; HiGHS issue #1363 describes the same symptom).

MIP and LP: HiGHS through ``highspy``'s array API (``HighsLp`` + ``passModel``), with
``mip_rel_gap = 0`` and an absolute gap below the value granularity, one thread and a fixed
random seed so that the same model always returns the same solution.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from pivotal.errors import SolverError, SolveTimeLimitError
from pivotal.results import package_version

FloatArray = npt.NDArray[np.float64]


class SolveStatus(Enum):
    """Outcome of one solve."""

    OPTIMAL = "optimal"
    """Optimality proven (within the configured gaps)."""
    TIME_LIMIT = "time_limit"
    """The time limit stopped the solve; an incumbent may exist but is not proven optimal."""
    INFEASIBLE = "infeasible"
    """The model has no feasible point."""
    UNBOUNDED = "unbounded"
    """The objective is unbounded (or the model is infeasible or unbounded)."""
    ERROR = "error"
    """The solver failed for another reason."""


@dataclass(frozen=True)
class SolverOptions:
    """Solver settings.

    Attributes
    ----------
    time_limit:
        Seconds per solve, or ``None`` for no limit.
    mip_rel_gap:
        Relative MIP gap; 0 by default because payments are differences of optima.
    mip_abs_gap:
        Absolute MIP gap; keep it below the granularity of the values (1e-9 by default).
    threads:
        Solver threads per solve (1 keeps solves deterministic and leaves cores to the engine).
    random_seed:
        Solver seed, fixed so that ties are broken the same way on every run.
    """

    time_limit: float | None = None
    mip_rel_gap: float = 0.0
    mip_abs_gap: float = 1e-9
    threads: int = 1
    random_seed: int = 0


@dataclass(frozen=True)
class LinearModel:
    """``max`` or ``min`` of ``c @ x`` s.t. ``row_lower <= A @ x <= row_upper``, bounds on x.

    ``integrality[j]`` is True for integer variables; an all-False vector gives an LP.
    """

    c: FloatArray
    a_matrix: sp.csc_matrix
    row_lower: FloatArray
    row_upper: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    integrality: npt.NDArray[np.bool_]
    maximize: bool = True

    @property
    def n_cols(self) -> int:
        """Number of variables."""
        return int(self.c.shape[0])

    @property
    def n_rows(self) -> int:
        """Number of constraints."""
        return int(self.row_lower.shape[0])

    def relaxed(self) -> LinearModel:
        """The LP relaxation (every integrality dropped)."""
        return LinearModel(
            self.c,
            self.a_matrix,
            self.row_lower,
            self.row_upper,
            self.col_lower,
            self.col_upper,
            np.zeros_like(self.integrality),
            self.maximize,
        )


@dataclass(frozen=True)
class LinearSolution:
    """Result of :func:`solve_linear`.

    ``x`` and ``objective`` are the best point found (``None`` if none); ``bound`` is the
    solver's proven bound on the objective (equal to ``objective`` at optimality); ``row_duals``
    are the constraint multipliers of an LP (empty for a MIP).
    """

    status: SolveStatus
    x: FloatArray | None
    objective: float | None
    bound: float | None
    row_duals: FloatArray
    seconds: float
    solver: str = "highs"
    solver_version: str = package_version("highspy")


_STATUS = {
    highspy.HighsModelStatus.kOptimal: SolveStatus.OPTIMAL,
    highspy.HighsModelStatus.kModelEmpty: SolveStatus.OPTIMAL,
    highspy.HighsModelStatus.kTimeLimit: SolveStatus.TIME_LIMIT,
    highspy.HighsModelStatus.kInfeasible: SolveStatus.INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: SolveStatus.UNBOUNDED,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: SolveStatus.UNBOUNDED,
}


def point_matches_objective(model: LinearModel, x: FloatArray, objective: float) -> bool:
    """Whether ``c'x`` is the objective the solver reported (to 1e-7 relative)."""
    value = float(np.dot(np.asarray(model.c, dtype=np.float64), x))
    return abs(value - objective) <= 1e-7 * max(
        1.0, abs(objective), float(np.abs(model.c) @ np.abs(x))
    )


def solve_linear(
    model: LinearModel,
    options: SolverOptions | None = None,
    *,
    start: FloatArray | None = None,
) -> LinearSolution:
    """Solve an LP or MIP with HiGHS and report its status; never raises on a bad status.

    ``start`` is a feasible point handed to the solver as its first incumbent (a MIP warm start;
    it cannot change the optimum). Use :func:`require_optimal` to turn a non-optimal status into
    the matching typed error.
    """
    opts = options or SolverOptions()
    began = time.perf_counter()
    if model.n_cols == 0:
        return LinearSolution(
            SolveStatus.OPTIMAL, np.zeros(0), 0.0, 0.0, np.zeros(model.n_rows), 0.0
        )
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", opts.threads)
    h.setOptionValue("random_seed", opts.random_seed)
    h.setOptionValue("mip_rel_gap", opts.mip_rel_gap)
    h.setOptionValue("mip_abs_gap", opts.mip_abs_gap)
    if opts.time_limit is not None:
        h.setOptionValue("time_limit", float(opts.time_limit))
    lp = highspy.HighsLp()
    lp.num_col_ = model.n_cols
    lp.num_row_ = model.n_rows
    lp.col_cost_ = np.asarray(model.c, dtype=np.float64)
    lp.col_lower_ = np.asarray(model.col_lower, dtype=np.float64)
    lp.col_upper_ = np.asarray(model.col_upper, dtype=np.float64)
    lp.row_lower_ = np.asarray(model.row_lower, dtype=np.float64)
    lp.row_upper_ = np.asarray(model.row_upper, dtype=np.float64)
    a = sp.csc_matrix(model.a_matrix)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(np.float64)
    lp.a_matrix_.num_col_ = model.n_cols
    lp.a_matrix_.num_row_ = model.n_rows
    is_mip = bool(np.any(model.integrality))
    if is_mip:
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
            for flag in model.integrality
        ]
    lp.sense_ = highspy.ObjSense.kMaximize if model.maximize else highspy.ObjSense.kMinimize
    h.passModel(lp)
    if start is not None and is_mip:
        initial = highspy.HighsSolution()
        initial.col_value = [float(v) for v in start]
        initial.value_valid = True
        h.setSolution(initial)
    h.run()
    raw_status = h.getModelStatus()
    status = _STATUS.get(raw_status, SolveStatus.ERROR)
    info = h.getInfo()
    sol = h.getSolution()
    has_point = bool(info.primal_solution_status == 2) or status is SolveStatus.OPTIMAL
    x = np.asarray(sol.col_value, dtype=np.float64) if has_point else None
    objective = float(info.objective_function_value) if has_point else None
    if x is not None and objective is not None and not point_matches_objective(model, x, objective):
        # a point whose objective is not the one reported (highspy 1.16.0 returns the MIP
        # start as the solution of a warm-started MIP): solve again without the start, and
        # never pass such a point on
        if start is not None:
            return solve_linear(model, options)
        return LinearSolution(
            SolveStatus.ERROR, None, None, None, np.zeros(0), time.perf_counter() - began
        )
    if is_mip:
        bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else None
        duals = np.zeros(0)
    else:
        bound = objective if status is SolveStatus.OPTIMAL else None
        duals = np.asarray(sol.row_dual, dtype=np.float64) if has_point else np.zeros(0)
    return LinearSolution(status, x, objective, bound, duals, time.perf_counter() - began)


def require_optimal(
    solution: LinearSolution, *, what: str, approximate: bool = False
) -> LinearSolution:
    """Check a solution under the exactness policy.

    Returns the solution when it is optimal, or when ``approximate`` is True and a time limit left
    a feasible incumbent. Raises :class:`SolveTimeLimitError` for a time limit otherwise, and
    :class:`SolverError` for every other non-optimal status.
    """
    if solution.status is SolveStatus.OPTIMAL:
        return solution
    if solution.status is SolveStatus.TIME_LIMIT:
        if approximate and solution.x is not None:
            return solution
        if approximate:
            raise SolveTimeLimitError(
                f"the time limit stopped {what} before any feasible solution was found; "
                "raise the time limit",
                bound=solution.bound,
            )
        raise SolveTimeLimitError(
            f"the time limit stopped {what} before optimality was proven "
            f"(incumbent {solution.objective}, bound {solution.bound}); raise the time limit, "
            "or pass approximate=True (CLI: --approximate) to accept an outcome marked approximate",
            incumbent=solution.objective,
            bound=solution.bound,
        )
    raise SolverError(
        f"{what} ended with solver status '{solution.status.value}'", status=solution.status.value
    )


@dataclass(frozen=True)
class QuadraticModel:
    """``min 1/2 x'Px + q'x`` s.t. ``l <= A x <= u`` (OSQP's form; P positive semidefinite)."""

    p_matrix: sp.csc_matrix
    q: FloatArray
    a_matrix: sp.csc_matrix
    lower: FloatArray
    upper: FloatArray


@dataclass(frozen=True)
class QuadraticSolution:
    """Result of :func:`solve_qp`: the point, objective and constraint multipliers."""

    status: SolveStatus
    x: FloatArray | None
    objective: float | None
    duals: FloatArray
    seconds: float
    iterations: int
    solver: str = "osqp"
    solver_version: str = package_version("osqp")


@dataclass(frozen=True)
class QpOptions:
    """OSQP settings: tight tolerances and solution polishing, for money-grade accuracy."""

    eps_abs: float = 1e-9
    eps_rel: float = 1e-9
    max_iter: int = 200_000
    polish: bool = True
    time_limit: float | None = None


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence C-level writes to stdout (OSQP prints "Polishing not needed" when not verbose)."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    saved = os.dup(fd)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def _osqp_settings(opts: QpOptions) -> dict[str, object]:
    settings: dict[str, object] = {
        "verbose": False,
        "eps_abs": opts.eps_abs,
        "eps_rel": opts.eps_rel,
        "max_iter": opts.max_iter,
        "polishing": opts.polish,
        "warm_starting": True,
    }
    if opts.time_limit is not None:
        settings["time_limit"] = opts.time_limit
    return settings


def solve_qp(model: QuadraticModel, options: QpOptions | None = None) -> QuadraticSolution:
    """Solve a convex QP with OSQP (set up once, polished); never raises on a bad status."""
    import osqp

    opts = options or QpOptions()
    began = time.perf_counter()
    settings = _osqp_settings(opts)
    solver = osqp.OSQP()
    with _quiet_stdout():
        solver.setup(
            sp.csc_matrix(sp.triu(model.p_matrix)),
            np.asarray(model.q, dtype=np.float64),
            sp.csc_matrix(model.a_matrix),
            np.asarray(model.lower, dtype=np.float64),
            np.asarray(model.upper, dtype=np.float64),
            **settings,
        )
        result = solver.solve(raise_error=False)
    text = str(result.info.status).lower()
    if text == "solved":
        status = SolveStatus.OPTIMAL
    elif "time" in text:
        status = SolveStatus.TIME_LIMIT
    elif "infeasible" in text:
        status = SolveStatus.INFEASIBLE
    else:
        status = SolveStatus.ERROR
    ok = status is SolveStatus.OPTIMAL
    return QuadraticSolution(
        status,
        np.asarray(result.x, dtype=np.float64) if ok else None,
        float(result.info.obj_val) if ok else None,
        np.asarray(result.y, dtype=np.float64) if ok else np.zeros(0),
        time.perf_counter() - began,
        int(result.info.iter),
    )


class QuadraticSession:
    """An OSQP problem set up once and re-solved after updates (an ADMM inner loop).

    ``update_q`` changes the linear term, ``update_p_values`` the values of ``P``'s stored
    entries (same sparsity); OSQP warm-starts each solve from the previous solution.
    """

    def __init__(self, model: QuadraticModel, options: QpOptions | None = None) -> None:
        import osqp

        opts = options or QpOptions()
        self._p_upper = sp.csc_matrix(sp.triu(model.p_matrix))
        self._solver = osqp.OSQP()
        settings = _osqp_settings(opts)
        with _quiet_stdout():
            self._solver.setup(
                self._p_upper,
                np.asarray(model.q, dtype=np.float64),
                sp.csc_matrix(model.a_matrix),
                np.asarray(model.lower, dtype=np.float64),
                np.asarray(model.upper, dtype=np.float64),
                **settings,
            )

    def update_q(self, q: FloatArray) -> None:
        """Replace the linear term."""
        self._solver.update(q=np.asarray(q, dtype=np.float64))

    def update_p_values(self, values: FloatArray) -> None:
        """Replace the values of ``P``'s stored upper-triangular entries (same sparsity)."""
        with _quiet_stdout():
            self._solver.update(Px=np.asarray(values, dtype=np.float64))

    def solve(self, *, what: str) -> FloatArray:
        """Solve; raise :class:`SolverError` unless OSQP reports "solved"."""
        with _quiet_stdout():
            result = self._solver.solve(raise_error=False)
        status = str(result.info.status).lower()
        if status != "solved":
            raise SolverError(f"OSQP could not solve {what}: status '{status}'", status=status)
        return np.asarray(result.x, dtype=np.float64)
