"""Aggregate supply and demand built once; the optimum and all n counterfactuals by price search.

Every closed-form curve's response is a sum of *pieces* on its ``r`` axis
(:meth:`pivotal.markets.curves.Curve.pieces`; ``r = p`` for producers, ``r = -p`` for buyers):
a jump of ``size`` at ``t0``, or a ramp that rises linearly from 0 at ``t0`` to ``size`` at
``t1``. Each side's pieces are tabulated once at its sorted breakpoints ``T_k``: the quantity
just before and just after ``T_k`` and the surplus (the integral of the quantity) at ``T_k``,
with the slope ``S_k`` of the quantity on ``(T_k, T_k+1)``. At any ``r`` with ``T_k <= r <
T_k+1`` then, in ``O(log n)``,

    Q(r) = Q_k + S_k (r - T_k),        Phi(r) = Phi_k + Q_k (r - T_k) + S_k (r - T_k)^2 / 2,

sums of nonnegative terms. (The earlier form ``Q = A + B r - Bt`` from prefix sums of slopes
and slope-weighted positions cancelled catastrophically for near-linear quadratics: a ramp of
slope ``1/(2b)`` with ``b = 1e-10`` at ``r = 1e6`` made ``B r`` about 5e15 and the quantity was
off by units; issue 20.) The slopes ``S_k`` are prefix sums of ``+slope`` at ramp starts and
``-slope`` at ramp ends: they are summed exactly (:func:`exact_cumsum`), so a steep ramp that
has ended leaves no rounding residue in the slopes after it. A ramp narrower than the spacing of
floating-point numbers at its position (``t0 + width == t0``) is a jump: its quantity is then
set by the balance of supply and demand, not by the (unrepresentable) price inside it.

Supply is ``S(p) = Q_S(p)``, demand ``D(p) = Q_D(-p)``. The excess ``S - D`` is nondecreasing in
``p``; the clearing price ``p*`` is the smallest price with ``S(p+) >= D(p+)``, found by bisection
over the sorted breakpoints and linear interpolation inside the last interval (the excess is
linear between breakpoints). Quantities at an interior crossing are interpolated with the same
fraction as the price, so they balance even where rounding the price moves a steep ramp's
response. Optimal welfare is total surplus at the clearing price,

    W* = Phi_S(p*) + Phi_D(-p*)

(each agent's surplus is the integral of its response, and at ``p*`` supply equals demand), the
Lagrangian dual of ``max sum b - sum c`` s.t. supply = demand, which is tight for these convex
curves; its derivative in ``p`` is the excess, zero at ``p*``, so an ulp of price error does not
show in the welfare. A counterfactual without agent ``k`` subtracts ``k``'s own contributions
(computed from its few pieces in closed form) inside the same search: all n+1 optima cost
``O(n log n)``, vectorized over agents with NumPy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from pivotal.arrays import FloatArray, IntArray
from pivotal.markets.market import Agent, Market
from pivotal.markets.table import CurveTable

_LIMB_BITS = 32


def exact_cumsum(x: FloatArray) -> FloatArray:
    """Prefix sums of ``x`` computed exactly, then rounded.

    Every value is split into 32-bit limbs on a common binary grid; the limbs are summed in
    64-bit integers (exact) and each prefix is rounded back once per limb. A prefix whose terms
    cancel (``+s`` then ``-s``) is therefore exactly the sum of the remaining terms, and a prefix
    of nonnegative remaining parts is correct to a few ulps, however large the cancelled terms.
    """
    values = np.asarray(x, dtype=np.float64)
    out = np.zeros(values.shape[0])
    nonzero = values != 0
    if not nonzero.any():
        return out
    magnitude = np.abs(values)
    _, exponent = np.frexp(magnitude)  # magnitude = m 2^e, m in [0.5, 1): bits e-53 .. e-1
    base = int(exponent[nonzero].min()) - 53
    top = int(exponent[nonzero].max())
    sign = np.sign(values)
    while base < top:
        touched = nonzero & (exponent > base) & (exponent - 53 < base + _LIMB_BITS)
        limb = np.zeros(values.shape[0])
        scaled = np.ldexp(magnitude[touched], -base)  # < 2^(53 + 32): no overflow
        limb[touched] = np.fmod(np.floor(scaled), 2.0**_LIMB_BITS)
        counts = np.cumsum((sign * limb).astype(np.int64))
        out += np.ldexp(counts.astype(np.float64), base)
        base += _LIMB_BITS
    return out


@dataclass(frozen=True)
class Pieces:
    """Jumps (``t1 == t0``) and ramps (``t1 > t0``) of ``size`` quantity, with their owners."""

    t0: FloatArray
    t1: FloatArray
    size: FloatArray
    owner: IntArray

    @property
    def is_ramp(self) -> npt.NDArray[np.bool_]:
        """Ramps (rising over ``[t0, t1]``) as opposed to jumps."""
        return self.t1 > self.t0

    @cached_property
    def slope(self) -> FloatArray:
        """``size / (t1 - t0)`` for ramps (0 for jumps)."""
        width = self.t1 - self.t0
        return np.where(width > 0, self.size / np.where(width > 0, width, 1.0), 0.0)

    def take(self, mask: npt.NDArray[np.bool_] | IntArray) -> Pieces:
        """The pieces where ``mask`` holds (or at the indices ``mask``)."""
        return Pieces(self.t0[mask], self.t1[mask], self.size[mask], self.owner[mask])


def piece_quantity(p: Pieces, r: FloatArray, right: bool | npt.NDArray[np.bool_]) -> FloatArray:
    """Each piece's quantity at ``r`` (one ``r`` per piece): right or left limit (``right`` may
    differ per piece)."""
    d = r - p.t0
    width = p.t1 - p.t0
    ramp = width > 0
    on = np.where(right, d >= 0, d > 0)
    inside = np.where(ramp, np.minimum(d, width) * p.slope, p.size)
    full = np.where(ramp & (d >= width), p.size, inside)
    return np.where(on, full, 0.0)


def piece_surplus(p: Pieces, r: FloatArray) -> FloatArray:
    """Each piece's surplus (integral of its quantity) at ``r``: closed form, no cancellation."""
    d = r - p.t0
    width = p.t1 - p.t0
    ramp = width > 0
    past = np.maximum(r - p.t1, 0.0)
    rising = 0.5 * p.slope * np.minimum(np.maximum(d, 0.0), width) ** 2
    ramp_value = rising + p.size * past
    return np.where(ramp, ramp_value, p.size * np.maximum(d, 0.0))


