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
from pivotal.results import Provenance, Tolerances

__all__ = [
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
