"""Aggregate supply and demand built once; the optimum and all n counterfactuals by price search.

Every closed-form curve's response is a sum of jumps and ramps on its ``r`` axis
(:mod:`pivotal.markets.curves`). Sorting all events of each side once and taking prefix sums of
``alpha``, ``beta``, ``alpha*t``, ``beta*t`` and ``beta*t^2`` gives, at any ``r``, in
``O(log n)``: the side's total quantity ``Q(r) = A + B*r - Bt`` and its total surplus
``Phi(r) = A*r - At + (B*r^2 - 2*r*Bt + Bt2) / 2`` (sums over events with ``t <= r``).

Supply is ``S(p) = Q_S(p)``, demand ``D(p) = Q_D(-p)``. The excess ``S - D`` is nondecreasing in
``p``; the clearing price ``p*`` is the smallest price with ``S(p+) >= D(p+)``, found by bisection
over the sorted breakpoints and linear interpolation inside the last interval (the excess is
linear between breakpoints). Optimal welfare is total surplus at the clearing price,

    W* = Phi_S(p*) + Phi_D(-p*)

(each agent's surplus is the integral of its response, and at ``p*`` supply equals demand), the
Lagrangian dual of ``max sum b - sum c`` s.t. supply = demand, which is tight for these convex
curves. A counterfactual without agent ``k`` subtracts ``k``'s own contributions (computed from
its few events) inside the same search: all n+1 optima cost ``O(n log n)``, vectorized over
agents with NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pivotal.markets.market import Agent

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Side:
    """Sorted events of one side with prefix sums (index k sums the first k events)."""

    t: FloatArray
    cum_a: FloatArray
    cum_at: FloatArray
    cum_b: FloatArray
    cum_bt: FloatArray
    cum_bt2: FloatArray

    @classmethod
    def build(cls, t: FloatArray, alpha: FloatArray, beta: FloatArray) -> Side:
        order = np.argsort(t, kind="stable")
        t, alpha, beta = t[order], alpha[order], beta[order]

        def cum(x: FloatArray) -> FloatArray:
            return np.concatenate([[0.0], np.cumsum(x)])

        return cls(t, cum(alpha), cum(alpha * t), cum(beta), cum(beta * t), cum(beta * t * t))

    def quantity(self, r: FloatArray, right: bool) -> FloatArray:
        """Total quantity at ``r``: right limit (events at ``r`` included) or left limit."""
        k = np.searchsorted(self.t, r, side="right" if right else "left")
        return self.cum_a[k] + self.cum_b[k] * r - self.cum_bt[k]

    def surplus(self, r: FloatArray) -> FloatArray:
        """Total surplus (integral of quantity) at ``r``."""
        k = np.searchsorted(self.t, r, side="right")
        return (
            self.cum_a[k] * r
            - self.cum_at[k]
            + 0.5 * (self.cum_b[k] * r * r - 2.0 * r * self.cum_bt[k] + self.cum_bt2[k])
        )


class AggregateMarket:
    """Aggregate curves of a market with closed-form curves, built once.

    Parameters
    ----------
    agents:
        Producers and buyers; every curve must be closed-form.
    """

    def __init__(self, agents: Sequence[Agent]) -> None:
        ts: list[float] = []
        alphas: list[float] = []
        betas: list[float] = []
        owners: list[int] = []
        for i, agent in enumerate(agents):
            for t, alpha, beta in agent.curve.events():
                ts.append(t)
                alphas.append(alpha)
                betas.append(beta)
                owners.append(i)
        self._setup(
            np.array([a.curve.sign for a in agents], dtype=np.float64),
            np.asarray(ts, dtype=np.float64),
            np.asarray(alphas, dtype=np.float64),
            np.asarray(betas, dtype=np.float64),
            np.asarray(owners, dtype=np.int64),
        )

    @classmethod
    def from_arrays(
        cls,
        sign: FloatArray,
        ev_t: FloatArray,
        ev_a: FloatArray,
        ev_b: FloatArray,
        ev_owner: IntArray,
    ) -> AggregateMarket:
        """Build from flat event arrays (``sign`` per agent: +1 producer, -1 buyer)."""
        self = cls.__new__(cls)
        self._setup(sign, ev_t, ev_a, ev_b, ev_owner)
        return self

    def _setup(
        self,
        sign: FloatArray,
        ev_t: FloatArray,
        ev_a: FloatArray,
        ev_b: FloatArray,
        ev_owner: IntArray,
    ) -> None:
        """Keep the per-agent events and build both sides' prefix sums and the breakpoints."""
        self.n = int(sign.shape[0])
        self.sign, self.ev_t, self.ev_a, self.ev_b, self.ev_owner = sign, ev_t, ev_a, ev_b, ev_owner
        producer_ev = sign[ev_owner] > 0
        self.supply = Side.build(ev_t[producer_ev], ev_a[producer_ev], ev_b[producer_ev])
        self.demand = Side.build(ev_t[~producer_ev], ev_a[~producer_ev], ev_b[~producer_ev])
        prices = np.concatenate([self.supply.t, -self.demand.t])
        self.breakpoints = np.unique(prices) if prices.size else np.zeros(1)

    # -- per-agent pieces -------------------------------------------------------------------
    def _own(self, exclude: IntArray, price: FloatArray, what: str) -> FloatArray:
        """Contribution of agent ``exclude[j]`` at ``price[j]`` (0 where ``exclude[j] < 0``).

        ``what``: ``"q_right"``/``"q_left"`` (its quantity, signed +supply / -demand, as right or
        left limit in price) or ``"surplus"``.
        """
        mask = exclude >= 0
        if not mask.any() or self.ev_t.size == 0:
            return np.zeros(len(exclude))
        slot = np.full(self.n, -1, dtype=np.int64)
        slot[exclude[mask]] = np.flatnonzero(mask)
        ev_slot = slot[self.ev_owner]
        used = ev_slot >= 0
        ev = np.flatnonzero(used)
        j = ev_slot[ev]
        sign = self.sign[self.ev_owner[ev]]
        r = sign * price[j]
        t = self.ev_t[ev]
        d = r - t
        if what == "surplus":
            contrib = np.where(d >= 0, self.ev_a[ev] * d + 0.5 * self.ev_b[ev] * d * d, 0.0)
        else:
            # right limit in price = right limit in r for producers, left limit for buyers
            right_in_r = (sign > 0) == (what == "q_right")
            active = np.where(right_in_r, d >= 0, d > 0)
            contrib = np.where(active, self.ev_a[ev] + self.ev_b[ev] * d, 0.0) * sign
        return np.bincount(j, weights=contrib, minlength=len(exclude)).astype(np.float64)

    def excess(self, price: FloatArray, exclude: IntArray, right: bool) -> FloatArray:
        """``S - D`` at ``price`` without agent ``exclude`` (right or left limit in price)."""
        s = self.supply.quantity(price, right)
        d = self.demand.quantity(-price, not right)
        return s - d - self._own(exclude, price, "q_right" if right else "q_left")

    def clearing_prices(self, exclude: IntArray) -> FloatArray:
        """Smallest clearing price without each agent in ``exclude`` (-1: nobody excluded)."""
        bp = self.breakpoints
        m = len(bp)
        lo = np.full(len(exclude), -1, dtype=np.int64)
        hi = np.full(len(exclude), m - 1, dtype=np.int64)
        while True:
            open_ = hi - lo > 1
            if not open_.any():
                break
            mid = np.where(open_, (lo + hi) // 2, hi)
            ok = self.excess(bp[mid], exclude, right=True) >= 0
            hi = np.where(open_ & ok, mid, hi)
            lo = np.where(open_ & ~ok, mid, lo)
        price = bp[hi].copy()
        inner = hi > 0
        if inner.any():
            left = bp[np.maximum(hi - 1, 0)]
            f_left = self.excess(left, exclude, right=True)
            g_right = self.excess(bp[hi], exclude, right=False)
            crossing = inner & (g_right > 0) & (f_left < 0)
            denom = np.where(crossing, g_right - f_left, 1.0)
            interp = left + (bp[hi] - left) * (-f_left) / denom
            price = np.where(crossing, np.clip(interp, left, bp[hi]), price)
        return price

    def welfare(self, price: FloatArray, exclude: IntArray) -> FloatArray:
        """Optimal welfare at the clearing ``price`` (total surplus), without ``exclude``."""
        total = self.supply.surplus(price) + self.demand.surplus(-price)
        return total - self._own(exclude, price, "surplus")

    def responses(self, price: float) -> tuple[FloatArray, FloatArray]:
        """Every agent's optimal quantity interval ``[lo, hi]`` at ``price``."""
        r = self.sign[self.ev_owner] * price
        d = r - self.ev_t
        base = self.ev_a + self.ev_b * d
        lo = np.bincount(self.ev_owner, np.where(d > 0, base, 0.0), minlength=self.n)
        hi = np.bincount(self.ev_owner, np.where(d >= 0, base, 0.0), minlength=self.n)
        return lo.astype(np.float64), hi.astype(np.float64)


@dataclass(frozen=True)
class MarketSolution:
    """Optimum and counterfactuals as arrays (agent order)."""

    price: float
    welfare: float
    traded: float
    quantities: FloatArray
    values: FloatArray
    welfare_without: FloatArray


def solve_all(agg: AggregateMarket) -> MarketSolution:
    """The optimum, every agent's quantity and value, and all ``W*_{-k}``, vectorized.

    An agent's reported value at its optimal quantity follows from its surplus at ``p*``:
    ``c(y) = p*y - profit(p*)`` and ``b(x) = p*x + surplus(p*)``, i.e. ``p*q - sign*surplus``
    (exact also for an agent rationed at a step, since it is indifferent there).
    """
    none = np.array([-1], dtype=np.int64)
    price = float(agg.clearing_prices(none)[0])
    welfare = float(agg.welfare(np.array([price]), none)[0])
    lo, hi = agg.responses(price)
    q, traded = ration(agg.sign, lo, hi)
    everyone = np.arange(agg.n, dtype=np.int64)
    surplus = agg._own(everyone, np.full(agg.n, price), "surplus")
    values = price * q - agg.sign * surplus
    prices = agg.clearing_prices(everyone)
    w_minus = agg.welfare(prices, everyone)
    return MarketSolution(price, welfare, traded, q, values, w_minus)


def ration(sign: FloatArray, lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, float]:
    """Quantities with supply = demand from response intervals (ties shared proportionally).

    The traded total is the largest that both sides accept, ``min(sum hi_S, sum hi_D)`` clipped
    to at least ``max(sum lo_S, sum lo_D)``; on each side, agents whose interval is not a point
    (indifferent at the price) get the same fraction of their interval.
    """
    producer = sign > 0
    s_lo, s_hi = lo[producer].sum(), hi[producer].sum()
    d_lo, d_hi = lo[~producer].sum(), hi[~producer].sum()
    traded = max(min(s_hi, d_hi), max(s_lo, d_lo))
    q = lo.copy()
    for side, total_lo, total_hi in ((producer, s_lo, s_hi), (~producer, d_lo, d_hi)):
        width = total_hi - total_lo
        frac = 0.0 if width <= 0 else min(max((traded - total_lo) / width, 0.0), 1.0)
        q[side] = lo[side] + frac * (hi[side] - lo[side])
    return q, float(traded)