@dataclass(frozen=True)
class Side:
    """One side's quantity and surplus tabulated at its sorted breakpoints ``t``.

    ``q_left[k]`` / ``q_right[k]``: quantity just before / after ``t[k]``; ``slope[k]``: slope on
    ``(t[k], t[k+1])``; ``surplus[k]``: surplus at ``t[k]``.
    """

    t: FloatArray
    q_left: FloatArray
    q_right: FloatArray
    slope: FloatArray
    surplus: FloatArray

    @classmethod
    def build(cls, pieces: Pieces) -> Side:
        """Tabulate the pieces (all of one side)."""
        ramp = pieces.is_ramp
        slopes = pieces.slope
        pos = np.concatenate([pieces.t0, pieces.t1[ramp]])
        jump = np.concatenate([np.where(ramp, 0.0, pieces.size), np.zeros(int(ramp.sum()))])
        dslope = np.concatenate([np.where(ramp, slopes, 0.0), -slopes[ramp]])
        order = np.argsort(pos, kind="stable")
        pos, jump, dslope = pos[order], jump[order], dslope[order]
        if pos.size == 0:
            empty = np.zeros(0)
            return cls(empty, empty, empty, empty, empty)
        t, first = np.unique(pos, return_index=True)
        last = np.concatenate([first[1:], [pos.size]]) - 1
        jumps = np.add.reduceat(jump, first)
        slope = np.maximum(exact_cumsum(dslope)[last], 0.0)
        gap = np.diff(t)
        rise = jumps[:-1] + slope[:-1] * gap  # quantity gained from just before t[k] to t[k+1]
        q_left = np.concatenate([[0.0], np.cumsum(rise)])
        q_right = q_left + jumps
        area = q_right[:-1] * gap + 0.5 * slope[:-1] * gap * gap
        surplus = np.concatenate([[0.0], np.cumsum(area)])
        return cls(t, q_left, q_right, slope, surplus)

    def quantity(self, r: FloatArray, right: bool) -> FloatArray:
        """Total quantity at ``r``: right limit (breakpoints at ``r`` included) or left limit."""
        if self.t.size == 0:
            return np.zeros(np.shape(r))
        k = np.searchsorted(self.t, r, side="right") - 1
        kk = np.maximum(k, 0)
        d = r - self.t[kk]
        after = self.q_right[kk] + self.slope[kk] * d
        value = after if right else np.where(d > 0, after, self.q_left[kk])
        return np.where(k >= 0, value, 0.0)

    def surplus_at(self, r: FloatArray) -> FloatArray:
        """Total surplus (integral of quantity) at ``r``."""
        if self.t.size == 0:
            return np.zeros(np.shape(r))
        k = np.searchsorted(self.t, r, side="right") - 1
        kk = np.maximum(k, 0)
        d = r - self.t[kk]
        value = self.surplus[kk] + self.q_right[kk] * d + 0.5 * self.slope[kk] * d * d
        return np.where(k >= 0, value, 0.0)


