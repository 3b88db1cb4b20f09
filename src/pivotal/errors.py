"""One exception hierarchy for pivotal.

Every error raised on purpose by pivotal derives from :class:`PivotalError`, and each subclass
also derives from the matching builtin so that callers who only know ``ValueError`` or
``RuntimeError`` still catch it. Messages say what is wrong and how to fix it; structured fields
carry the details for programs.
"""

from __future__ import annotations


class PivotalError(Exception):
    """Base class of every error pivotal raises on purpose."""


class InputError(PivotalError, ValueError):
    """An input (file, JSON document, Python object) is malformed or inconsistent.

    Parameters
    ----------
    message:
        One line naming the problem and the fix.
    field:
        Where the problem is (``"bids[3].bundle"``, ``"producers[0].capacity"``), if known.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidBidError(InputError):
    """A bid names an unknown item, has a bad value, an empty or duplicate bundle."""


class InvalidCurveError(InputError):
    """A cost or benefit curve is malformed, non-convex (costs) or non-concave (benefits)."""


class InputFileError(InputError, OSError):
    """A file cannot be read or parsed (missing file, malformed JSON/CSV/CATS text)."""

    def __init__(self, message: str, *, path: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.path = path


class SolverError(PivotalError, RuntimeError):
    """A solver failed or returned a status that does not prove optimality."""

    def __init__(self, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class SolveTimeLimitError(SolverError):
    """A time limit stopped a solve before optimality was proven.

    Raised under the exactness policy (DESIGN.md section 1) unless the caller asked for an
    approximate outcome. ``incumbent`` and ``bound`` give the best known objective value and the
    solver's proven bound, when the solver had them.
    """

    def __init__(
        self,
        message: str,
        *,
        incumbent: float | None = None,
        bound: float | None = None,
    ) -> None:
        super().__init__(message, status="time_limit")
        self.incumbent = incumbent
        self.bound = bound


class InfeasibleError(SolverError):
    """The model has no feasible solution (for example capacities that cannot meet demand)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status="infeasible")


class ConvergenceError(PivotalError, RuntimeError):
    """An iterative algorithm stopped before its stopping criterion was met (``field``: the
    parameter whose limit stopped it, e.g. ``"max_rounds"``, if known)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ServiceError(PivotalError, RuntimeError):
    """A networked service could not be reached or refused a request (not bad input)."""


class StateError(PivotalError, RuntimeError):
    """A well-formed request that the current state does not allow: an answer for a round that
    is not the current one, an outcome before the end, a submission after a call's deadline.
    Services answer HTTP 409; the command line exits with code 4."""


class AuthError(PivotalError, PermissionError):
    """A missing or unknown credential (``status`` 401) or a credential without the right to
    what it asks for (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class StoreError(PivotalError, RuntimeError):
    """A database or stored record is damaged, or belongs to something else: named in one line
    (the command line exits with code 2, like bad input), never a traceback."""


class UnsafeStepError(InputError):
    """An answer would take a computation to a non-finite value or a zero penalty (the step is
    refused, the state is unchanged, and the answer can be corrected and sent again)."""
