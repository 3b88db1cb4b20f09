"""Seeded random procurement markets with mixed curve kinds.

Each agent's kind is drawn uniformly from linear, quadratic and piecewise-linear (three
segments). Producers: marginal cost at zero ``a ~ U(1, 10)``; quadratic ``b ~ U(0.05, 1)``;
piecewise slopes ``a + cumsum(U(0, 3))``. Buyers: marginal benefit at zero ``a ~ U(6, 16)``;
piecewise slopes ``a - cumsum(U(0, 3))`` floored at 0.1. Capacities (and segment lengths)
``~ U(0.5, 10)`` (thirds of it per segment). Supply and demand then cross inside the price range
for balanced markets.

:class:`MarketDraw` keeps the draws as arrays so that very large markets (10^6 agents, for the
benchmark) can go straight to event arrays without building a Python object per agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pivotal.arrays import FloatArray, IntArray
from pivotal.errors import InputError
from pivotal.markets.aggregate import AggregateMarket
from pivotal.markets.curves import Role, linear, piecewise_linear, quadratic
from pivotal.markets.market import Agent, Market

LINEAR, QUADRATIC, PIECEWISE = 0, 1, 2


@dataclass(frozen=True)
class MarketDraw:
    """Parameters of a random market, one row per agent (producers first)."""

    sign: FloatArray  # +1 producer, -1 buyer
    kind: IntArray
    a: FloatArray
    b: FloatArray
    capacity: FloatArray
    slopes: FloatArray  # (n, 3) piecewise slopes
    lengths: FloatArray  # (n, 3) piecewise segment lengths

    @cached_property
    def n_producers(self) -> int:
        """Number of producers (they come first)."""
        return int((self.sign > 0).sum())

    def name(self, i: int) -> str:
        """``P<i>`` for producers, ``B<i>`` for buyers (1-based within the side)."""
        n_prod = self.n_producers
        return f"P{i + 1}" if i < n_prod else f"B{i - n_prod + 1}"

    def market(self) -> Market:
        """The market as validated objects (for files, the CLI and tests)."""
        agents = []
        for i in range(len(self.sign)):
            role = Role.PRODUCER if self.sign[i] > 0 else Role.BUYER
            if self.kind[i] == LINEAR:
                curve = linear(role, float(self.a[i]), float(self.capacity[i]))
            elif self.kind[i] == QUADRATIC:
                curve = quadratic(role, float(self.a[i]), float(self.b[i]), float(self.capacity[i]))
            else:
                q = np.concatenate([[0.0], np.cumsum(self.lengths[i])])
                v = np.concatenate([[0.0], np.cumsum(self.lengths[i] * self.slopes[i])])
                curve = piecewise_linear(
                    role, [[float(x), float(y)] for x, y in zip(q, v, strict=True)]
                )
            agents.append(Agent(self.name(i), curve))
        return Market(tuple(agents))

    def aggregate(self) -> AggregateMarket:
        """Event arrays built directly from the draws (no per-agent Python objects)."""
        n = len(self.sign)
        idx = np.arange(n, dtype=np.int64)
        parts_t, parts_a, parts_b, parts_o = [], [], [], []
        lin = idx[self.kind == LINEAR]
        parts_t.append(self.sign[lin] * self.a[lin])
        parts_a.append(self.capacity[lin])
        parts_b.append(np.zeros(len(lin)))
        parts_o.append(lin)
        quad = idx[self.kind == QUADRATIC]
        slope = 1.0 / (2.0 * self.b[quad])
        t0 = self.sign[quad] * self.a[quad]
        parts_t += [t0, t0 + 2.0 * self.b[quad] * self.capacity[quad]]
        parts_a += [np.zeros(len(quad)), np.zeros(len(quad))]
        parts_b += [slope, -slope]
        parts_o += [quad, quad]
        pwl = idx[self.kind == PIECEWISE]
        for s in range(3):
            parts_t.append(self.sign[pwl] * self.slopes[pwl, s])
            parts_a.append(self.lengths[pwl, s])
            parts_b.append(np.zeros(len(pwl)))
            parts_o.append(pwl)
        return AggregateMarket.from_arrays(
            self.sign,
            np.concatenate(parts_t),
            np.concatenate(parts_a),
            np.concatenate(parts_b),
            np.concatenate(parts_o).astype(np.int64),
        )


def draw_market(n_producers: int, n_buyers: int, rng: np.random.Generator) -> MarketDraw:
    """Draw the parameters of a random market (see the module docstring)."""
    if n_producers < 1 or n_buyers < 1:
        raise InputError(
            f"a market needs at least one producer and one buyer, got {n_producers} and {n_buyers}"
        )
    n = n_producers + n_buyers
    sign = np.concatenate([np.ones(n_producers), -np.ones(n_buyers)])
    kind = rng.integers(0, 3, size=n).astype(np.int64)
    a = np.where(sign > 0, rng.uniform(1.0, 10.0, n), rng.uniform(6.0, 16.0, n))
    b = rng.uniform(0.05, 1.0, n)
    capacity = rng.uniform(0.5, 10.0, n)
    steps = np.cumsum(rng.uniform(0.0, 3.0, (n, 3)), axis=1)
    slopes = np.where(sign[:, None] > 0, a[:, None] + steps, np.maximum(a[:, None] - steps, 0.1))
    lengths = np.repeat((capacity / 3.0)[:, None], 3, axis=1)

    def r3(x: FloatArray) -> FloatArray:
        return np.asarray(np.round(x, 3), dtype=np.float64)

    return MarketDraw(sign, kind, r3(a), r3(b), r3(capacity), r3(slopes), r3(lengths))


def generate_market(n_producers: int, n_buyers: int, rng: np.random.Generator) -> Market:
    """A random market with mixed curve kinds, as validated objects."""
    return draw_market(n_producers, n_buyers, rng).market()
