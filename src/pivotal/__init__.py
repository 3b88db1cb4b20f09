"""pivotal: truthful, efficient and private allocation with VCG mechanisms."""

from pivotal.errors import (
    ConvergenceError,
    InfeasibleError,
    InputError,
    InputFileError,
    InvalidBidError,
    InvalidCurveError,
    PivotalError,
    SolverError,
    SolveTimeLimitError,
)
from pivotal.results import Check, Provenance, Tolerances

__all__ = [
    "Check",
    "ConvergenceError",
    "InfeasibleError",
    "InputError",
    "InputFileError",
    "InvalidBidError",
    "InvalidCurveError",
    "PivotalError",
    "Provenance",
    "SolveTimeLimitError",
    "SolverError",
    "Tolerances",
]
