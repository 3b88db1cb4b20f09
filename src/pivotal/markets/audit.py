"""Audit of the procurement mechanism: certificates and a misreport grid for every agent.

Certificates: balance (supply = demand), KKT (every agent's quantity is a best response to
``p*``), welfare equal to the sum of values, individual rationality under VCG, the budget sign,
and every agent's VCG utility at least its uniform-price profit (weak duality).
Misreports: every agent over a grid of withholding levels (offer a fraction of capacity) and
curve scalings (cost inflation or deflation, benefit deflation or inflation); under VCG none
may raise the agent's true utility, while the uniform-price market's gains are reported next to
it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pivotal.markets.clarke import MarketOutcome, vcg_market
from pivotal.markets.curves import Role
from pivotal.markets.market import Market
from pivotal.markets.misreports import DeviationScorer, scale, withhold
from pivotal.results import Check, Tolerances

FRACTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
SCALES = (0.5, 0.8, 0.9, 0.95, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0)


@dataclass(frozen=True)
class AgentAudit:
    """Best deviation of one agent under VCG and under the uniform price."""

    name: str
    vcg_truthful: float
    vcg_best: float
    vcg_best_deviation: str
    uniform_truthful: float
    uniform_best: float
    uniform_best_deviation: str
    n_deviations: int

    @property
    def vcg_gain(self) -> float:
        """Largest VCG utility gain found (<= tolerance for a truthful mechanism)."""
        return self.vcg_best - self.vcg_truthful

    @property
    def uniform_gain(self) -> float:
        """Largest uniform-price profit gain found."""
        return self.uniform_best - self.uniform_truthful


@dataclass(frozen=True)
class MarketAudit:
    """Certificates and misreport grid of one market."""

    checks: tuple[Check, ...]
    agents: tuple[AgentAudit, ...]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        """JSON-compatible dictionary."""
        return {
            "passed": self.passed,
            "checks": [
                {"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks
            ],
            "agents": [
                {
                    "name": a.name,
                    "vcg_truthful_utility": a.vcg_truthful,
                    "vcg_best_utility": a.vcg_best,
                    "vcg_gain": a.vcg_gain,
                    "vcg_best_deviation": a.vcg_best_deviation,
                    "uniform_truthful_profit": a.uniform_truthful,
                    "uniform_best_profit": a.uniform_best,
                    "uniform_gain": a.uniform_gain,
                    "uniform_best_deviation": a.uniform_best_deviation,
                    "deviations": a.n_deviations,
                }
                for a in self.agents
            ],
        }


def money_scale(market: Market, outcome: MarketOutcome) -> float:
    """The money magnitude of a market's outcome: the largest of ``|W*|``, the agents' values
    and the gross value ``p* * traded`` (1.0 only when everything is 0)."""
    sizes = [abs(outcome.welfare), abs(outcome.price * outcome.traded)]
    sizes += [abs(v) for v in outcome.values.values()]
    return max(sizes) or 1.0


def outcome_checks(market: Market, outcome: MarketOutcome, tol: Tolerances) -> list[Check]:
    """Balance, KKT, welfare identity, IR, budget sign, VCG >= uniform-price profit.

    Each check compares amounts in its own units, with a slack of ``10 * rel_tol`` of their
    magnitude: quantities against the traded total or the agent's capacity, money against
    :func:`money_scale`, prices against the largest marginal value in the market. (A money
    slack applied to quantities let a supply of 4.0745 pass against a demand of 4; issue 20.)
    """
    rel = 10 * tol.rel_tol
    money = rel * money_scale(market, outcome)
    supply = sum(outcome.quantities[a.name] for a in market.producers)
    demand = sum(outcome.quantities[a.name] for a in market.buyers)
    quantity = rel * max(supply, demand)
    checks = [
        Check(
            "balance",
            abs(supply - demand) <= quantity,
            f"supply {supply:.12g} = demand {demand:.12g}",
        )
    ]
    marks = [abs(a.curve.marginal(0.0)) for a in market.agents]
    marks += [abs(a.curve.marginal(a.curve.capacity)) for a in market.agents]
    price_slack = rel * max([abs(outcome.price), *marks, 0.0])
    bad_kkt = []
    for agent in market.agents:
        # a steep ramp's response moves by its whole width within an ulp of the price: the
        # quantity is a best response to some price within the price slack of p*
        low = agent.curve.response(outcome.price - price_slack)
        high = agent.curve.response(outcome.price + price_slack)
        lo = min(low[0], high[0])
        hi = max(low[1], high[1])
        q = outcome.quantities[agent.name]
        q_slack = rel * agent.curve.capacity
        if not (lo - q_slack <= q <= hi + q_slack):
            bad_kkt.append(agent.name)
    checks.append(
        Check(
            "best responses to p*",
            not bad_kkt,
            "every quantity is optimal at the clearing price"
            if not bad_kkt
            else f"not a best response: {', '.join(bad_kkt)}",
        )
    )
    total = sum(-a.curve.sign * outcome.values[a.name] for a in market.agents)
    checks.append(
        Check(
            "welfare identity",
            abs(total - outcome.welfare) <= money,
            f"sum b - sum c = {total:.12g}, W* = {outcome.welfare:.12g}",
        )
    )
    bad_ir = [n for n, u in outcome.utilities.items() if u < -money]
    checks.append(
        Check(
            "individual rationality",
            not bad_ir,
            "every VCG utility >= 0" if not bad_ir else f"negative: {', '.join(bad_ir)}",
        )
    )
    checks.append(
        Check(
            "no surplus for the mechanism",
            -outcome.budget <= money,
            f"net revenue {-outcome.budget:g} <= 0 (budget deficit {outcome.budget:g})",
        )
    )
    below = [
        n for n, u in outcome.utilities.items() if u < outcome.uniform_price.profits[n] - money
    ]
    checks.append(
        Check(
            "VCG utility >= uniform-price profit",
            not below,
            "weak duality holds for every agent" if not below else f"below: {', '.join(below)}",
        )
    )
    return checks


def audit_agent(market: Market, name: str) -> AgentAudit:
    """The misreport grid of one agent, scored under both mechanisms."""
    scorer = DeviationScorer(market, name)
    curve = scorer.agent.curve
    truthful = scorer.score(curve, "truthful")
    best_v, best_u = truthful, truthful
    verb = "cost" if curve.role is Role.PRODUCER else "benefit"
    deviations = [(withhold(curve, f), f"offer {f:.0%} of capacity") for f in FRACTIONS]
    deviations += [(scale(curve, s), f"{verb} x{s:g}") for s in SCALES]
    deviations += [
        (withhold(scale(curve, s), f), f"{verb} x{s:g}, offer {f:.0%}")
        for s in (0.8, 1.25)
        for f in (0.5, 0.9)
    ]
    for reported, description in deviations:
        result = scorer.score(reported, description)
        if result.vcg_utility > best_v.vcg_utility + _noise(best_v.vcg_utility):
            best_v = result
        if result.uniform_profit > best_u.uniform_profit + _noise(best_u.uniform_profit):
            best_u = result
    return AgentAudit(
        name,
        truthful.vcg_utility,
        best_v.vcg_utility,
        best_v.description,
        truthful.uniform_profit,
        best_u.uniform_profit,
        best_u.description,
        len(deviations),
    )


def audit_market(
    market: Market,
    *,
    tolerances: Tolerances | None = None,
    on_agent: Callable[[str], None] | None = None,
) -> MarketAudit:
    """Certificates of the VCG outcome and the misreport grid for every agent."""
    tol = tolerances or Tolerances()
    outcome = vcg_market(market, tolerances=tol)
    checks = outcome_checks(market, outcome, tol)
    agents = []
    for agent in market.agents:
        agents.append(audit_agent(market, agent.name))
        if on_agent is not None:
            on_agent(agent.name)
    slack = 10 * tol.rel_tol * money_scale(market, outcome)
    gainers = [a.name for a in agents if a.vcg_gain > slack]
    checks.append(
        Check(
            "no profitable misreport under VCG",
            not gainers,
            f"{sum(a.n_deviations for a in agents)} deviations searched, none gains"
            if not gainers
            else f"gains for: {', '.join(gainers)}",
        )
    )
    return MarketAudit(tuple(checks), tuple(agents))


def _noise(x: float) -> float:
    """Floating-point noise level below which a utility difference is not a gain."""
    return 1e-12 * max(1.0, abs(x))
