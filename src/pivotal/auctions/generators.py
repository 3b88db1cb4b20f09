"""Seeded generators of combinatorial auctions that keep bidder identity.

Two schemes of the Combinatorial Auction Test Suite (CATS): Leyton-Brown, Pearson & Shoham,
"Towards a universal test suite for combinatorial auction algorithms", ACM EC 2000, section 4.1
(*regions*: goods are locations on a grid, bundles grow through neighbouring locations) and
section 4.3 (*arbitrary*: complementarity between any two goods given by a random weighted
graph). Both follow the CATS recipe:

1. Each good ``g`` has a common value ``c_g ~ U(1, max_good_value)``.
2. Each bidder draws private values ``p_g = c_g + deviation * max_good_value * U(-1, 1)``
   (floored at 1).
3. Its main bundle starts at a good drawn with probability proportional to ``p_g``; with
   probability ``additional_location`` it adds another good, drawn with probability
   proportional to ``p_h`` times its total link weight to the bundle (grid neighbours for
   regions, random weights for arbitrary), and repeats.
4. A bundle's value is ``sum p_g + |S| ** (1 + additivity)`` (superadditive), rounded to an
   integer as CATS prices are.
5. Substitutable bids: bundles grown the same way from each other good of the main bundle until
   their common value reaches the main bundle's; kept when their value is within
   ``budget_factor`` times the main bid and their common value at least ``resale_factor``
   times the main bundle's, at most ``max_substitutable_bids`` of them, no duplicates.

A bidder's bids are XOR bids; bidders are named, as in CATS files read by pivotal, by their
smallest bid id, so writing a generated auction to CATS and reading it back gives the same
auction. Differences from the original C++ program: prices use the additivity term above (as in
the Python ports, e.g. Gasse et al. 2019), the grid of *regions* is the smallest near-square grid
holding the goods, and bids are generated until exactly ``n_bids`` exist (the last bidder's
substitutable bids are cut).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

from pivotal.auctions.bids import Auction, Bid
from pivotal.errors import InputError


class Distribution(Enum):
    """Bid distributions of the generator."""

    ARBITRARY = "arbitrary"
    """CATS section 4.3: complementarity from a random weighted graph over all goods."""
    REGIONS = "regions"
    """CATS section 4.1: goods on a grid, bundles of neighbouring locations."""


@dataclass(frozen=True)
class GeneratorParameters:
    """Parameters of the CATS-style generators (CATS defaults)."""

    max_good_value: float = 100.0
    deviation: float = 0.5
    additional_location: float = 0.9
    additivity: float = 0.2
    budget_factor: float = 1.5
    resale_factor: float = 0.5
    max_substitutable_bids: int = 5
    remove_neighbor: float = 0.1
    """regions: probability of removing a horizontal/vertical grid link."""
    add_diagonal: float = 0.2
    """regions: probability of adding a diagonal grid link."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dictionary."""
        return asdict(self)


def _grid_weights(
    n: int, params: GeneratorParameters, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    cols = math.ceil(math.sqrt(n))
    w = np.zeros((n, n))

    def link(a: int, b: int) -> None:
        if b < n:
            w[a, b] = w[b, a] = 1.0

    for g in range(n):
        r, c = divmod(g, cols)
        if c + 1 < cols and rng.random() >= params.remove_neighbor:
            link(g, g + 1)
        if rng.random() >= params.remove_neighbor:
            link(g, g + cols)
        if c + 1 < cols and rng.random() < params.add_diagonal:
            link(g, g + cols + 1)
        if c > 0 and rng.random() < params.add_diagonal:
            link(g, g + cols - 1)
        del r
    return w


def _random_weights(n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    w = rng.random((n, n))
    w = np.triu(w, 1)
    return w + w.T


def _grow(
    start: int,
    private: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    rng: np.random.Generator,
    params: GeneratorParameters,
    target_common: float | None = None,
    common: npt.NDArray[np.float64] | None = None,
) -> list[int]:
    bundle = [start]
    link = weights[start].copy()
    while True:
        if target_common is None:
            if rng.random() >= params.additional_location:
                break
        else:
            assert common is not None
            if common[bundle].sum() >= target_common:
                break
        score = link * private
        score[bundle] = 0.0
        total = score.sum()
        if total <= 0:
            break
        nxt = int(rng.choice(len(private), p=score / total))
        bundle.append(nxt)
        link += weights[nxt]
    return sorted(bundle)


def _value(bundle: list[int], private: npt.NDArray[np.float64], additivity: float) -> float:
    return float(round(private[bundle].sum() + len(bundle) ** (1.0 + additivity)))


def generate_auction(
    distribution: Distribution | str,
    n_goods: int,
    n_bids: int,
    rng: np.random.Generator,
    params: GeneratorParameters | None = None,
) -> Auction:
    """Generate an auction with ``n_goods`` items (named ``"0"``...) and exactly ``n_bids`` bids.

    Raises
    ------
    InputError
        For fewer than 2 goods, fewer than 1 bid, or an unknown distribution.
    """
    try:
        dist = Distribution(distribution)
    except ValueError:
        names = ", ".join(d.value for d in Distribution)
        raise InputError(f"unknown distribution '{distribution}'; use one of: {names}") from None
    if n_goods < 2:
        raise InputError(f"the generator needs at least 2 goods, got {n_goods}")
    if n_bids < 1:
        raise InputError(f"the generator needs at least 1 bid, got {n_bids}")
    p = params or GeneratorParameters()
    common = rng.uniform(1.0, p.max_good_value, size=n_goods)
    weights = (
        _grid_weights(n_goods, p, rng)
        if dist is Distribution.REGIONS
        else _random_weights(n_goods, rng)
    )
    items = tuple(str(g) for g in range(n_goods))
    bids: list[Bid] = []
    while len(bids) < n_bids:
        noise = rng.uniform(-1.0, 1.0, size=n_goods)
        private = np.maximum(common + p.deviation * p.max_good_value * noise, 1.0)
        start = int(rng.choice(n_goods, p=private / private.sum()))
        main = _grow(start, private, weights, rng, p)
        main_value = _value(main, private, p.additivity)
        main_common = float(common[main].sum())
        mine: list[list[int]] = [main]
        values = [main_value]
        for other in main:
            if len(mine) > p.max_substitutable_bids:
                break
            if other == start:
                continue
            sub = _grow(other, private, weights, rng, p, main_common, common)
            if sub in mine:
                continue
            value = _value(sub, private, p.additivity)
            if (
                value <= p.budget_factor * main_value
                and common[sub].sum() >= (p.resale_factor * main_common)
                and value > 0
            ):
                mine.append(sub)
                values.append(value)
        room = n_bids - len(bids)
        name = str(len(bids))
        for bundle, value in list(zip(mine, values, strict=True))[:room]:
            bids.append(Bid(name, frozenset(items[g] for g in bundle), value))
    return Auction(items, tuple(bids))