def pieces_from_events(
    ev_t: FloatArray, ev_a: FloatArray, ev_b: FloatArray, owner: IntArray
) -> Pieces:
    """Pieces from the older event form: jumps ``(t, alpha, 0)``, ramps as a start ``(t0, 0,
    +s)`` and an end ``(t1, 0, -s)`` of the same owner (paired in order of position)."""
    jump = ev_b == 0
    starts = np.flatnonzero(ev_b > 0)
    ends = np.flatnonzero(ev_b < 0)
    if starts.size != ends.size:
        raise ValueError("every ramp start needs a ramp end of the same owner")
    starts = starts[np.lexsort((ev_t[starts], owner[starts]))]
    ends = ends[np.lexsort((ev_t[ends], owner[ends]))]
    if np.any(owner[starts] != owner[ends]):
        raise ValueError("every ramp start needs a ramp end of the same owner")
    t0, t1 = ev_t[starts], ev_t[ends]
    size = ev_b[starts] * (t1 - t0)
    return Pieces(
        np.concatenate([ev_t[jump], t0]),
        np.concatenate([ev_t[jump], t1]),
        np.concatenate([ev_a[jump], size]),
        np.concatenate([owner[jump], owner[starts]]).astype(np.int64),
    )


Crossings = tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_], FloatArray]


Excess = Callable[[FloatArray, bool, "IntArray | None"], FloatArray]


