"""Shared result vocabulary: tolerances and provenance recorded on every outcome."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any


@dataclass(frozen=True)
class Tolerances:
    """Tolerances used to compare money and welfare.

    Two amounts ``a`` and ``b`` agree when ``|a - b| <= abs_tol + rel_tol * max(|a|, |b|)``.
    """

    abs_tol: float = 1e-6
    rel_tol: float = 1e-9

    def close(self, a: float, b: float) -> bool:
        """Whether ``a`` and ``b`` agree within these tolerances."""
        return abs(a - b) <= self.abs_tol + self.rel_tol * max(abs(a), abs(b))

    def slack(self, scale: float) -> float:
        """The allowed violation of an inequality whose terms have magnitude ``scale``."""
        return self.abs_tol + self.rel_tol * abs(scale)


def package_version(name: str) -> str:
    """Installed version of a distribution, or ``"unknown"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def canonical_json(data: Any) -> str:
    """Deterministic JSON text (sorted keys, no spaces) used for hashing inputs."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256_of(data: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``data``."""
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Check:
    """One pass/fail certificate of an audit, with a human-readable detail."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Provenance:
    """How a result was computed, so that anyone can recompute and check it.

    Attributes
    ----------
    mechanism:
        Name of the mechanism or payment rule (``"vcg"``, ``"pay-as-bid"``, ...).
    input_sha256:
        Hash of the canonical JSON of the validated input.
    solver, solver_version:
        The solver that produced the numbers (``"highs"``, ``"closed-form"``, ...).
    tolerances:
        The tolerances the result was checked with.
    parameters:
        Mechanism and solver parameters (time limits, orders, seeds, ...), JSON-compatible.
    seconds:
        Wall-clock time of the computation.
    n_solves:
        Number of optimization problems solved.
    exact:
        False when a solve stopped early and the caller accepted an approximate outcome.
    """

    mechanism: str
    input_sha256: str
    solver: str
    solver_version: str
    tolerances: Tolerances
    parameters: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    n_solves: int = 0
    exact: bool = True
    pivotal_version: str = field(default_factory=lambda: package_version("pivotal"))
    python_version: str = field(default_factory=platform.python_version)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dictionary."""
        return asdict(self)
