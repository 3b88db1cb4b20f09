"""Sequential second-price auctions: the market that VCG is compared with.

Items are sold one at a time in a given order. For each item every bidder bids its marginal
value given what it already holds, ``v_i(S_i ∪ {g}) - v_i(S_i)`` (myopic, truthful per item: the
VCG tutorial's rule), with ``v_i`` the XOR valuation of :mod:`pivotal.auctions.bids`. The highest
positive bid wins and pays the second-highest bid (0 if it is the only positive bid); ties go to
the bidder listed first. An item with no positive bid stays unsold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from pivotal.auctions.bids import Auction, sorted_bundle
from pivotal.errors import InputError
from pivotal.results import Provenance, Tolerances


@dataclass(frozen=True)
class SequentialSale:
    """The sale of one item: its bids, the winner (if any) and the price."""

    item: str
    bids: dict[str, float]
    winner: str | None
    price: float


@dataclass(frozen=True)
class SequentialOutcome:
    """Result of a sequential second-price auction.

    ``welfare`` is the true (reported) value of the final holdings, ``sum_i v_i(S_i)``.
    """

    order: tuple[str, ...]
    sales: tuple[SequentialSale, ...]
    allocation: dict[str, tuple[str, ...]]
    values: dict[str, float]
    payments: dict[str, float]
    welfare: float
    revenue: float
    utilities: dict[str, float]
    provenance: Provenance

    def to_dict(self) -> dict[str, object]:
        """JSON-compatible dictionary."""
        return {
            "mechanism": "sequential-second-price",
            "order": list(self.order),
            "sales": [
                {"item": s.item, "bids": s.bids, "winner": s.winner, "price": s.price}
                for s in self.sales
            ],
            "allocation": {b: list(v) for b, v in self.allocation.items()},
            "values": self.values,
            "payments": self.payments,
            "welfare": self.welfare,
            "revenue": self.revenue,
            "utilities": self.utilities,
            "provenance": self.provenance.to_dict(),
        }


def parse_order(auction: Auction, order: Sequence[str] | None) -> tuple[str, ...]:
    """Check that ``order`` is a permutation of the items (default: the auction's order)."""
    if order is None:
        return auction.items
    order = tuple(order)
    unknown = [g for g in order if g not in auction.items]
    if unknown:
        raise InputError(
            f"the sale order names item '{unknown[0]}', which is not in the auction's items "
            f"{list(auction.items)}",
            field="order",
        )
    if sorted(order) != sorted(auction.items):
        raise InputError(
            f"the sale order {list(order)} must list every item exactly once "
            f"({list(auction.items)})",
            field="order",
        )
    return order


def sequential_second_price(
    auction: Auction,
    order: Sequence[str] | None = None,
    *,
    tolerances: Tolerances | None = None,
) -> SequentialOutcome:
    """Sell the items one at a time by second-price auctions with marginal-value bids."""
    start = time.perf_counter()
    sale_order = parse_order(auction, order)
    held: dict[str, set[str]] = {b: set() for b in auction.bidders}
    paid = {b: 0.0 for b in auction.bidders}
    sales: list[SequentialSale] = []
    for item in sale_order:
        bids: dict[str, float] = {}
        for bidder in auction.bidders:
            base = auction.value(bidder, held[bidder])
            marginal = auction.value(bidder, held[bidder] | {item}) - base
            bids[bidder] = max(0.0, marginal)
        ranked = sorted(
            (b for b in auction.bidders if bids[b] > 0),
            key=lambda b: -bids[b],
        )  # stable: ties keep bidder order
        if not ranked:
            sales.append(SequentialSale(item, bids, None, 0.0))
            continue
        winner = ranked[0]
        price = bids[ranked[1]] if len(ranked) > 1 else 0.0
        held[winner].add(item)
        paid[winner] += price
        sales.append(SequentialSale(item, bids, winner, price))
    values = {b: auction.value(b, held[b]) for b in auction.bidders}
    allocation = {
        b: tuple(sorted_bundle(held[b], auction.items)) for b in auction.bidders if held[b]
    }
    provenance = Provenance(
        mechanism="sequential-second-price",
        input_sha256=auction.sha256,
        solver="none",
        solver_version="",
        tolerances=tolerances or Tolerances(),
        parameters={"order": list(sale_order)},
        seconds=time.perf_counter() - start,
    )
    return SequentialOutcome(
        order=sale_order,
        sales=tuple(sales),
        allocation=allocation,
        values=values,
        payments=paid,
        welfare=float(sum(values.values())),
        revenue=float(sum(paid.values())),
        utilities={b: values[b] - paid[b] for b in auction.bidders},
        provenance=provenance,
    )
