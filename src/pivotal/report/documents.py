"""Reading result documents: their kind, checked against the kind's document model, and their
recorded input.

A document names its kind and schema version (``kind``, ``schema_version``); documents written
before both existed (pivotal 0.x, schema 0) are recognized by their keys and read as they are.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from pivotal.auctions.result import AuctionResult
from pivotal.documents import ResultDocument
from pivotal.errors import InputError
from pivotal.markets.result import MarketResult
from pivotal.negotiation.result import NegotiationResult
from pivotal.results import SCHEMA_VERSION, ResultKind

MODELS: dict[ResultKind, type[ResultDocument]] = {
    ResultKind.AUCTION: AuctionResult,
    ResultKind.MARKET: MarketResult,
    ResultKind.NEGOTIATION: NegotiationResult,
}
"""The document model of each kind (their JSON Schemas are in ``docs/schemas/``)."""

_NOT_A_RESULT = (
    "not a pivotal result: expected the JSON of 'pivotal auction run', 'pivotal market run' "
    "or 'pivotal negotiate run' (--json or -o)"
)


def legacy_kind(doc: dict[str, Any]) -> ResultKind | None:
    """The kind of a document written before documents named it, from its keys."""
    if "status_quo_plan" in doc and "plan" in doc:
        return ResultKind.NEGOTIATION
    if "uniform_price" in doc and "quantities" in doc:
        return ResultKind.MARKET
    if "allocation" in doc and "payments" in doc:
        return ResultKind.AUCTION
    return None


def result_kind(doc: Any) -> ResultKind:
    """Which mechanism a result document comes from, after checking it against the kind's
    model.

    Raises
    ------
    InputError
        If the document is not a pivotal result, names an unknown kind or a newer schema, or
        does not match its kind's model (the message names the first bad field).
    """
    if not isinstance(doc, dict):
        raise InputError(_NOT_A_RESULT)
    if "kind" not in doc:
        kind = legacy_kind(doc)
        if kind is None:
            raise InputError(_NOT_A_RESULT)
        return kind
    try:
        kind = ResultKind(doc["kind"])
    except (ValueError, TypeError):
        names = ", ".join(k.value for k in ResultKind)
        raise InputError(
            f"unknown result kind {doc['kind']!r}; this pivotal reads {names} results",
            field="kind",
        ) from None
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
        raise InputError(
            f"this {kind.value} result has schema version {version!r}; this pivotal reads "
            f"versions 1 to {SCHEMA_VERSION} (a newer pivotal wrote it: upgrade)",
            field="schema_version",
        )
    try:
        MODELS[kind].model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise InputError(
            f"not a valid {kind.value} result: {where}: {first['msg']}", field=where
        ) from None
    return kind


def recorded_input(doc: dict[str, Any]) -> dict[str, Any]:
    """The input document recorded in a result."""
    data = doc.get("input")
    if not isinstance(data, dict):
        raise InputError(
            "the result records no input ('input' field); give the input file",
            field="input",
        )
    return data
