"""The result contract shared by every mechanism.

* :class:`Tolerances` and :class:`Provenance`: how a result was computed (the input's SHA-256 is
  set when the outcome is constructed, never patched in later);
* :class:`Outcome`: what every mechanism's outcome offers (its kind, its participants, each
  participant's transfer and utility under one sign convention);
* :data:`SCHEMA_VERSION`, :class:`ResultKind` and :func:`tagged`: the kind-tagged, versioned
  JSON document a run writes (``--json`` / ``-o``), which reports and ``pivotal verify`` read.
  Its pydantic models are in :mod:`pivotal.documents` (kept apart so that the command line
  starts without pydantic); each mechanism package owns a ``result`` module with its document
  model and builder, and their JSON Schemas are published in ``docs/schemas/``.

Sign convention
---------------
``transfers[p]`` is money **paid to** participant ``p`` (negative when ``p`` pays), and
``utilities[p]`` is ``p``'s quasi-linear utility at its report (value plus transfer, or cost
saving plus transfer). An auction's ``payments`` (paid by the bidder) are ``-transfers``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from importlib import metadata
from typing import Any, Protocol, runtime_checkable

SCHEMA_VERSION = 1
"""Version of the result documents; bumped when a field changes meaning or is removed."""


class ResultKind(StrEnum):
    """The mechanism a result comes from (the document's ``kind``)."""

    AUCTION = "auction"
    MARKET = "market"
    NEGOTIATION = "negotiation"


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


@functools.cache
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


_SHA256 = re.compile(r"[0-9a-f]{64}")


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

    def __post_init__(self) -> None:
        if not _SHA256.fullmatch(self.input_sha256):
            raise ValueError(
                f"provenance needs the input's SHA-256 (64 hex digits), got {self.input_sha256!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dictionary."""
        return asdict(self)


@runtime_checkable
class Outcome(Protocol):
    """What every mechanism's outcome offers, whatever the mechanism (see the sign convention
    in the module docstring)."""

    @property
    def kind(self) -> ResultKind:
        """The mechanism family."""
        ...

    @property
    def provenance(self) -> Provenance:
        """How the outcome was computed (input hash always set)."""
        ...

    @property
    def participants(self) -> tuple[str, ...]:
        """Every participant, in input order."""
        ...

    @property
    def transfers(self) -> Mapping[str, float]:
        """Money paid to each participant (negative: the participant pays)."""
        ...

    @property
    def utilities(self) -> Mapping[str, float]:
        """Each participant's utility at its report."""
        ...


def tagged(kind: ResultKind, body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` as a result document of ``kind``: ``kind`` and ``schema_version`` first."""
    return {"kind": kind.value, "schema_version": SCHEMA_VERSION, **body}