def bisect_clearing(
    bp: FloatArray, count: int, excess: Excess, guess: IntArray | None = None
) -> Crossings:
    """``count`` clearing prices over the sorted breakpoints ``bp`` of nondecreasing excesses.

    ``excess(prices, right, rows)`` gives the excesses ``S - D`` of the problems ``rows`` (all
    ``count`` when ``None``) at ``prices`` (right or left limits in price). Each price is the
    first breakpoint where the right excess is ``>= 0`` (the last one if none is), then
    interpolated inside the interval before it when the excess crosses zero there. ``guess``
    (an index into ``bp`` per problem) starts a galloping search from it (1, 2, 4, ... steps,
    then bisection inside the bracket): the same breakpoint as plain bisection, since the excess
    is monotone, in ``O(log distance)`` probes; the counterfactuals without one small agent are
    a few breakpoints away from the market's own price.

    Returns the prices and, for crossings inside an interval, its ends, whether it is such a
    crossing, and the fraction of the interval at the crossing.
    """
    m = len(bp)
    lo = np.full(count, -1, dtype=np.int64)
    hi = np.full(count, m - 1, dtype=np.int64)

    def ok_at(rows: IntArray, index: IntArray) -> npt.NDArray[np.bool_]:
        return excess(bp[index], True, rows) >= 0

    if guess is not None and m > 1:
        rows = np.arange(count, dtype=np.int64)
        g = np.clip(guess, 0, m - 1).astype(np.int64)
        ok = ok_at(rows, g)
        hi = np.where(ok, g, hi)
        lo = np.where(ok, lo, g)
        down = rows[ok & (g > 0)]
        up = rows[~ok & (g < m - 2)]
        step = 1
        while down.size or up.size:
            probe_down = hi[down] - step
            stop = probe_down < 0
            lo[down[stop]] = -1
            down, probe_down = down[~stop], probe_down[~stop]
            probe_up = lo[up] + step
            stop = probe_up >= m - 1
            up, probe_up = up[~stop], probe_up[~stop]  # hi stays m - 1
            both = np.concatenate([down, up])
            result = ok_at(both, np.concatenate([probe_down, probe_up]))
            ok_down, ok_up = result[: down.size], result[down.size :]
            hi[down[ok_down]] = probe_down[ok_down]
            lo[down[~ok_down]] = probe_down[~ok_down]
            hi[up[ok_up]] = probe_up[ok_up]
            lo[up[~ok_up]] = probe_up[~ok_up]
            down, up = down[ok_down], up[~ok_up]
            step *= 2
    while True:
        open_ = np.flatnonzero(hi - lo > 1)
        if not open_.size:
            break
        mid = (lo[open_] + hi[open_]) // 2
        ok = ok_at(open_, mid)
        hi[open_[ok]] = mid[ok]
        lo[open_[~ok]] = mid[~ok]
    price = bp[hi].copy()
    left = bp[np.maximum(hi - 1, 0)]
    frac = np.zeros(count)
    crossing = np.zeros(count, dtype=np.bool_)
    inner = hi > 0
    if inner.any():
        f_left = excess(left, True, None)
        g_right = excess(bp[hi], False, None)
        crossing = inner & (g_right > 0) & (f_left < 0)
        denom = np.where(crossing, g_right - f_left, 1.0)
        frac = np.where(crossing, np.clip(-f_left / denom, 0.0, 1.0), 0.0)
        interp = left + (bp[hi] - left) * frac
        price = np.where(crossing, np.clip(interp, left, bp[hi]), price)
    return price, left, bp[hi], crossing, frac


