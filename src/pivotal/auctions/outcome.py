"""The result of an auction mechanism: allocation, payments, welfare, revenue, utilities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pivotal.auctions.bids import Auction, sorted_bundle
from pivotal.results import Provenance, ResultKind


@dataclass(frozen=True)
class AuctionOutcome:
    """Outcome of an auction mechanism, with provenance.

    Attributes
    ----------
    allocation:
        ``{bidder: items won}`` for winners only, items in the auction's order.
    winning_bids:
        ``{bidder: index of the accepted bid}`` for winners.
    values:
        Reported value of what each bidder wins (0 for losers).
    payments:
        What each bidder pays the seller (every bidder listed, losers 0).
    welfare:
        Total reported value of the allocation.
    revenue:
        Sum of payments.
    utilities:
        ``values - payments`` per bidder (quasi-linear utility at the reports).
    provenance:
        How this was computed.
    """

    allocation: Mapping[str, tuple[str, ...]]
    winning_bids: Mapping[str, int]
    values: Mapping[str, float]
    payments: Mapping[str, float]
    welfare: float
    revenue: float
    utilities: Mapping[str, float]
    provenance: Provenance

    @property
    def kind(self) -> ResultKind:
        """``auction`` (the result contract, :class:`pivotal.results.Outcome`)."""
        return ResultKind.AUCTION

    @property
    def participants(self) -> tuple[str, ...]:
        """Every bidder, in input order."""
        return tuple(self.payments)

    @property
    def transfers(self) -> Mapping[str, float]:
        """Money paid to each bidder: the negative of its payment."""
        return {b: -p for b, p in self.payments.items()}

    @property
    def exact(self) -> bool:
        """False when built from a time-limited solve accepted as approximate."""
        return self.provenance.exact

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dictionary (the CLI's ``--json`` document)."""
        return {
            "mechanism": self.provenance.mechanism,
            "allocation": {b: list(items) for b, items in self.allocation.items()},
            "winning_bids": dict(self.winning_bids),
            "values": dict(self.values),
            "payments": dict(self.payments),
            "welfare": self.welfare,
            "revenue": self.revenue,
            "utilities": dict(self.utilities),
            "exact": self.exact,
            "provenance": self.provenance.to_dict(),
        }


def build_outcome(
    auction: Auction,
    winning_bids: Mapping[str, int],
    payments: Mapping[str, float],
    provenance: Provenance,
) -> AuctionOutcome:
    """Assemble an :class:`AuctionOutcome`; every bidder gets a payment and a utility entry."""
    values = {b: 0.0 for b in auction.bidders}
    allocation: dict[str, tuple[str, ...]] = {}
    for bidder in auction.bidders:
        if bidder in winning_bids:
            bid = auction.bids[winning_bids[bidder]]
            values[bidder] = float(bid.value)
            allocation[bidder] = tuple(sorted_bundle(bid.bundle, auction.items))
    pay = {b: float(payments.get(b, 0.0)) for b in auction.bidders}
    return AuctionOutcome(
        allocation=allocation,
        winning_bids={b: winning_bids[b] for b in auction.bidders if b in winning_bids},
        values=values,
        payments=pay,
        welfare=float(sum(values.values())),
        revenue=float(sum(pay.values())),
        utilities={b: values[b] - pay[b] for b in auction.bidders},
        provenance=provenance,
    )
