"""VCG (Clarke pivot) transfers in a procurement market.

With optimal welfare ``W*`` and ``W*_{-k}`` the optimum without agent ``k``:

- producer ``k`` *receives* ``t_k = c_k(y_k) + (W* - W*_{-k})``: its reported cost plus its
  marginal contribution;
- buyer ``h`` *pays* ``b_h(x_h) - (W* - W*_{-h})``, i.e. receives ``t_h = -(b_h(x_h) - (W* -
  W*_{-h}))``.

Transfers are signed from the agent's side: positive = the mechanism pays the agent. Every
agent's utility is its marginal contribution ``W* - W*_{-k} >= 0``. The *budget* ``sum t`` is a
deficit in general (Myerson-Satterthwaite); the mechanism's net revenue is ``-budget <= 0``.
Next to it, the uniform-price market at ``p*`` (producers receive ``p* * y``, buyers pay
``p* * x``) balances its budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pivotal.arrays import FloatArray
from pivotal.markets.aggregate import AggregateMarket, aggregate_of, solve_all
from pivotal.markets.amounts import AmountColumn, LabelColumn, as_dict
from pivotal.markets.clearing import Clearing, clear_generic
from pivotal.markets.curves import Role
from pivotal.markets.market import Market
from pivotal.results import Provenance, ResultKind, Tolerances, package_version

PerAgent = Callable[[Mapping[str, Any]], Any]
"""How :meth:`MarketOutcome.to_dict` writes a per-agent mapping: a plain dictionary by default
(:func:`pivotal.markets.amounts.as_dict`); the result encoder passes pre-encoded JSON."""


@dataclass(frozen=True)
class UniformPrice:
    """The uniform-price market at ``p*``: payments, each agent's profit, balanced budget."""

    price: float
    payments: Mapping[str, float]
    profits: Mapping[str, float]
    revenue: float

    def to_dict(self, per_agent: PerAgent = as_dict) -> dict[str, Any]:
        """JSON-compatible dictionary (``per_agent``: see :data:`PerAgent`)."""
        return {
            "price": self.price,
            "transfers": per_agent(self.payments),
            "profits": per_agent(self.profits),
            "budget": -self.revenue,
        }


@dataclass(frozen=True)
class MarketOutcome:
    """VCG outcome of a procurement market, with the uniform-price comparison.

    Attributes
    ----------
    price:
        Clearing price ``p*`` (multiplier of supply = demand).
    welfare:
        ``W* = sum b(x) - sum c(y)``.
    quantities:
        ``{name: q}`` (supplied by producers, bought by buyers).
    values:
        Reported cost (producers) or benefit (buyers) of each agent's quantity.
    marginal_contributions:
        ``W* - W*_{-k}`` per agent.
    transfers:
        Positive = paid to the agent.
    utilities:
        ``t - c(y)`` for producers, ``b(x) + t`` for buyers (= marginal contribution).
    budget:
        ``sum of transfers`` (a deficit when positive).
    uniform_price:
        The market at ``p*`` for comparison.
    """

    price: float
    welfare: float
    traded: float
    quantities: Mapping[str, float]
    values: Mapping[str, float]
    marginal_contributions: Mapping[str, float]
    transfers: Mapping[str, float]
    utilities: Mapping[str, float]
    budget: float
    uniform_price: UniformPrice
    roles: Mapping[str, Role]
    provenance: Provenance

    @property
    def kind(self) -> ResultKind:
        """``market`` (the result contract, :class:`pivotal.results.Outcome`)."""
        return ResultKind.MARKET

    @property
    def participants(self) -> tuple[str, ...]:
        """Every agent, producers and buyers in input order."""
        return tuple(self.quantities)

    def role_names(self) -> Mapping[str, str]:
        """Each agent's role as its JSON string (``"producer"`` or ``"buyer"``)."""
        roles = self.roles
        if isinstance(roles, LabelColumn):
            return roles.relabel(tuple(r.value for r in roles.labels))
        return {k: r.value for k, r in roles.items()}

    def to_dict(self, per_agent: PerAgent = as_dict) -> dict[str, Any]:
        """JSON-compatible dictionary (the CLI's ``--json`` document; ``per_agent``: see
        :data:`PerAgent`)."""
        return {
            "mechanism": "vcg",
            "price": self.price,
            "welfare": self.welfare,
            "traded": self.traded,
            "quantities": per_agent(self.quantities),
            "values": per_agent(self.values),
            "roles": per_agent(self.role_names()),
            "marginal_contributions": per_agent(self.marginal_contributions),
            "transfers": per_agent(self.transfers),
            "utilities": per_agent(self.utilities),
            "budget": self.budget,
            "net_revenue": -self.budget,
            "uniform_price": self.uniform_price.to_dict(per_agent),
            "provenance": self.provenance.to_dict(),
        }


