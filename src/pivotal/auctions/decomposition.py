"""Independent components of a winner determination problem.

Two bids are linked when they share an item (they cannot both win) or a bidder (XOR). The
connected components of this graph are independent WDPs: the optimum is the sum of the
components' optima, and removing a bidder changes only its own component. So the main solve runs
per component and a winner's counterfactual re-solves only its component:

    W*_{-i} = W* - W*_c + W*_{c,-i}    for the component c of bidder i.
"""

from __future__ import annotations

from dataclasses import dataclass

from pivotal.auctions.bids import Auction


@dataclass(frozen=True)
class Component:
    """One independent part of an auction.

    ``bids`` are indices into the full auction's bids (increasing); ``auction`` is the
    sub-auction holding exactly those bids (bid ``j`` of it is ``bids[j]`` of the full auction)
    and the items they name.
    """

    bids: tuple[int, ...]
    auction: Auction


def components(auction: Auction) -> list[Component]:
    """Connected components of bids linked by a shared item or a shared bidder.

    Components are ordered by their smallest bid index; bids keep their relative order.
    """
    n = len(auction.bids)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first_by_item: dict[str, int] = {}
    first_by_bidder: dict[str, int] = {}
    for k, bid in enumerate(auction.bids):
        for item in bid.bundle:
            if item in first_by_item:
                union(k, first_by_item[item])
            else:
                first_by_item[item] = k
        if bid.bidder in first_by_bidder:
            union(k, first_by_bidder[bid.bidder])
        else:
            first_by_bidder[bid.bidder] = k
    groups: dict[int, list[int]] = {}
    for k in range(n):
        groups.setdefault(find(k), []).append(k)
    result = []
    for root in sorted(groups):
        ks = tuple(groups[root])
        used = {item for k in ks for item in auction.bids[k].bundle}
        items = tuple(item for item in auction.items if item in used)
        result.append(Component(ks, Auction(items, tuple(auction.bids[k] for k in ks))))
    return result
