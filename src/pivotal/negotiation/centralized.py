"""Centralized verification (simulation only, never part of the protocol).

Stacks every party's cost LP with coupling rows ``x_R[block v] = x_v`` and solves
``min C_R + sum_v C_v`` with HiGHS; optionally holds some blocks at given plans (for the
counterfactual runs). Needs every party's private model, which only a simulation has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from pivotal.arrays import FloatArray
from pivotal.negotiation.coordinator import PartyView
from pivotal.negotiation.cost_models import PlanCostModel
from pivotal.solvers import LinearModel, require_optimal, solve_linear


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
    offsets, total = {}, 0
    for v in views:
        offsets[v.name] = total
        total += models[v.name].n_vars
    c = np.concatenate([models[v.name].c for v in views])
    a_blocks = sp.block_diag([models[v.name].a_matrix for v in views], format="csr")
    row_lo = np.concatenate([models[v.name].row_lower for v in views])
    row_hi = np.concatenate([models[v.name].row_upper for v in views])
    y_lo = np.concatenate([models[v.name].y_lower for v in views])
    y_hi = np.concatenate([models[v.name].y_upper for v in views])
    # plan position of each party's copy of each block
    where: dict[int, list[int]] = {b: [] for b in range(len(block_sizes))}
    for v in views:
        start = offsets[v.name]
        for b in v.blocks:
            where[b].append(start)
            start += block_sizes[b]
    rows, cols, vals = [], [], []
    n_rows = 0
    for b, starts in where.items():
        for s in starts[1:]:
            for j in range(block_sizes[b]):
                rows += [n_rows, n_rows]
                cols += [starts[0] + j, s + j]
                vals += [1.0, -1.0]
                n_rows += 1
        if b in fixed:
            for s in starts:
                y_lo[s : s + block_sizes[b]] = fixed[b]
                y_hi[s : s + block_sizes[b]] = fixed[b]
    coupling = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, total))
    model = LinearModel(
        c=c,
        a_matrix=sp.vstack([a_blocks, coupling]).tocsc(),
        row_lower=np.concatenate([row_lo, np.zeros(n_rows)]),
        row_upper=np.concatenate([row_hi, np.zeros(n_rows)]),
        col_lower=y_lo,
        col_upper=y_hi,
        integrality=np.zeros(total, dtype=np.bool_),
        maximize=False,
    )
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
