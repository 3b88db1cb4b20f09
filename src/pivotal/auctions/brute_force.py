"""Brute-force winner determination: the test oracle, never used by the mechanisms.

Depth-first enumeration over bids in index order, keeping every feasible set of bids (items
disjoint, at most one bid per bidder). Ties are broken towards the lexicographically smallest
tuple of bid indices. Exponential: for small instances (a few dozen bids) only.
"""

from __future__ import annotations

from collections.abc import Collection

from pivotal.auctions.bids import Auction
from pivotal.errors import InputError


def brute_force_wdp(
    auction: Auction, active: Collection[int] | None = None, *, max_nodes: int = 5_000_000
) -> tuple[float, tuple[int, ...]]:
    """Optimal welfare and winning bid indices by exhaustive search.

    Raises
    ------
    InputError
        If the search would visit more than ``max_nodes`` nodes.
    """
    ks = sorted(range(len(auction.bids)) if active is None else active)
    bids = auction.bids
    best_value = 0.0
    best_set: tuple[int, ...] = ()
    nodes = 0

    def visit(
        pos: int,
        used: frozenset[str],
        bidders: frozenset[str],
        value: float,
        chosen: tuple[int, ...],
    ) -> None:
        nonlocal best_value, best_set, nodes
        nodes += 1
        if nodes > max_nodes:
            raise InputError(f"brute force exceeded {max_nodes} nodes; the instance is too large")
        if value > best_value or (value == best_value and chosen < best_set):
            best_value, best_set = value, chosen
        for idx in range(pos, len(ks)):
            k = ks[idx]
            bid = bids[k]
            if bid.bidder in bidders or bid.bundle & used:
                continue
            visit(
                idx + 1, used | bid.bundle, bidders | {bid.bidder}, value + bid.value, chosen + (k,)
            )

    visit(0, frozenset(), frozenset(), 0.0, ())
    return best_value, best_set


def brute_force_vcg(auction: Auction) -> dict[str, float]:
    """Clarke payments by brute force: ``p_i = W*_{-i} - (W* - v_i)`` for every bidder."""
    welfare, chosen = brute_force_wdp(auction)
    won = {auction.bids[k].bidder: auction.bids[k].value for k in chosen}
    payments: dict[str, float] = {}
    for bidder in auction.bidders:
        others = [k for k, b in enumerate(auction.bids) if b.bidder != bidder]
        w_minus, _ = brute_force_wdp(auction, others)
        payments[bidder] = w_minus - (welfare - won.get(bidder, 0.0))
    return payments
