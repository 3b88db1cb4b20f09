"""The pydantic models shared by every result document (see :mod:`pivotal.results` for the
contract): the base model, the provenance and source blocks, and the fields every document
starts with. Each mechanism's ``result`` module extends :class:`ResultDocument`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pivotal.results import SCHEMA_VERSION, ResultKind


class DocumentModel(BaseModel):
    """Base of the document models: unknown fields are refused, instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TolerancesDocument(DocumentModel):
    """:class:`Tolerances` in a document."""

    abs_tol: float
    rel_tol: float


class ProvenanceDocument(DocumentModel):
    """:class:`Provenance` in a document."""

    mechanism: str
    input_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    solver: str
    solver_version: str
    tolerances: TolerancesDocument
    parameters: dict[str, Any]
    seconds: float
    n_solves: int
    exact: bool
    pivotal_version: str
    python_version: str


class SourceDocument(DocumentModel):
    """Where a result's input came from and when it was computed (set by the CLI)."""

    input: str
    computed: str


class ResultDocument(DocumentModel):
    """Fields every result document starts with. Each mechanism's document model
    (``pivotal.<mechanism>.result``) extends it; ``kind`` and ``schema_version`` come first."""

    kind: ResultKind
    schema_version: int = Field(ge=1, le=SCHEMA_VERSION)
    provenance: ProvenanceDocument
    source: SourceDocument | None = None
