"""Bids and auctions: the validated, immutable input of every auction mechanism.

A bidder reports XOR bids (Nisan 2000): a value for each bundle it names, and it wins at most one
of them. The value a bidder's reports give to an arbitrary set of items ``S`` is that of the best
named bundle inside ``S``,

    v_i(S) = max { v_b : b is a bid of i, bundle(b) ⊆ S }   (0 if there is none).

For winner determination this is the same as valuing only named bundles (the seller can always
leave items unsold); it matters for the sequential auction and for scoring misreports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pivotal.errors import InvalidBidError
from pivotal.results import sha256_of

MAX_VALUE_RATIO = 1e9
"""Largest accepted ratio between the largest and the smallest positive bid value.

Winner determination solves values scaled to about 1 with feasibility tolerances of 1e-10, the
smallest HiGHS accepts; on random auctions whose values span up to 1e10 it never lost welfare,
from 1e12 on it did (7 of 300). A bid 1e9 times smaller than the largest is therefore still told
apart from 0 with a margin; a wider span is refused rather than solved wrongly.
"""
MAX_VALUE = 1e200
"""Largest accepted bid value (sums of many bids must stay finite)."""
MIN_POSITIVE_VALUE = 1e-200
"""Smallest accepted positive bid value (no subnormal numbers; 0 is accepted)."""


@dataclass(frozen=True)
class Bid:
    """One XOR bid: ``bidder`` values ``bundle`` at ``value`` (>= 0)."""

    bidder: str
    bundle: frozenset[str]
    value: float


@dataclass(frozen=True)
class Auction:
    """A combinatorial auction: items and XOR bids, validated on construction.

    Bids keep their input order, which is the canonical order for the solver (and so for
    deterministic tie-breaking). Bidders are listed in order of first appearance; ``extra_bidders``
    lists bidders without bids (they take part, win nothing and pay nothing).

    Raises
    ------
    InvalidBidError
        On an unknown item, an empty bundle, a negative or non-finite value, a value outside
        ``[MIN_POSITIVE_VALUE, MAX_VALUE]`` (0 aside), positive values spanning more than
        ``MAX_VALUE_RATIO``, a duplicate bundle for one bidder, a duplicate item or an empty
        bidder name.
    """

    items: tuple[str, ...]
    bids: tuple[Bid, ...]
    extra_bidders: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        seen_items: set[str] = set()
        for i, item in enumerate(self.items):
            if not isinstance(item, str) or item == "":
                raise InvalidBidError(f"items[{i}] must be a non-empty string", field=f"items[{i}]")
            if item in seen_items:
                raise InvalidBidError(
                    f"item '{item}' is listed twice in items", field=f"items[{i}]"
                )
            seen_items.add(item)
        seen_bundles: set[tuple[str, frozenset[str]]] = set()
        for k, bid in enumerate(self.bids):
            where = f"bids[{k}]"
            if not isinstance(bid.bidder, str) or bid.bidder == "":
                raise InvalidBidError(
                    f"{where}: bidder must be a non-empty string", field=f"{where}.bidder"
                )
            if not bid.bundle:
                raise InvalidBidError(
                    f"{where} (bidder '{bid.bidder}') has an empty bundle; name at least one item",
                    field=f"{where}.bundle",
                )
            unknown = sorted(bid.bundle - seen_items)
            if unknown:
                raise InvalidBidError(
                    f"{where} (bidder '{bid.bidder}') names item '{unknown[0]}', which is not in "
                    f"the auction's items {list(self.items)}",
                    field=f"{where}.bundle",
                )
            value = bid.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidBidError(
                    f"{where} (bidder '{bid.bidder}') has a non-numeric value {value!r}",
                    field=f"{where}.value",
                )
            if not math.isfinite(value):
                raise InvalidBidError(
                    f"{where} (bidder '{bid.bidder}') has a non-finite value {value}",
                    field=f"{where}.value",
                )
            if value < 0:
                raise InvalidBidError(
                    f"{where} (bidder '{bid.bidder}') has a negative value {value}; "
                    "values must be >= 0",
                    field=f"{where}.value",
                )
            if value > MAX_VALUE or 0 < value < MIN_POSITIVE_VALUE:
                raise InvalidBidError(
                    f"{where} (bidder '{bid.bidder}') has value {value:g}, outside the accepted "
                    f"range 0 or [{MIN_POSITIVE_VALUE:g}, {MAX_VALUE:g}]; express the values in "
                    "another unit",
                    field=f"{where}.value",
                )
            key = (bid.bidder, bid.bundle)
            if key in seen_bundles:
                raise InvalidBidError(
                    f"{where}: bidder '{bid.bidder}' bids twice on bundle "
                    f"{format_bundle(bid.bundle, self.items)}; keep one value per bundle",
                    field=f"{where}.bundle",
                )
            seen_bundles.add(key)
        self._check_value_range()

    def _check_value_range(self) -> None:
        """Refuse values spanning more than the solvers separate (:data:`MAX_VALUE_RATIO`)."""
        positive = [(bid.value, k) for k, bid in enumerate(self.bids) if bid.value > 0]
        if not positive:
            return
        largest, k_max = max(positive)
        smallest, k_min = min(positive)
        if largest > MAX_VALUE_RATIO * smallest:
            raise InvalidBidError(
                f"bid values span a ratio of {largest / smallest:.3g} (bids[{k_max}] of bidder "
                f"'{self.bids[k_max].bidder}' is {largest:g}, bids[{k_min}] of bidder "
                f"'{self.bids[k_min].bidder}' is {smallest:g}), more than the {MAX_VALUE_RATIO:g} "
                "that winner determination can tell apart; drop or set to 0 the bids below "
                f"{largest / MAX_VALUE_RATIO:g}",
                field=f"bids[{k_min}].value",
            )

    @classmethod
    def from_bids(
        cls,
        items: Sequence[str],
        bids: Iterable[tuple[str, Iterable[str], float]],
        *,
        extra_bidders: Sequence[str] = (),
    ) -> Auction:
        """Build an auction from ``(bidder, bundle, value)`` triples."""
        return cls(
            tuple(items),
            tuple(Bid(str(b), frozenset(bundle), v) for b, bundle, v in bids),
            tuple(extra_bidders),
        )

    @classmethod
    def from_valuations(
        cls, items: Sequence[str], valuations: Mapping[str, Mapping[str, float]]
    ) -> Auction:
        """Build an auction from a valuation table ``{bidder: {"A+B": value, ...}}``.

        Bundles are written as item names joined by ``+``. Every named bundle becomes an XOR bid;
        a full table (a value for each of the ``2^m - 1`` bundles) is the tutorial's format.
        """
        triples: list[tuple[str, Iterable[str], float]] = []
        for bidder, row in valuations.items():
            for label, value in row.items():
                triples.append((bidder, parse_bundle_label(label), value))
        return cls.from_bids(items, triples)

    @cached_property
    def bidders(self) -> tuple[str, ...]:
        """Bidders in order of first appearance, then bidders without bids."""
        seen: dict[str, None] = {}
        for bid in self.bids:
            seen.setdefault(bid.bidder, None)
        for name in self.extra_bidders:
            seen.setdefault(name, None)
        return tuple(seen)

    @cached_property
    def bids_of(self) -> Mapping[str, tuple[int, ...]]:
        """Indices of each bidder's bids."""
        out: dict[str, list[int]] = {name: [] for name in self.bidders}
        for k, bid in enumerate(self.bids):
            out[bid.bidder].append(k)
        return {name: tuple(ks) for name, ks in out.items()}

    def value(self, bidder: str, items: Iterable[str]) -> float:
        """``v_i(S)``: the bidder's best named bundle inside ``items`` (0 if none)."""
        held = frozenset(items)
        best = 0.0
        for k in self.bids_of.get(bidder, ()):
            bid = self.bids[k]
            if bid.bundle <= held and bid.value > best:
                best = bid.value
        return best

    def without(self, bidder: str) -> Auction:
        """The same auction with every bid of ``bidder`` removed."""
        return Auction(self.items, tuple(b for b in self.bids if b.bidder != bidder))

    def replace_bids(self, bidder: str, bids: Iterable[tuple[Iterable[str], float]]) -> Auction:
        """The same auction with ``bidder``'s bids replaced by ``(bundle, value)`` pairs."""
        others = [b for b in self.bids if b.bidder != bidder]
        mine = [Bid(bidder, frozenset(bundle), float(v)) for bundle, v in bids]
        extra = () if mine or bidder not in self.bidders else (bidder,)
        return Auction(self.items, tuple(others + mine), self.extra_bidders + extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON input format: ``{"items": [...], "bids": [{bidder, bundle, value}]}``."""
        return {
            "items": list(self.items),
            "bids": [
                {
                    "bidder": b.bidder,
                    "bundle": sorted_bundle(b.bundle, self.items),
                    "value": b.value,
                }
                for b in self.bids
            ],
        }

    @cached_property
    def sha256(self) -> str:
        """Hash of the canonical JSON form (same auction from JSON, CSV or CATS: same hash)."""
        return sha256_of(self.to_dict())


def sorted_bundle(bundle: Iterable[str], items: Sequence[str]) -> list[str]:
    """Items of ``bundle`` in the auction's item order."""
    order = {item: i for i, item in enumerate(items)}
    return sorted(bundle, key=lambda it: order.get(it, len(order)))


def format_bundle(bundle: Iterable[str], items: Sequence[str]) -> str:
    """``{A, B}`` written in item order."""
    return "{" + ", ".join(sorted_bundle(bundle, items)) + "}"


def parse_bundle_label(label: str) -> list[str]:
    """Split a bundle label such as ``"A+B"`` into its items."""
    parts = [p.strip() for p in str(label).split("+")]
    if any(p == "" for p in parts):
        raise InvalidBidError(
            f"bundle label '{label}' is malformed; write items joined by '+', like 'A+B'",
            field=str(label),
        )
    return parts