def welfare_without_each(market: Market) -> tuple[Clearing, dict[str, float]]:
    """The optimum and ``W*_{-k}`` for every agent (``O(n log n)`` for closed-form curves)."""
    agents = market.agents
    if market.closed_form:
        solution = solve_all(AggregateMarket(agents))
        main = Clearing(
            solution.price,
            {a.name: float(q) for a, q in zip(agents, solution.quantities, strict=True)},
            solution.traded,
            solution.welfare,
        )
        return main, {
            a.name: float(w) for a, w in zip(agents, solution.welfare_without, strict=True)
        }
    main = clear_generic(agents)
    return main, {a.name: clear_generic(market.without(a.name)).welfare for a in agents}


def uniform_price_market(market: Market, clearing: Clearing) -> UniformPrice:
    """Payments and profits when every unit trades at ``p*``."""
    p = clearing.price
    payments: dict[str, float] = {}
    profits: dict[str, float] = {}
    for agent in market.agents:
        q = clearing.quantities[agent.name]
        value = agent.curve.value(q)
        if agent.role is Role.PRODUCER:
            payments[agent.name] = p * q
            profits[agent.name] = p * q - value
        else:
            payments[agent.name] = -p * q
            profits[agent.name] = value - p * q
    return UniformPrice(p, payments, profits, -float(sum(payments.values())))


def vcg_market(market: Market, *, tolerances: Tolerances | None = None) -> MarketOutcome:
    """Run the VCG procurement mechanism and the uniform-price comparison."""
    start = time.perf_counter()
    if market.closed_form:
        return _vcg_columns(market, start, tolerances)
    main, w_minus = welfare_without_each(market)
    values: dict[str, float] = {}
    contributions: dict[str, float] = {}
    transfers: dict[str, float] = {}
    utilities: dict[str, float] = {}
    for agent in market.agents:
        q = main.quantities[agent.name]
        value = agent.curve.value(q)
        gain = main.welfare - w_minus[agent.name]
        values[agent.name] = value
        contributions[agent.name] = gain
        if agent.role is Role.PRODUCER:
            transfers[agent.name] = value + gain
            utilities[agent.name] = transfers[agent.name] - value
        else:
            transfers[agent.name] = -(value - gain)
            utilities[agent.name] = value + transfers[agent.name]
    return MarketOutcome(
        price=main.price,
        welfare=main.welfare,
        traded=main.traded,
        quantities=main.quantities,
        values=values,
        marginal_contributions=contributions,
        transfers=transfers,
        utilities=utilities,
        budget=float(sum(transfers.values())),
        uniform_price=uniform_price_market(market, main),
        roles={a.name: a.role for a in market.agents},
        provenance=_provenance(market, start, tolerances),
    )


def _provenance(market: Market, start: float, tolerances: Tolerances | None) -> Provenance:
    return Provenance(
        mechanism="vcg-procurement",
        input_sha256=market.sha256,
        solver="closed-form" if market.closed_form else "bisection",
        solver_version=f"numpy {package_version('numpy')}",
        tolerances=tolerances or Tolerances(),
        parameters={"agents": len(market)},
        seconds=time.perf_counter() - start,
        n_solves=len(market) + 1,
    )


def _vcg_columns(market: Market, start: float, tolerances: Tolerances | None) -> MarketOutcome:
    """The closed-form path on the market's columns: every per-agent amount in one vectorized
    pass, with the same arithmetic as the per-agent loop."""
    table = market.table
    solution = solve_all(aggregate_of(market))
    q = solution.quantities
    values = table.values(q)
    gain = solution.welfare - solution.welfare_without
    producer = table.sign > 0
    transfers = np.where(producer, values + gain, -(values - gain))
    utilities = np.where(producer, transfers - values, values + transfers)
    p = solution.price
    payments = np.where(producer, p * q, -p * q)
    profits = np.where(producer, p * q - values, values - p * q)
    names = table.names

    def by_name(x: FloatArray) -> AmountColumn:
        return AmountColumn(names, x)

    uniform = UniformPrice(
        p,
        by_name(payments),
        by_name(profits),
        -float(sum(payments.tolist())),
    )
    return MarketOutcome(
        price=p,
        welfare=solution.welfare,
        traded=solution.traded,
        quantities=by_name(q),
        values=by_name(values),
        marginal_contributions=by_name(gain),
        transfers=by_name(transfers),
        utilities=by_name(utilities),
        budget=float(sum(transfers.tolist())),
        uniform_price=uniform,
        roles=LabelColumn(names, producer.astype(np.int64), (Role.BUYER, Role.PRODUCER)),
        provenance=_provenance(market, start, tolerances),
    )