class AggregateMarket:
    """Aggregate curves of a market with closed-form curves, built once.

    Parameters
    ----------
    agents:
        Producers and buyers; every curve must be closed-form.
    """

    def __init__(self, agents: Sequence[Agent]) -> None:
        table = CurveTable.from_curves([a.name for a in agents], [a.curve for a in agents])
        self._setup_table(table)

    @classmethod
    def from_table(cls, table: CurveTable) -> AggregateMarket:
        """Build from a market's columns (no Python object per agent)."""
        self = cls.__new__(cls)
        self._setup_table(table)
        return self

    def _setup_table(self, table: CurveTable) -> None:
        t0, t1, size, owner = table.pieces()
        self._setup(table.sign, Pieces(t0, t1, size, owner))

    @classmethod
    def from_pieces(cls, sign: FloatArray, pieces: Pieces) -> AggregateMarket:
        """Build from flat piece arrays (``sign`` per agent: +1 producer, -1 buyer)."""
        self = cls.__new__(cls)
        self._setup(sign, pieces)
        return self

    @classmethod
    def from_arrays(
        cls,
        sign: FloatArray,
        ev_t: FloatArray,
        ev_a: FloatArray,
        ev_b: FloatArray,
        ev_owner: IntArray,
    ) -> AggregateMarket:
        """Build from flat event arrays (see :func:`pieces_from_events`)."""
        return cls.from_pieces(sign, pieces_from_events(ev_t, ev_a, ev_b, ev_owner))

    def _setup(self, sign: FloatArray, pieces: Pieces) -> None:
        """Keep the per-agent pieces and tabulate both sides and the breakpoints."""
        self.n = int(sign.shape[0])
        self.sign = sign
        keep = np.flatnonzero(pieces.size > 0)
        if np.any(np.diff(pieces.owner) < 0):  # sorted by owner (stable), as tables give them
            keep = keep[np.argsort(pieces.owner[keep], kind="stable")]
        self.pieces = pieces.take(keep)
        self._piece_start = np.searchsorted(
            self.pieces.owner, np.arange(self.n + 1, dtype=np.int64)
        ).astype(np.int64)
        producer = sign[self.pieces.owner] > 0
        self.supply = Side.build(self.pieces.take(producer))
        self.demand = Side.build(self.pieces.take(~producer))
        prices = np.concatenate([self.supply.t, -self.demand.t])
        self.breakpoints = np.unique(prices) if prices.size else np.zeros(1)

    # -- per-agent pieces -------------------------------------------------------------------
    def _own(self, exclude: IntArray, price: FloatArray, what: str) -> FloatArray:
        """Contribution of agent ``exclude[j]`` at ``price[j]`` (0 where ``exclude[j] < 0``).

        ``what``: ``"q_right"``/``"q_left"`` (its quantity, signed +supply / -demand, as right or
        left limit in price) or ``"surplus"``.
        """
        mask = exclude >= 0
        if not mask.any() or self.pieces.t0.size == 0:
            return np.zeros(len(exclude))
        rows = np.flatnonzero(mask)
        agents = exclude[rows]
        counts = self._piece_start[agents + 1] - self._piece_start[agents]
        j = np.repeat(rows, counts)
        # the pieces of each excluded agent, in order (pieces are sorted by owner)
        offset = np.arange(j.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        idx = np.repeat(self._piece_start[agents], counts) + offset
        p = self.pieces
        mine = Pieces(p.t0[idx], p.t1[idx], p.size[idx], p.owner[idx])
        mine.__dict__["slope"] = p.slope[idx]
        sign = self.sign[mine.owner]
        r = sign * price[j]
        if what == "surplus":
            contrib = piece_surplus(mine, r)
        else:
            # right limit in price = right limit in r for producers, left limit for buyers
            right_in_r = (sign > 0) == (what == "q_right")
            contrib = piece_quantity(mine, r, right_in_r) * sign
        return np.bincount(j, weights=contrib, minlength=len(exclude)).astype(np.float64)

    def excess(self, price: FloatArray, exclude: IntArray, right: bool) -> FloatArray:
        """``S - D`` at ``price`` without agent ``exclude`` (right or left limit in price)."""
        s = self.supply.quantity(price, right)
        d = self.demand.quantity(-price, not right)
        return s - d - self._own(exclude, price, "q_right" if right else "q_left")

    def _crossings(self, exclude: IntArray, guess: IntArray | None = None) -> Crossings:
        """Clearing prices and, for crossings inside an interval, its ends and the fraction."""

        def excess(p: FloatArray, right: bool, rows: IntArray | None) -> FloatArray:
            return self.excess(p, exclude if rows is None else exclude[rows], right)

        return bisect_clearing(self.breakpoints, len(exclude), excess, guess)

    def clearing_prices(self, exclude: IntArray, guess: IntArray | None = None) -> FloatArray:
        """Smallest clearing price without each agent in ``exclude`` (-1: nobody excluded);
        ``guess``: breakpoint indices to start the search from (see :func:`bisect_clearing`)."""
        return self._crossings(exclude, guess)[0]

    def welfare(self, price: FloatArray, exclude: IntArray) -> FloatArray:
        """Optimal welfare at the clearing ``price`` (total surplus), without ``exclude``."""
        total = self.supply.surplus_at(price) + self.demand.surplus_at(-price)
        return total - self._own(exclude, price, "surplus")

    def responses(self, price: float) -> tuple[FloatArray, FloatArray]:
        """Every agent's optimal quantity interval ``[lo, hi]`` at ``price``."""
        r = self.sign[self.pieces.owner] * price
        lo = np.bincount(self.pieces.owner, piece_quantity(self.pieces, r, False), minlength=self.n)
        hi = np.bincount(self.pieces.owner, piece_quantity(self.pieces, r, True), minlength=self.n)
        return lo.astype(np.float64), hi.astype(np.float64)

    def cleared(self) -> tuple[float, FloatArray, float]:
        """The clearing price, every agent's quantity and the traded total.

        At a crossing inside an interval between breakpoints every response is linear in the
        price there, so each agent gets its quantity at the interval's left end plus the
        crossing's fraction of its change over the interval: supply equals demand to rounding
        even where the rounded price sits inside a ramp too steep to evaluate at it. At a
        breakpoint, agents indifferent at the price share by :func:`ration`.
        """
        none = np.array([-1], dtype=np.int64)
        prices, left, right, crossing, frac = self._crossings(none)
        price = float(prices[0])
        if bool(crossing[0]):
            start = self.quantities_at(float(left[0]), right_limit=True)
            end = self.quantities_at(float(right[0]), right_limit=False)
            q = start + float(frac[0]) * (end - start)
            return price, q, float(q[self.sign > 0].sum())
        lo, hi = self.responses(price)
        q, traded = ration(self.sign, lo, hi)
        return price, q, traded

    def quantities_at(self, price: float, *, right_limit: bool) -> FloatArray:
        """Every agent's quantity at ``price`` as a right (or left) limit in price."""
        sign = self.sign[self.pieces.owner]
        r = sign * price
        # right limit in price = right limit in r for producers, left limit for buyers
        q = np.where(
            (sign > 0) == right_limit,
            piece_quantity(self.pieces, r, True),
            piece_quantity(self.pieces, r, False),
        )
        return np.bincount(self.pieces.owner, q, minlength=self.n).astype(np.float64)


def aggregate_of(market: Market) -> AggregateMarket:
    """The market's aggregate curves, built once per market (closed-form curves only)."""
    cache = vars(market)
    if "_aggregate" not in cache:
        cache["_aggregate"] = AggregateMarket.from_table(market.table)
    agg: AggregateMarket = cache["_aggregate"]
    return agg


def _total_excess(m: AggregateMarket, price: FloatArray, right: bool) -> FloatArray:
    """``S - D`` of the whole market ``m`` at ``price`` (right or left limit in price)."""
    return m.supply.quantity(price, right) - m.demand.quantity(-price, not right)


def _side_totals(m: AggregateMarket, price: float) -> tuple[float, float, float, float]:
    """Sums of the agents' response intervals at ``price``: supply low/high, demand low/high
    (low/high as in :meth:`AggregateMarket.responses`: left/right limits on the r axis)."""
    p = np.array([price])
    return (
        float(m.supply.quantity(p, False)[0]),
        float(m.supply.quantity(p, True)[0]),
        float(m.demand.quantity(-p, False)[0]),
        float(m.demand.quantity(-p, True)[0]),
    )


class Replacement:
    """The market with agent ``k``'s report replaced by another curve, cleared in ``O(log n)``
    price probes: the other agents' curves are the market's aggregate minus ``k``'s own pieces
    (tabulated once), plus the replacement's.

    Same rules as :meth:`AggregateMarket.cleared` on the market with the replaced report: the
    smallest clearing price over the breakpoints of the other agents and of the replacement,
    interpolation inside an interval, rationing of indifferent agents at a breakpoint.
    """

    def __init__(self, agg: AggregateMarket, k: int) -> None:
        self.agg = agg
        self.k = k
        mine = agg.pieces.owner == k
        own = agg.pieces.take(mine)
        sign = agg.sign[k : k + 1]
        self.own = AggregateMarket.from_pieces(
            sign, Pieces(own.t0, own.t1, own.size, np.zeros(own.t0.size, dtype=np.int64))
        )
        others = agg.pieces.take(~mine)
        side = agg.sign[others.owner]
        ramp = others.is_ramp
        positions = np.concatenate([others.t0, others.t1[ramp]])
        signs = np.concatenate([side, side[ramp]])
        self.breakpoints = np.unique(positions * signs)  # r = p (producers), -p (buyers)

    def _merged(self, new: AggregateMarket) -> FloatArray:
        """The other agents' breakpoints with the replacement's inserted (one O(n) copy)."""
        bp = self.breakpoints
        if new.pieces.t0.size == 0:
            return bp if bp.size else np.zeros(1)
        extra = new.breakpoints
        if bp.size == 0:
            return extra
        at = np.searchsorted(bp, extra)
        present = (at < bp.size) & (bp[np.minimum(at, bp.size - 1)] == extra)
        extra = extra[~present]
        return np.insert(bp, np.searchsorted(bp, extra), extra)

    def clear(self, new: AggregateMarket) -> tuple[float, float, float]:
        """Clearing price, the replacing agent's quantity and the optimal welfare when agent
        ``k`` reports ``new`` (a market of that one agent)."""
        agg, own = self.agg, self.own

        def excess(p: FloatArray, right: bool, rows: IntArray | None) -> FloatArray:
            return (
                _total_excess(agg, p, right)
                - _total_excess(own, p, right)
                + _total_excess(new, p, right)
            )

        prices, left, right, crossing, frac = bisect_clearing(self._merged(new), 1, excess)
        price = float(prices[0])
        if bool(crossing[0]):
            start = float(new.quantities_at(float(left[0]), right_limit=True)[0])
            end = float(new.quantities_at(float(right[0]), right_limit=False)[0])
            q = start + float(frac[0]) * (end - start)
        else:
            a, b, c = _side_totals(agg, price), _side_totals(own, price), _side_totals(new, price)
            s_lo, s_hi, d_lo, d_hi = (x - y + z for x, y, z in zip(a, b, c, strict=True))
            traded = max(min(s_hi, d_hi), max(s_lo, d_lo))
            lo_k, hi_k = (float(x[0]) for x in new.responses(price))
            total_lo, total_hi = (s_lo, s_hi) if new.sign[0] > 0 else (d_lo, d_hi)
            width = total_hi - total_lo
            share = 0.0 if width <= 0 else min(max((traded - total_lo) / width, 0.0), 1.0)
            q = lo_k + share * (hi_k - lo_k)
        p = np.array([price])
        none = np.array([-1], dtype=np.int64)
        welfare = agg.welfare(p, none) - own.welfare(p, none) + new.welfare(p, none)
        return price, q, float(welfare[0])


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
    price, q, traded = agg.cleared()
    welfare = float(agg.welfare(np.array([price]), none)[0])
    everyone = np.arange(agg.n, dtype=np.int64)
    surplus = agg._own(everyone, np.full(agg.n, price), "surplus")
    values = price * q - agg.sign * surplus
    at = np.searchsorted(agg.breakpoints, price)  # p* or the interval it lies in
    prices = agg.clearing_prices(everyone, guess=np.full(agg.n, at, dtype=np.int64))
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
