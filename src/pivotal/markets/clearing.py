"""Market clearing: the welfare-maximizing quantities with supply equal to demand, and ``p*``.

``max sum_i b_i(x_i) - sum_j c_j(y_j)`` s.t. ``sum x = sum y``, ``0 <= x_i, y_j <= capacity``.
The clearing price ``p*`` is the multiplier of the balance constraint; every agent best-responds
to it. Where a range of prices clears (for example when nothing trades, or at a step), ``p*`` is
the *smallest* clearing price. Where agents are indifferent at ``p*`` (a step at exactly ``p*``),
the largest traded total both sides accept is chosen and each side's indifferent agents get the
same fraction of their step (deterministic and symmetric; welfare and VCG utilities do not
depend on this choice).

Two paths: closed-form curves use :class:`~pivotal.markets.aggregate.AggregateMarket`
(``O(n log n)`` for the optimum and all counterfactuals); any ``marginal`` (callable) curve
switches to a generic bisection on the price, ``O(n)`` per evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pivotal.markets.aggregate import AggregateMarket, ration
from pivotal.markets.market import Agent


@dataclass(frozen=True)
class Clearing:
    """The optimum of a market: price, quantities (by agent name), traded total and welfare."""

    price: float
    quantities: dict[str, float]
    traded: float
    welfare: float


def _welfare_of(agents: Sequence[Agent], q: Sequence[float]) -> float:
    """``sum b(x) - sum c(y)``: benefits count +, costs count - (``-sign * value``)."""
    return float(sum(-a.curve.sign * a.curve.value(qi) for a, qi in zip(agents, q, strict=True)))


def clear(agents: Sequence[Agent]) -> Clearing:
    """The optimum of the market formed by ``agents`` (either side may be empty)."""
    if all(a.curve.closed_form for a in agents):
        agg = AggregateMarket(agents)
        price, q, traded = agg.cleared()
        welfare = float(agg.welfare(np.array([price]), np.array([-1], dtype=np.int64))[0])
        return Clearing(
            price, {a.name: float(x) for a, x in zip(agents, q, strict=True)}, traded, welfare
        )
    return clear_generic(agents)


def _price_bracket(agents: Sequence[Agent]) -> tuple[float, float]:
    marks = [a.curve.marginal(0.0) for a in agents] + [
        a.curve.marginal(a.curve.capacity) for a in agents
    ]
    lo, hi = min(marks), max(marks)
    span = max(1.0, hi - lo)
    return lo - span, hi + span


def clear_generic(agents: Sequence[Agent], *, rel_tol: float = 1e-14) -> Clearing:
    """Bisection on the price for markets with callable curves (any mix of kinds)."""
    if not agents:
        return Clearing(0.0, {}, 0.0, 0.0)
    sign = np.array([a.curve.sign for a in agents])

    def intervals(p: float) -> tuple[np.ndarray, np.ndarray]:
        pairs = [a.curve.response(p) for a in agents]
        return np.array([x for x, _ in pairs]), np.array([y for _, y in pairs])

    def excess_right(p: float) -> float:
        lo, hi = intervals(p)
        return float(hi[sign > 0].sum() - lo[sign < 0].sum())

    lo_p, hi_p = _price_bracket(agents)
    for _ in range(200):
        if hi_p - lo_p <= rel_tol * max(1.0, abs(hi_p), abs(lo_p)):
            break
        mid = 0.5 * (lo_p + hi_p)
        if excess_right(mid) >= 0:
            hi_p = mid
        else:
            lo_p = mid
    price = hi_p
    lo, hi = intervals(price)
    q, traded = ration(sign, lo, hi)
    welfare = _welfare_of(agents, q.tolist())
    return Clearing(
        price, {a.name: float(x) for a, x in zip(agents, q, strict=True)}, traded, welfare
    )
