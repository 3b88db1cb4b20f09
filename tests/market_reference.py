"""Exact reference for procurement markets (a test oracle): rational arithmetic, no solver.

Every float is a rational number, so a market's optimum can be computed exactly with
:class:`fractions.Fraction`. Optimal welfare is the minimum over the price ``p`` of the convex
dual ``D(p) = sum_j profit_j(p) + sum_i surplus_i(p)`` (each agent's best response value at
``p``; Lagrangian duality, tight for convex costs and concave benefits). ``D`` is piecewise
quadratic with derivative ``S(p) - D(p)`` (supply minus demand), so the minimum is where the
excess changes sign: found by checking every breakpoint of every agent, exactly, and solving
the linear equation inside the interval where it crosses. Quadratic ramps run from ``a`` to
``a + 2 b cap`` exactly (no rounding of the ramp's end). O(n^2); for small markets.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from pivotal.markets import Agent, CurveKind, Market

F = Fraction


def _pieces(agent: Agent) -> list[tuple[Fraction, Fraction, Fraction]]:
    """Price intervals ``(p0, p1, size)`` on which the agent's quantity moves (exact).

    For a producer the quantity rises from 0 at ``p0`` to ``size`` at ``p1`` (a jump when
    ``p0 == p1``); for a buyer it falls from ``size`` at ``p0`` to 0 at ``p1`` (``p0 <= p1``).
    """
    curve = agent.curve
    cap = F(curve.capacity)
    if cap == 0:
        return []
    if curve.kind is CurveKind.LINEAR or (curve.kind is CurveKind.QUADRATIC and curve.b == 0):
        return [(F(curve.a), F(curve.a), cap)]
    if curve.kind is CurveKind.QUADRATIC:
        a, width = F(curve.a), 2 * F(curve.b) * cap
        return [(a, a + width, cap)] if curve.sign > 0 else [(a - width, a, cap)]
    out = []
    for (q0, v0), (q1, v1) in zip(curve.points, curve.points[1:], strict=False):
        slope = (F(v1) - F(v0)) / (F(q1) - F(q0))
        out.append((slope, slope, F(q1) - F(q0)))
    return out


def quantity(agent: Agent, p: Fraction, right: bool) -> Fraction:
    """The agent's quantity at price ``p`` (right or left limit in price)."""
    total = F(0)
    for p0, p1, size in _pieces(agent):
        if agent.curve.sign > 0:
            if p1 > p0 and p0 < p < p1:
                total += size * (p - p0) / (p1 - p0)
            elif p > p1 or (p == p1 and (right or p1 > p0)):
                total += size
        else:
            if p1 > p0 and p0 < p < p1:
                total += size * (p1 - p) / (p1 - p0)
            elif p < p0 or (p == p0 and (not right or p1 > p0)):
                total += size
    return total


def dual_value(agent: Agent, p: Fraction) -> Fraction:
    """The agent's best surplus at price ``p``: profit ``max p y - c(y)`` or ``max b(x) - p x``."""
    total = F(0)
    for p0, p1, size in _pieces(agent):
        if agent.curve.sign > 0:
            if p1 > p0 and p0 < p < p1:
                total += size * (p - p0) ** 2 / (2 * (p1 - p0))
            elif p >= p1:
                total += size * (p - p1) + size * (p1 - p0) / 2
        else:
            if p1 > p0 and p0 < p < p1:
                total += size * (p1 - p) ** 2 / (2 * (p1 - p0))
            elif p <= p0:
                total += size * (p0 - p) + size * (p1 - p0) / 2
    return total


def clearing_price(agents: Sequence[Agent]) -> Fraction:
    """The smallest price with supply >= demand (right limits), exactly."""
    points = sorted({p for a in agents for p0, p1, _ in _pieces(a) for p in (p0, p1)})
    if not points:
        return F(0)

    def excess(p: Fraction, right: bool) -> Fraction:
        sign = {True: 1, False: -1}
        return sum((sign[a.curve.sign > 0] * quantity(a, p, right) for a in agents), start=F(0))

    previous: Fraction | None = None
    for p in points:
        if excess(p, True) >= 0:
            if previous is None:
                return p
            f_left, g_right = excess(previous, True), excess(p, False)
            if f_left < 0 < g_right:
                return previous + (p - previous) * (-f_left) / (g_right - f_left)
            return p
        previous = p
    return points[-1]


def exact_welfare(agents: Sequence[Agent]) -> Fraction:
    """Optimal welfare ``W*`` of the market formed by ``agents`` (either side may be empty)."""
    if not agents:
        return F(0)
    p = clearing_price(agents)
    return sum((dual_value(a, p) for a in agents), start=F(0))


def exact_utilities(market: Market) -> tuple[Fraction, dict[str, Fraction]]:
    """``W*`` and every agent's VCG utility ``W* - W*_{-k}`` (its marginal contribution)."""
    w = exact_welfare(market.agents)
    return w, {a.name: w - exact_welfare(market.without(a.name)) for a in market.agents}
