"""Centralized verification (simulation only, never part of the protocol).

Stacks every party's cost LP with coupling rows ``x_R[block v] = x_v`` and solves
``min C_R + sum_v C_v`` with HiGHS; optionally holds some blocks at given plans (for the
counterfactual runs). Needs every party's private model, which only a simulation has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pivotal.arrays import FloatArray
from pivotal.negotiation.coordinator import PartyView
from pivotal.negotiation.cost_models import PlanCostModel
from pivotal.solvers import LinearModelBuilder, require_optimal, solve_linear


@dataclass(frozen=True)
class CentralizedSolution:
    """Optimal total cost, the plan per block and each party's cost at it."""

    total_cost: float
    plan: tuple[FloatArray, ...]
    costs: dict[str, float]


def solve_centralized(
    models: Mapping[str, PlanCostModel],
    views: Sequence[PartyView],
    block_sizes: Sequence[int],
    *,
    fixed: Mapping[int, FloatArray] | None = None,
) -> CentralizedSolution:
    """``min sum_i C_i`` over plans on which all copies agree (``fixed`` blocks held)."""
    fixed = fixed or {}
    b_lp = LinearModelBuilder()
    offsets = {v.name: b_lp.append(models[v.name].lp) for v in views}
    # plan position of each party's copy of each block
    where: dict[int, list[int]] = {b: [] for b in range(len(block_sizes))}
    for v in views:
        start = offsets[v.name]
        for b in v.blocks:
            where[b].append(start)
            start += block_sizes[b]
    for b, starts in where.items():
        for s in starts[1:]:  # every copy of block b equals the first
            for j in range(block_sizes[b]):
                b_lp.row([(starts[0] + j, 1.0), (s + j, -1.0)], 0.0, 0.0)
        if b in fixed:
            for s in starts:
                b_lp.fix(s, np.asarray(fixed[b], dtype=np.float64))
    model = b_lp.build(maximize=False)
    solution = require_optimal(solve_linear(model), what="the centralized plan LP")
    assert solution.x is not None and solution.objective is not None
    y = solution.x
    plan = tuple(
        y[where[b][0] : where[b][0] + block_sizes[b]].copy() for b in range(len(block_sizes))
    )
    costs = {
        v.name: float(
            models[v.name].c @ y[offsets[v.name] : offsets[v.name] + models[v.name].n_vars]
        )
        for v in views
    }
    return CentralizedSolution(solution.objective, plan, costs)
