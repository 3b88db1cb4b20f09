"""The only module that calls a solver: a model in, a status and a solution out.

Models are plain arrays (see :class:`LinearModel`); domain modules build them and read the
solutions back. Every solve's status is checked here and mapped to :class:`SolveStatus`; an
outcome is never built from a solve that did not prove optimality unless the caller asks for an
approximate answer (DESIGN.md section 1).

QP: OSQP with tight tolerances and polishing (:func:`solve_qp`, statuses read through OSQP's own
enum), for the market reference and the core payments' fallback (semidefinite Hessians). The
negotiation agents' best responses go to PIQP's sparse interior point
(:class:`InteriorPointSession`), which has no iteration limit to hit at a hundred products.
Strictly convex QPs that must be solved to the last digit (the VCG-nearest core point) go to
HiGHS's active-set QP solver instead (:func:`solve_qp_active_set`): with the proximal
regularization switched off it lands on the exact vertex of the active set, where OSQP's ADMM
stopped "solved inaccurate" after 200,000 iterations on ordinary money (issue 20). HiGHS's QP is
not used for semidefinite Hessians: in highspy 1.15 it reports "unbounded" on some bounded convex
QPs with a singular Hessian (HiGHS issue #1363 describes the same symptom).

Every QP is checked before it reaches a solver (:func:`checked_qp`): finite data, bounds in
order (a crossing of a few ulps, as ties and rounding produce, is closed), the Hessian square,
symmetric and stored as its upper triangle. A solver that still refuses a model raises
:class:`~pivotal.errors.SolverError` with the solver's status, never the solver's own exception.

MIP and LP: HiGHS through ``highspy``'s array API (``HighsLp`` + ``passModel``), with
``mip_rel_gap = 0`` and an absolute gap below the value granularity, one thread and a fixed
random seed so that the same model always returns the same solution.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from enum import Enum

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from pivotal.arrays import FloatArray
from pivotal.errors import SolverError, SolveTimeLimitError
from pivotal.results import package_version


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
        Absolute MIP gap in the model's objective units. The auction models are scaled so that
        the largest value is in ``[1, 2)`` (:func:`power_of_two_scale`), so there the default
        1e-9 is a gap relative to the largest bid.
    threads:
        Solver threads per solve (1 keeps solves deterministic and leaves cores to the engine).
    random_seed:
        Solver seed, fixed so that ties are broken the same way on every run.
    approximate:
        The exactness policy. False (the default): a solve stopped by the time limit raises
        :class:`~pivotal.errors.SolveTimeLimitError`. True: its feasible incumbent is accepted and
        every outcome built on it is marked ``exact=False``. Every solve made with these options
        follows it (winner determination, LP bounds, counterfactuals, core payments).
    """

    time_limit: float | None = None
    mip_rel_gap: float = 0.0
    mip_abs_gap: float = 1e-9
    threads: int = 1
    random_seed: int = 0
    approximate: bool = False


def exactness(options: SolverOptions | None, approximate: bool = False) -> SolverOptions:
    """``options`` (the defaults when None), accepting approximate solves if ``approximate``.

    The user-facing entry points take ``approximate=True`` as a shorthand for
    ``SolverOptions(approximate=True)``; below them the policy travels in the options only.
    """
    opts = options or SolverOptions()
    return replace(opts, approximate=True) if approximate and not opts.approximate else opts


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
    scale_objective: bool = False
    """Solve with ``c`` divided by :func:`power_of_two_scale` of ``max |c|`` (exact in binary)
    and report the objective, bound and duals in ``c``'s own units; ``mip_abs_gap`` and HiGHS's
    tolerances then apply to the scaled objective, i.e. relative to the largest coefficient."""
    tight: bool = False
    """Solve with HiGHS's primal and dual feasibility tolerances at 1e-10 (its smallest) and its
    integrality tolerance at 1e-9, instead of 1e-7 and 1e-6: values that differ by 1e-10 of
    the largest are then told apart (measured: 1e-7 otherwise), at some cost in time."""

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
            self.scale_objective,
            self.tight,
        )


