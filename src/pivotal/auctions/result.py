"""The auction's result document (:class:`AuctionResult`): the outcome, the comparisons it
offers, and its input.

The comparisons are computed once, at run time, by
:func:`pivotal.auctions.comparison.run_and_document`; this module only describes and assembles
the document, so that reports can read it without importing any solver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pivotal.documents import DocumentModel, ProvenanceDocument, ResultDocument
from pivotal.results import ResultKind, tagged

if TYPE_CHECKING:
    from pivotal.auctions.bids import Auction
    from pivotal.auctions.outcome import AuctionOutcome


class AuctionOutcomeDocument(DocumentModel):
    """An auction outcome (:meth:`AuctionOutcome.to_dict`). ``payments`` are paid **by** the
    bidder (the result contract's transfers are their negatives)."""

    mechanism: str
    allocation: dict[str, list[str]]
    winning_bids: dict[str, int]
    values: dict[str, float]
    payments: dict[str, float]
    welfare: float
    revenue: float
    utilities: dict[str, float]
    exact: bool
    provenance: ProvenanceDocument


class SequentialDocument(DocumentModel):
    """The sequential second-price auction (one item at a time, in ``order``)."""

    mechanism: str
    order: list[str]
    sales: list[dict[str, Any]]
    allocation: dict[str, list[str]]
    values: dict[str, float]
    payments: dict[str, float]
    welfare: float
    revenue: float
    utilities: dict[str, float]
    provenance: ProvenanceDocument


class BlockingDocument(DocumentModel):
    """The coalition that blocks VCG (its members and what they offer the seller)."""

    bidders: list[str]
    offer: float


class PolytopeDocument(DocumentModel):
    """The core of a two-winner auction: payments ``(p1, p2)`` with ``lower <= p <= upper``
    and ``p1 + p2 >= joint_rhs`` (the losers' best welfare)."""

    winners: list[str]
    lower: list[float]
    upper: list[float]
    joint_rhs: float
    vcg: list[float]
    core: list[float]
    vcg_in_core: bool


class AuctionComparison(DocumentModel):
    """What the auction's outcome is compared with (computed at run time).

    ``vcg``, ``core``, ``vcg_in_core`` and ``blocking`` are null when the run skipped the core
    comparison; ``polytope`` is null unless VCG has exactly two winners."""

    sequential_second_price: SequentialDocument
    vcg: AuctionOutcomeDocument | None = None
    core: AuctionOutcomeDocument | None = None
    vcg_in_core: bool | None = None
    blocking: BlockingDocument | None = None
    polytope: PolytopeDocument | None = None


class AuctionResult(ResultDocument, AuctionOutcomeDocument):
    """The document of ``pivotal auction run`` (``--json`` / ``-o``)."""

    comparison: AuctionComparison
    input: dict[str, Any] | None = None


def auction_result(
    auction: Auction,
    outcome: AuctionOutcome,
    comparison: dict[str, Any],
) -> dict[str, Any]:
    """The result document of ``outcome`` (see :class:`AuctionResult`)."""
    return tagged(
        ResultKind.AUCTION,
        {**outcome.to_dict(), "comparison": comparison, "input": auction.to_dict()},
    )


__all__ = [
    "AuctionComparison",
    "AuctionOutcomeDocument",
    "AuctionResult",
    "auction_result",
]
