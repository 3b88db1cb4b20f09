"""Independent references for core-selecting payments (test oracles; no pivotal solver inside).

- :func:`brute_force_core`: every coalition's blocking value by enumerating all feasible
  allocations (sets of bids with disjoint bundles, at most one bid per bidder), the VCG payments
  of a given efficient allocation from those values, and the minimum core revenue by SciPy's
  ``linprog`` over all coalitions' constraints.
- :func:`nearest_point`: the point of ``{G x >= h}`` closest to a given point, as a *least
  distance program* solved through SciPy's Lawson-Hanson NNLS (Lawson & Hanson, "Solving Least
  Squares Problems", 1974, chapter 23: ``min ||x|| s.t. G x >= h`` is ``x = -r[:n] / r[n]`` with
  ``r = E u - f`` for the NNLS solution ``u`` of ``min ||E u - f||``, ``E = [G'; h']``,
  ``f = e_{n+1}``). An active-set method in exact-step arithmetic, independent of OSQP and of
  HiGHS's QP solver.
- :func:`separation_value`: the most blocking coalition's offer at given payments, by SciPy's
  ``milp`` (its own HiGHS build, called through SciPy's interface).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp, nnls

from pivotal.auctions import Auction


@dataclass(frozen=True)
class CoreReference:
    """Brute-force core of one efficient allocation (money in the auction's units)."""

    welfare: float
    winners: tuple[str, ...]
    values: np.ndarray  # winners' winning values
    vcg: np.ndarray  # winners' VCG payments for this allocation
    rows: np.ndarray  # core constraints: rows @ p >= rhs (one per coalition)
    rhs: np.ndarray
    mrc: float  # minimum core revenue


def feasible_allocations(auction: Auction) -> tuple[np.ndarray, np.ndarray]:
    """Bidder bitmask and value of every feasible allocation of positive-value bids."""
    bidder_bit = {b: 1 << i for i, b in enumerate(auction.bidders)}
    bids = [b for b in auction.bids if b.value > 0]
    masks: list[int] = []
    values: list[float] = []

    def visit(pos: int, used: frozenset[str], mask: int, value: float) -> None:
        masks.append(mask)
        values.append(value)
        for k in range(pos, len(bids)):
            bid = bids[k]
            bit = bidder_bit[bid.bidder]
            if mask & bit or bid.bundle & used:
                continue
            visit(k + 1, used | bid.bundle, mask | bit, value + bid.value)

    visit(0, frozenset(), 0, 0.0)
    return np.asarray(masks, dtype=np.int64), np.asarray(values, dtype=np.float64)


def coalition_values(auction: Auction) -> np.ndarray:
    """``W(C)`` for every bitmask ``C`` over ``auction.bidders`` (bit i = bidder i)."""
    masks, values = feasible_allocations(auction)
    n = len(auction.bidders)
    out = np.zeros(1 << n)
    for c in range(1 << n):
        inside = (masks & ~c) == 0
        out[c] = float(values[inside].max())
    return out


def brute_force_core(auction: Auction, allocation: Mapping[str, float]) -> CoreReference:
    """The core of the efficient allocation in which bidder ``b`` wins value ``allocation[b]``.

    Core constraints, one per coalition ``C``: ``sum_{j in W minus C} p_j >= W(C) - sum_{j in W
    and C} v_j`` (Day & Raghavan 2007); VCG payments ``p_j = W(N - j) - (W(N) - v_j)``; the
    minimum core revenue by ``linprog`` with ``p_vcg <= p <= v``.
    """
    bidders = list(auction.bidders)
    n = len(bidders)
    w = coalition_values(auction)
    everyone = (1 << n) - 1
    winners = tuple(b for b in bidders if b in allocation)
    bit = {b: 1 << i for i, b in enumerate(bidders)}
    values = np.array([allocation[b] for b in winners], dtype=np.float64)
    vcg = np.array(
        [w[everyone & ~bit[b]] - (w[everyone] - allocation[b]) for b in winners], dtype=np.float64
    )
    vcg = np.clip(vcg, 0.0, values)
    rows, rhs = [], []
    for c in range(1 << n):
        inside = np.array([bool(c & bit[b]) for b in winners], dtype=np.bool_)
        rows.append((~inside).astype(np.float64))
        rhs.append(w[c] - float(values[inside].sum()))
    a = np.asarray(rows)
    b = np.asarray(rhs)
    welfare = float(w[everyone])
    if not winners:
        return CoreReference(welfare, winners, values, vcg, a, b, 0.0)
    if float(values.sum()) < welfare * (1 - 1e-12):
        # not an efficient allocation: its "core" may be empty
        return CoreReference(welfare, winners, values, vcg, a, b, float("nan"))
    # linprog's tolerances are absolute: solve in units of the largest value
    scale = float(values.max())
    res = linprog(
        np.ones(len(winners)),
        A_ub=-a,
        b_ub=-b / scale,
        bounds=list(zip(vcg / scale, values / scale, strict=True)),
        method="highs-ds",
    )
    assert res.status == 0, res.message
    return CoreReference(welfare, winners, values, vcg, a, b, float(res.fun) * scale)


def least_distance(g: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``argmin ||x|| s.t. g @ x >= h`` by NNLS (Lawson & Hanson's LDP algorithm)."""
    m, n = g.shape
    e = np.vstack([g.T, h.reshape(1, m)])
    f = np.zeros(n + 1)
    f[n] = 1.0
    u, _ = nnls(e, f, maxiter=50 * (m + n + 1))
    r = e @ u - f
    if abs(r[n]) < 1e-14:
        raise ValueError("the least distance program is infeasible")
    return -r[:n] / r[n]


def nearest_point(
    center: np.ndarray,
    rows: np.ndarray,
    rhs: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    total: float,
) -> np.ndarray:
    """``argmin ||p - center||`` s.t. ``rows @ p >= rhs``, ``sum p = total``, ``lower <= p <=
    upper`` (the VCG-nearest point when ``center`` = VCG and ``total`` = MRC).

    Solved in units of the largest bound (the LDP's tolerances are absolute), with every
    constraint relaxed by 1e-12 of that unit: an exactly feasible ``center`` whose rounding
    leaves a violation of an ulp is otherwise read as an infeasible LDP (NNLS residual 0). The
    equality is two inequalities with that band. Repeated coalition rows are merged first
    (keeping the largest right-hand side): with 128 rows of which 16 differ, NNLS stopped at its
    iteration limit and returned a point far outside the constraints (found by hypothesis at
    x1e12), so the result is also checked against every constraint before it is used.
    """
    rows, inverse = np.unique(rows, axis=0, return_inverse=True)
    merged = np.full(len(rows), -np.inf)
    np.maximum.at(merged, inverse.ravel(), rhs)
    rhs = merged
    scale = max(float(np.max(np.abs(upper))), 1e-300)
    n = len(center)
    c = center / scale
    band = 1e-12 * max(1.0, abs(total) / scale)
    ones = np.ones((1, n))
    eye = np.eye(n)
    g = np.vstack([rows, ones, -ones, eye, -eye])
    h = np.concatenate(
        [
            rhs / scale,
            [total / scale - band],
            [-(total / scale + band)],
            lower / scale,
            -upper / scale,
        ]
    )
    x = least_distance(g, h - g @ c - band)
    worst = float(np.min(g @ (c + x) - h))
    if worst < -1e-9:
        raise ValueError(f"the reference LDP returned an infeasible point (violation {-worst:g})")
    return (c + x) * scale


def separation_value(
    auction: Auction, payments: Mapping[str, float], allocation: Mapping[str, float]
) -> float:
    """The most blocking coalition's offer ``max sum_b (v_b - u_bidder(b)) x_b`` over feasible
    allocations, at ``payments`` (``u = v - p`` for winners, 0 for losers), by SciPy's ``milp``.
    """
    bids = list(auction.bids)
    scale = max((b.value for b in bids), default=1.0) or 1.0
    utility = {b: allocation[b] - payments.get(b, 0.0) for b in allocation}
    c = np.array([b.value - utility.get(b.bidder, 0.0) for b in bids]) / scale
    items = {g: i for i, g in enumerate(auction.items)}
    bidders = {b: i for i, b in enumerate(auction.bidders)}
    a = np.zeros((len(items) + len(bidders), len(bids)))
    for k, bid in enumerate(bids):
        for g in bid.bundle:
            a[items[g], k] = 1.0
        a[len(items) + bidders[bid.bidder], k] = 1.0
    res = milp(
        -c,
        constraints=LinearConstraint(a, -np.inf, 1.0),
        integrality=np.ones(len(bids)),
        bounds=Bounds(0.0, 1.0),
        options={"mip_rel_gap": 0.0},
    )
    assert res.status == 0, res.message
    chosen = np.flatnonzero(res.x > 0.5)
    return float(sum(bids[k].value - utility.get(bids[k].bidder, 0.0) for k in chosen))
