"""Misreports of one agent: withholding capacity and inflating (or deflating) its curve.

A producer that offers only part of its capacity, or reports a higher cost, raises the clearing
price. In the uniform-price market that can pay (market power); under VCG it never does, because
the agent's utility is total (true) welfare minus a term it cannot influence. Each deviation is
scored with the agent's *true* curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from pivotal.markets.aggregate import AggregateMarket, Replacement, aggregate_of
from pivotal.markets.clearing import Clearing, clear
from pivotal.markets.curves import Curve, CurveKind, linear, piecewise_linear, quadratic
from pivotal.markets.market import Agent, Market


def withhold(curve: Curve, fraction: float) -> Curve:
    """The same curve offered on ``[0, fraction * capacity]``."""
    cap = curve.capacity * min(max(fraction, 0.0), 1.0)
    if curve.kind is CurveKind.LINEAR:
        return linear(curve.role, curve.a, cap)
    if curve.kind is CurveKind.QUADRATIC:
        return quadratic(curve.role, curve.a, curve.b, cap)
    if curve.kind is CurveKind.PIECEWISE_LINEAR:
        if cap <= 0:
            return linear(curve.role, 0.0, 0.0)
        return piecewise_linear(curve.role, [list(p) for p in curve.points], cap)
    raise ValueError("withholding applies to closed-form curves")


def scale(curve: Curve, factor: float) -> Curve:
    """The curve's values times ``factor`` (cost inflation > 1, benefit deflation < 1)."""
    if curve.kind is CurveKind.LINEAR:
        return linear(curve.role, curve.a * factor, curve.capacity)
    if curve.kind is CurveKind.QUADRATIC:
        return quadratic(curve.role, curve.a * factor, curve.b * factor, curve.capacity)
    if curve.kind is CurveKind.PIECEWISE_LINEAR:
        return piecewise_linear(
            curve.role, [[q, v * factor] for q, v in curve.points], curve.capacity
        )
    raise ValueError("scaling applies to closed-form curves")


@dataclass(frozen=True)
class DeviationResult:
    """One misreport and its consequences, scored with the agent's true curve."""

    description: str
    price: float
    quantity: float
    uniform_profit: float
    vcg_utility: float
    true_welfare: float


class DeviationScorer:
    """Scores misreports of one agent under both mechanisms.

    ``W*_{-k}`` (the optimum without the agent, which no report of its own can change) is
    computed once. With closed-form curves the market's aggregate curves are built once and each
    misreport is cleared against the other agents' part of them
    (:class:`pivotal.markets.aggregate.Replacement`: ``O(log n)`` price probes and one ``O(n)``
    merge of breakpoints per misreport, not a new market); otherwise each misreport clears the
    whole market again.
    """

    def __init__(self, market: Market, name: str) -> None:
        self.market = market
        self.name = name
        self.agent = market.agent(name)
        self._replacement: Replacement | None = None
        if market.closed_form:
            agg = aggregate_of(market)
            k = np.array([market.position(name)], dtype=np.int64)
            self._replacement = Replacement(agg, int(k[0]))
            self.w_minus = float(agg.welfare(agg.clearing_prices(k), k)[0])
        else:
            self.w_minus = clear(market.without(name)).welfare

    def _clear(self, reported: Curve) -> tuple[float, float, float]:
        """Price, the agent's quantity and the optimal welfare when it reports ``reported``."""
        if self._replacement is not None and reported.closed_form:
            return self._replacement.clear(AggregateMarket([Agent(self.name, reported)]))
        result: Clearing = clear(self.market.replace(self.name, reported).agents)
        return result.price, result.quantities[self.name], result.welfare

    def score(self, reported: Curve, description: str) -> DeviationResult:
        """Clear the market with ``reported`` for the agent and score it truthfully."""
        p, q, welfare = self._clear(reported)
        true_value = self.agent.curve.value(q)
        uniform = self.agent.curve.sign * (p * q - true_value)  # p*y - c(y), or b(x) - p*x
        others = welfare - (-reported.sign * reported.value(q))
        true_welfare = others + (-self.agent.curve.sign * true_value)
        vcg_utility = true_welfare - self.w_minus
        return DeviationResult(description, p, q, uniform, vcg_utility, true_welfare)


@dataclass(frozen=True)
class WithholdingResult:
    """Best capacity withholding of one producer in the uniform-price market."""

    name: str
    truthful: DeviationResult
    best: DeviationResult
    best_fraction: float
    curve: tuple[tuple[float, float, float, float], ...]
    """(fraction offered, price, uniform-price profit, VCG utility) over the search grid."""

    @property
    def profit_gain(self) -> float:
        """Uniform-price profit gained by withholding."""
        return self.best.uniform_profit - self.truthful.uniform_profit

    @property
    def welfare_loss(self) -> float:
        """True welfare lost at the withholding optimum."""
        return self.truthful.true_welfare - self.best.true_welfare

    def to_dict(self) -> dict[str, object]:
        """JSON-compatible dictionary."""
        return {
            "producer": self.name,
            "best_fraction_offered": self.best_fraction,
            "price_truthful": self.truthful.price,
            "price_withholding": self.best.price,
            "profit_truthful": self.truthful.uniform_profit,
            "profit_withholding": self.best.uniform_profit,
            "profit_gain": self.profit_gain,
            "welfare_loss": self.welfare_loss,
            "vcg_utility_truthful": self.truthful.vcg_utility,
            "vcg_utility_at_best_withholding": self.best.vcg_utility,
            "curve": [
                {"fraction": f, "price": p, "uniform_profit": u, "vcg_utility": v}
                for f, p, u, v in self.curve
            ],
        }


def best_withholding(market: Market, name: str, *, grid: int = 101) -> WithholdingResult:
    """A producer's best offered fraction of capacity against the uniform-price rule.

    Grid search over ``[0, 1]`` with ``grid`` points, then a bounded scalar refinement around
    the best grid point.
    """
    scorer = DeviationScorer(market, name)
    curve = scorer.agent.curve
    truthful = scorer.score(curve, "truthful")
    fractions = np.linspace(0.0, 1.0, grid)
    scored = [scorer.score(withhold(curve, f), f"offer {f:.0%}") for f in fractions]
    k = int(np.argmax([s.uniform_profit for s in scored]))
    lo, hi = fractions[max(k - 1, 0)], fractions[min(k + 1, grid - 1)]
    best, best_f = scored[k], float(fractions[k])
    if hi > lo:
        refined = optimize.minimize_scalar(
            lambda f: -scorer.score(withhold(curve, f), "").uniform_profit,
            bounds=(float(lo), float(hi)),
            method="bounded",
            options={"xatol": 1e-9},
        )
        cand = scorer.score(withhold(curve, float(refined.x)), f"offer {refined.x:.2%}")
        if cand.uniform_profit > best.uniform_profit:
            best, best_f = cand, float(refined.x)
    table = tuple(
        (float(f), s.price, s.uniform_profit, s.vcg_utility)
        for f, s in zip(fractions, scored, strict=True)
    )
    return WithholdingResult(name, truthful, best, best_f, table)


def largest_producer(market: Market) -> str:
    """The producer with the largest capacity (first on ties)."""
    if market.closed_form:
        t = market.table
        capacity = np.where(t.sign > 0, t.capacity, -np.inf)
        return t.names[int(np.argmax(capacity))]  # argmax: the first of the largest
    return max(market.producers, key=lambda a: a.curve.capacity).name