class LinearModelBuilder:
    """Assembles a :class:`LinearModel` variable by variable and row by row.

    The one place where sparse constraint matrices are built from (row, column, value)
    triplets: winner determination, the core constraints, the negotiation parties' cost LPs and
    the centralized plan all describe their rows here. Repeated (row, column) entries are summed.
    """

    def __init__(self) -> None:
        self._c: list[float] = []
        self._lower: list[float] = []
        self._upper: list[float] = []
        self._integer: list[bool] = []
        self._rows: list[int] = []
        self._cols: list[int] = []
        self._vals: list[float] = []
        self._row_lower: list[float] = []
        self._row_upper: list[float] = []

    @property
    def n_cols(self) -> int:
        """Variables so far."""
        return len(self._c)

    @property
    def n_rows(self) -> int:
        """Rows so far."""
        return len(self._row_lower)

    def var(
        self, cost: float, lower: float = 0.0, upper: float = math.inf, *, integer: bool = False
    ) -> int:
        """Add a variable; returns its column."""
        self._c.append(float(cost))
        self._lower.append(float(lower))
        self._upper.append(float(upper))
        self._integer.append(integer)
        return len(self._c) - 1

    def append(self, model: LinearModel) -> int:
        """Add ``model``'s variables and rows as a block of their own; its first column.

        The objective's sense is the builder's own (see :meth:`build`): append minimizations to a
        minimization.
        """
        first = self.n_cols
        self._c.extend(model.c.tolist())
        self._lower.extend(model.col_lower.tolist())
        self._upper.extend(model.col_upper.tolist())
        self._integer.extend(model.integrality.tolist())
        coo = sp.coo_matrix(model.a_matrix)
        self._rows.extend((coo.row + self.n_rows).tolist())
        self._cols.extend((coo.col + first).tolist())
        self._vals.extend(coo.data.tolist())
        self._row_lower.extend(model.row_lower.tolist())
        self._row_upper.extend(model.row_upper.tolist())
        return first

    def fix(self, first: int, values: FloatArray) -> None:
        """Fix the variables from column ``first`` on at ``values``."""
        for j, value in enumerate(values.tolist(), start=first):
            self._lower[j] = self._upper[j] = float(value)

    def row(
        self, terms: Iterable[tuple[int, float]], lower: float = -math.inf, upper: float = math.inf
    ) -> int:
        """Add ``lower <= sum(value * x[col] for col, value in terms) <= upper``; its index."""
        r = len(self._row_lower)
        for col, value in terms:
            self._rows.append(r)
            self._cols.append(col)
            self._vals.append(value)
        self._row_lower.append(float(lower))
        self._row_upper.append(float(upper))
        return r

    def matrix(self) -> sp.csc_matrix:
        """The constraint matrix of the rows so far."""
        return sp.csc_matrix(
            (
                np.asarray(self._vals, dtype=np.float64),
                (np.asarray(self._rows, dtype=np.int64), np.asarray(self._cols, dtype=np.int64)),
            ),
            shape=(self.n_rows, self.n_cols),
        )

    def row_bounds(self) -> tuple[FloatArray, FloatArray]:
        """The rows' lower and upper bounds."""
        return np.asarray(self._row_lower, dtype=np.float64), np.asarray(
            self._row_upper, dtype=np.float64
        )

    def build(
        self, *, maximize: bool = False, scale_objective: bool = False, tight: bool = False
    ) -> LinearModel:
        """The model of the variables and rows so far."""
        row_lower, row_upper = self.row_bounds()
        return LinearModel(
            c=np.asarray(self._c, dtype=np.float64),
            a_matrix=self.matrix(),
            row_lower=row_lower,
            row_upper=row_upper,
            col_lower=np.asarray(self._lower, dtype=np.float64),
            col_upper=np.asarray(self._upper, dtype=np.float64),
            integrality=np.asarray(self._integer, dtype=np.bool_),
            maximize=maximize,
            scale_objective=scale_objective,
            tight=tight,
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


PRECISE_FEASIBILITY_TOLERANCE = 1e-10
"""HiGHS's primal and dual feasibility tolerance for ``tight`` models (HiGHS's smallest)."""
PRECISE_INTEGRALITY_TOLERANCE = 1e-9
"""HiGHS's integrality tolerance for ``tight`` models."""

HIGHS_INFINITE_COST = 1e20
"""HiGHS treats objective coefficients of this magnitude as infinite (option ``infinite_cost``)."""


def power_of_two_scale(magnitude: float) -> float:
    """The power of two ``2^k`` with ``2^k <= magnitude < 2^(k+1)`` (1.0 for 0 or non-finite).

    Dividing a model's data by it is exact in binary floating point (only the exponent changes),
    so a model scaled this way and solved in units of ``2^k`` maps back without rounding.
    """
    if not math.isfinite(magnitude) or magnitude <= 0.0:
        return 1.0
    _, exponent = math.frexp(magnitude)
    return math.ldexp(1.0, exponent - 1)


def _check_linear(model: LinearModel) -> None:
    """Refuse a model HiGHS would misread: non-finite data, infinite costs, crossing bounds."""
    c = np.asarray(model.c, dtype=np.float64)
    if not np.all(np.isfinite(c)):
        raise SolverError(
            "the model has a non-finite objective coefficient", status="invalid_model"
        )
    if c.size and not model.scale_objective and float(np.max(np.abs(c))) >= HIGHS_INFINITE_COST:
        raise SolverError(
            f"an objective coefficient of magnitude {float(np.max(np.abs(c))):.3g} reaches HiGHS's "
            f"infinite cost ({HIGHS_INFINITE_COST:g}); scale the model first",
            status="invalid_model",
        )
    data = sp.csc_matrix(model.a_matrix).data
    if not np.all(np.isfinite(data)):
        raise SolverError("the model's constraint matrix is not finite", status="invalid_model")
    for lower, upper, what in (
        (model.col_lower, model.col_upper, "variable"),
        (model.row_lower, model.row_upper, "constraint"),
    ):
        lo = np.asarray(lower, dtype=np.float64)
        hi = np.asarray(upper, dtype=np.float64)
        if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
            raise SolverError(f"a {what} bound is NaN", status="invalid_model")
        if np.any(lo > hi):
            k = int(np.flatnonzero(lo > hi)[0])
            raise SolverError(
                f"{what} {k} has lower bound {float(lo[k])!r} above its upper bound "
                f"{float(hi[k])!r}",
                status="infeasible",
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
    _check_linear(model)
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
    if model.tight:
        h.setOptionValue("primal_feasibility_tolerance", PRECISE_FEASIBILITY_TOLERANCE)
        h.setOptionValue("dual_feasibility_tolerance", PRECISE_FEASIBILITY_TOLERANCE)
        h.setOptionValue("mip_feasibility_tolerance", PRECISE_INTEGRALITY_TOLERANCE)
    lp = highspy.HighsLp()
    lp.num_col_ = model.n_cols
    lp.num_row_ = model.n_rows
    cost = np.asarray(model.c, dtype=np.float64)
    scale = power_of_two_scale(float(np.max(np.abs(cost)))) if model.scale_objective else 1.0
    lp.col_cost_ = cost / scale
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
    objective = float(info.objective_function_value) * scale if has_point else None
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
        bound = float(info.mip_dual_bound) * scale if np.isfinite(info.mip_dual_bound) else None
        duals = np.zeros(0)
    else:
        bound = objective if status is SolveStatus.OPTIMAL else None
        duals = np.asarray(sol.row_dual, dtype=np.float64) * scale if has_point else np.zeros(0)
    return LinearSolution(status, x, objective, bound, duals, time.perf_counter() - began)


def require_optimal(
    solution: LinearSolution, *, what: str, options: SolverOptions | None = None
) -> LinearSolution:
    """Check a solution under the exactness policy of ``options`` (exact when None).

    Returns the solution when it is optimal, or when ``options.approximate`` is True and a time
    limit left a feasible incumbent. Raises :class:`SolveTimeLimitError` for a time limit
    otherwise, and :class:`SolverError` for every other non-optimal status.
    """
    if solution.status is SolveStatus.OPTIMAL:
        return solution
    approximate = options is not None and options.approximate
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
            "or pass SolverOptions(approximate=True) (CLI: --approximate) to accept an outcome "
            "marked approximate",
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


_OSQP_ERRORS = {
    1: "data validation error",
    2: "settings validation error",
    3: "linear system solver initialization error",
    4: "non-convex problem",
    5: "memory allocation error",
    6: "workspace not initialized",
    7: "algebra load error",
}


def _osqp_failure(exc: Exception, what: str) -> SolverError:
    code = exc.args[0] if exc.args else None
    name = _OSQP_ERRORS.get(code, f"error {code}") if isinstance(code, int) else str(exc)
    return SolverError(f"OSQP refused {what}: {name}", status=f"osqp {name}")


def _osqp_status(code: int) -> SolveStatus:
    """OSQP's status code, read through OSQP's own enum (inaccurate answers are not optimal)."""
    from osqp import SolverStatus as Osqp

    try:
        osqp_status = Osqp(code)
    except ValueError:
        return SolveStatus.ERROR
    return {
        Osqp.OSQP_SOLVED: SolveStatus.OPTIMAL,
        Osqp.OSQP_TIME_LIMIT_REACHED: SolveStatus.TIME_LIMIT,
        Osqp.OSQP_PRIMAL_INFEASIBLE: SolveStatus.INFEASIBLE,
        Osqp.OSQP_DUAL_INFEASIBLE: SolveStatus.UNBOUNDED,
    }.get(osqp_status, SolveStatus.ERROR)


def checked_qp(model: QuadraticModel) -> QuadraticModel:
    """The model in the form the QP solvers require, or :class:`SolverError` if it has none.

    Checks shapes and finiteness, takes the upper triangle of a symmetric Hessian (an upper
    triangle given alone is accepted as is), and orders the bounds: ``lower = +inf`` or
    ``upper = -inf`` is refused, and a crossing ``lower > upper`` by at most 1e-12 relative (what
    ties and rounding produce, e.g. a VCG payment a few ulps above the value it may not exceed)
    is closed by lowering ``lower`` to ``upper``; a larger crossing is an infeasible model.
    """
    q = np.asarray(model.q, dtype=np.float64).ravel()
    n = int(q.shape[0])
    p_full = sp.csc_matrix(model.p_matrix, dtype=np.float64)
    a = sp.csc_matrix(model.a_matrix, dtype=np.float64)
    lower = np.array(model.lower, dtype=np.float64).ravel()
    upper = np.array(model.upper, dtype=np.float64).ravel()
    m = int(lower.shape[0])
    if p_full.shape != (n, n) or a.shape != (m, n) or upper.shape != (m,):
        raise SolverError(
            f"inconsistent QP dimensions: P {p_full.shape}, q ({n},), A {a.shape}, "
            f"l ({m},), u {upper.shape}",
            status="invalid_model",
        )
    for name, values in (("q", q), ("P", p_full.data), ("A", a.data)):
        if not np.all(np.isfinite(values)):
            raise SolverError(f"the QP's {name} has a non-finite entry", status="invalid_model")
    if np.any(np.isnan(lower)) or np.any(np.isnan(upper)):
        raise SolverError("a QP bound is NaN", status="invalid_model")
    if np.any(lower == np.inf) or np.any(upper == -np.inf):
        raise SolverError(
            "a QP constraint has lower bound +inf or upper bound -inf", status="infeasible"
        )
    if sp.tril(p_full, k=-1).nnz:
        asym = abs(p_full - p_full.T)
        biggest = float(abs(p_full).max()) if p_full.nnz else 0.0
        if asym.nnz and float(asym.max()) > 1e-12 * biggest:
            raise SolverError("the QP's Hessian is not symmetric", status="invalid_model")
    p_upper = sp.csc_matrix(sp.triu(p_full))
    p_upper.sum_duplicates()
    p_upper.sort_indices()
    a.sum_duplicates()
    a.sort_indices()
    crossing = lower > upper
    if np.any(crossing):
        size = np.maximum(np.abs(lower[crossing]), np.abs(upper[crossing]))
        gap = lower[crossing] - upper[crossing]
        if np.any(gap > 1e-12 * size):
            k = int(np.flatnonzero(crossing)[int(np.argmax(gap / size))])
            raise SolverError(
                f"QP constraint {k} has lower bound {float(lower[k])!r} above its upper bound "
                f"{float(upper[k])!r}",
                status="infeasible",
            )
        lower[crossing] = upper[crossing]
    return QuadraticModel(p_upper, q, a, lower, upper)


def solve_qp(model: QuadraticModel, options: QpOptions | None = None) -> QuadraticSolution:
    """Solve a convex QP with OSQP (set up once, polished); never raises on a bad status.

    Raises :class:`SolverError` only when the model itself is refused (:func:`checked_qp`, or
    OSQP's own set-up checks).
    """
    import osqp

    opts = options or QpOptions()
    began = time.perf_counter()
    checked = checked_qp(model)
    settings = _osqp_settings(opts)
    solver = osqp.OSQP()
    try:
        with _quiet_stdout():
            solver.setup(
                checked.p_matrix,
                checked.q,
                checked.a_matrix,
                checked.lower,
                checked.upper,
                **settings,
            )
            result = solver.solve(raise_error=False)
    except Exception as exc:  # OSQPException and the ValueErrors of its bindings
        raise _osqp_failure(exc, "the QP") from None
    status = _osqp_status(result.info.status_val)
    ok = status is SolveStatus.OPTIMAL
    return QuadraticSolution(
        status,
        np.asarray(result.x, dtype=np.float64) if ok else None,
        float(result.info.obj_val) if ok else None,
        np.asarray(result.y, dtype=np.float64) if ok else np.zeros(0),
        time.perf_counter() - began,
        int(result.info.iter),
    )


_HIGHS_VERSION = package_version("highspy")

_HIGHS_QP_STATUS = {
    highspy.HighsModelStatus.kOptimal: SolveStatus.OPTIMAL,
    highspy.HighsModelStatus.kTimeLimit: SolveStatus.TIME_LIMIT,
    highspy.HighsModelStatus.kInfeasible: SolveStatus.INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: SolveStatus.UNBOUNDED,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: SolveStatus.UNBOUNDED,
}


def solve_qp_active_set(
    model: QuadraticModel, options: QpOptions | None = None
) -> QuadraticSolution:
    """Solve a strictly convex QP (positive definite ``P``) with HiGHS's active-set QP solver.

    Rows of ``A`` with one nonzero become variable bounds; HiGHS's proximal regularization
    (``qp_regularization_value``, 1e-7 by default, which moved the LLG core point by 1.5e-7) is
    switched off, and its feasibility tolerances are 1e-10 in the model's units (scale the model
    to magnitudes about 1). Only ``time_limit`` of ``options`` applies. Never raises on a bad
    status; raises :class:`SolverError` when the model is refused (:func:`checked_qp`).
    """
    opts = options or QpOptions()
    began = time.perf_counter()
    checked = checked_qp(model)
    n = int(checked.q.shape[0])
    a = sp.csr_matrix(checked.a_matrix)
    counts = np.diff(a.indptr)
    single = np.flatnonzero(counts == 1)
    col_lower = np.full(n, -np.inf)
    col_upper = np.full(n, np.inf)
    keep = np.ones(a.shape[0], dtype=np.bool_)
    for r in single:
        j = int(a.indices[a.indptr[r]])
        coef = float(a.data[a.indptr[r]])
        if coef == 0.0:
            continue
        lo, hi = checked.lower[r] / coef, checked.upper[r] / coef
        if coef < 0:
            lo, hi = hi, lo
        col_lower[j] = max(col_lower[j], lo)
        col_upper[j] = min(col_upper[j], hi)
        keep[r] = False
    if np.any(col_lower > col_upper):
        return QuadraticSolution(
            SolveStatus.INFEASIBLE,
            None,
            None,
            np.zeros(0),
            time.perf_counter() - began,
            0,
            "highs",
            _HIGHS_VERSION,
        )
    rows = sp.csc_matrix(a[keep])
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("qp_regularization_value", 0.0)
    h.setOptionValue("primal_feasibility_tolerance", 1e-10)
    h.setOptionValue("dual_feasibility_tolerance", 1e-10)
    if opts.time_limit is not None:
        h.setOptionValue("time_limit", float(opts.time_limit))
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = int(rows.shape[0])
    lp.col_cost_ = checked.q
    lp.col_lower_ = col_lower
    lp.col_upper_ = col_upper
    lp.row_lower_ = checked.lower[keep]
    lp.row_upper_ = checked.upper[keep]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = rows.indptr.astype(np.int32)
    lp.a_matrix_.index_ = rows.indices.astype(np.int32)
    lp.a_matrix_.value_ = rows.data.astype(np.float64)
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = int(rows.shape[0])
    h.passModel(lp)
    lower_tri = sp.csc_matrix(sp.triu(checked.p_matrix).T)
    hessian = highspy.HighsHessian()
    hessian.dim_ = n
    hessian.format_ = highspy.HessianFormat.kTriangular
    hessian.start_ = lower_tri.indptr.astype(np.int32)
    hessian.index_ = lower_tri.indices.astype(np.int32)
    hessian.value_ = lower_tri.data.astype(np.float64)
    if h.passHessian(hessian) != highspy.HighsStatus.kOk:
        raise SolverError("HiGHS refused the QP's Hessian", status="invalid_model")
    h.run()
    status = _HIGHS_QP_STATUS.get(h.getModelStatus(), SolveStatus.ERROR)
    ok = status is SolveStatus.OPTIMAL
    sol = h.getSolution()
    x = np.asarray(sol.col_value, dtype=np.float64) if ok else None
    return QuadraticSolution(
        status,
        x,
        float(h.getInfo().objective_function_value) if ok else None,
        np.zeros(0),
        time.perf_counter() - began,
        int(h.getInfo().qp_iteration_count),
        "highs",
        _HIGHS_VERSION,
    )


@dataclass(frozen=True)
class InteriorPointOptions:
    """PIQP settings of :class:`InteriorPointSession`.

    ``eps_abs`` and ``eps_rel`` bound the primal and dual residuals (PIQP's stopping rule, in the
    model's units); ``eps_gap_abs`` and ``eps_gap_rel`` the duality gap. ``max_iter`` interior
    point iterations (each one sparse factorization); tens are typical.
    """

    eps_abs: float = 1e-9
    eps_rel: float = 1e-10
    eps_gap_abs: float = 1e-9
    eps_gap_rel: float = 1e-10
    max_iter: int = 500


@dataclass(frozen=True)
class InteriorPointFailure:
    """Why an interior-point solve stopped short: PIQP's status and its last residuals."""

    status: str
    iterations: int
    primal_residual: float
    dual_residual: float
    duality_gap: float

    def describe(self) -> str:
        """One line: the status and the residuals."""
        return (
            f"status '{self.status}' after {self.iterations} iterations (primal residual "
            f"{self.primal_residual:.3g}, dual residual {self.dual_residual:.3g}, duality gap "
            f"{self.duality_gap:.3g})"
        )


class InteriorPointSession:
    """A convex QP solved by PIQP's sparse interior point method, set up once, re-solved after
    updates of the linear term (an ADMM inner loop).

    Every solve is a function of the current data only: an interior point method starts from
    its own initial point (no warm start), and the Ruiz preconditioner is recomputed on every
    update (``preconditioner_reuse_on_update`` off), so the same data gives the same answer bit
    for bit whatever was solved before, in this process or in a restarted one. One thread.
    Updating ``P`` in place does not keep that (measured: answers differ in the last bits from a
    fresh set-up), so a new ``P`` takes a new session.

    The model's rows (``lower <= A x <= upper``) are split once: rows with one nonzero become
    variable bounds, rows with ``lower == upper`` equalities, the others two-sided inequalities.
    """

    def __init__(self, model: QuadraticModel, options: InteriorPointOptions | None = None) -> None:
        import piqp

        self.options = options or InteriorPointOptions()
        checked = checked_qp(model)
        n = int(checked.q.shape[0])
        a = sp.csr_matrix(checked.a_matrix)
        counts = np.diff(a.indptr)
        x_l, x_u = np.full(n, -np.inf), np.full(n, np.inf)
        single = np.flatnonzero(counts == 1)
        cols = a.indices[a.indptr[single]]
        coefs = a.data[a.indptr[single]]
        usable = coefs != 0.0
        single, cols, coefs = single[usable], cols[usable], coefs[usable]
        lo = np.where(coefs > 0, checked.lower[single], checked.upper[single]) / coefs
        hi = np.where(coefs > 0, checked.upper[single], checked.lower[single]) / coefs
        np.maximum.at(x_l, cols, lo)
        np.minimum.at(x_u, cols, hi)
        if np.any(x_l > x_u):
            k = int(np.flatnonzero(x_l > x_u)[0])
            raise SolverError(
                f"variable {k} has lower bound {float(x_l[k])!r} above its upper bound "
                f"{float(x_u[k])!r}",
                status="infeasible",
            )
        rest = np.ones(a.shape[0], dtype=np.bool_)
        rest[single] = False
        rest &= counts > 0
        equal = rest & (checked.lower == checked.upper)
        inequal = rest & ~equal & (np.isfinite(checked.lower) | np.isfinite(checked.upper))
        self._n = n
        self._solver = piqp.SparseSolver()
        s = self._solver.settings
        s.eps_abs = self.options.eps_abs
        s.eps_rel = self.options.eps_rel
        s.eps_duality_gap_abs = self.options.eps_gap_abs
        s.eps_duality_gap_rel = self.options.eps_gap_rel
        s.max_iter = self.options.max_iter
        s.preconditioner_reuse_on_update = False
        s.num_threads = 1
        s.verbose = False
        try:
            self._solver.setup(
                checked.p_matrix,
                checked.q,
                sp.csc_matrix(a[equal]),
                checked.lower[equal],
                sp.csc_matrix(a[inequal]),
                checked.lower[inequal],
                checked.upper[inequal],
                x_l,
                x_u,
            )
        except Exception as exc:  # the bindings' ValueErrors on bad dimensions or data
            raise SolverError(f"PIQP refused the QP: {exc}", status="invalid_model") from None

    def update_q(self, q: FloatArray) -> None:
        """Replace the linear term."""
        values = np.asarray(q, dtype=np.float64)
        if values.shape != (self._n,) or not np.all(np.isfinite(values)):
            raise SolverError(
                "the QP's new linear term is not finite or has the wrong length",
                status="invalid_model",
            )
        self._solver.update(c=values)

    def solve(self) -> FloatArray | InteriorPointFailure:
        """The optimal point, or why PIQP could not certify one."""
        status = self._solver.solve()
        result = self._solver.result
        info = result.info
        if status.name == "PIQP_SOLVED":
            return np.array(result.x, dtype=np.float64)
        return InteriorPointFailure(
            status.name.removeprefix("PIQP_").lower(),
            int(info.iter),
            float(info.primal_res),
            float(info.dual_res),
            float(info.duality_gap),
        )
