"""Each party's private cost of a plan, as a linear program (its value function).

A :class:`PlanCostModel` is ``C(x) = min c'y`` over variables ``y = [x; internal]`` subject to
``row_lower <= A y <= row_upper`` and ``y_lower <= y <= y_upper``; the first ``n_plan``
variables are the party's copy of the plan. ``C`` is convex and piecewise linear in ``x``.

Retailer (given inbound ``q[k, f, t]`` summed over vendors): ship ``w[k, f, r, t]`` from sites to
regions at ``local_delivery_cost + outbound_cost_per_unit_mile * road miles``, keep inventory
``I[k, f, t]`` at ``holding_cost`` within the site's storage capacity, leave demand unmet
``u[k, r, t]`` at ``shortage_penalty``, dispose of excess ``z[k, f, t]`` at ``disposal_cost``:

    I[k,f,t] = I[k,f,t-1] + q[k,f,t] - sum_r w[k,f,r,t] - z[k,f,t]     (I[k,f,-1] = 0)
    sum_f w[k,f,r,t] + u[k,r,t] = demand[k,r,t]
    sum_k I[k,f,t] <= capacity[f]

Vendor (its own block ``q[k, f, t]``): ship from factory ``g`` on the scheduled truck ``a`` (up to
its spare room, at ``scheduled_cost_per_unit``) or on dedicated trucks ``b`` (at
``truck_cost_per_mile * road miles / units_per_truck``), both plus the production cost; units
beyond capacity ``o[k, f, t]`` at ``overflow_cost``:

    sum_g (a + b)[k,g,f,t] + o[k,f,t] = q[k,f,t]
    sum_k a[k,g,f,t] <= spare_room[g,f,t]
    sum_{k,f} (a + b)[k,g,f,t] <= capacity[g,t]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from pivotal.arrays import FloatArray
from pivotal.negotiation.geography import Location, road_miles
from pivotal.negotiation.scenario.model import RetailerSpec, Scenario, VendorSpec
from pivotal.solvers import LinearModel, LinearModelBuilder


@dataclass(frozen=True)
class Block:
    """One vendor's part of the plan: ``q[k, f, t]`` for its products, all sites and weeks."""

    owner: str
    products: tuple[str, ...]
    sites: tuple[str, ...]
    weeks: int

    @property
    def size(self) -> int:
        """Number of plan entries."""
        return len(self.products) * len(self.sites) * self.weeks

    def index(self, k: int, f: int, t: int) -> int:
        """Flat position of ``(product k, site f, week t)`` within the block."""
        return (k * len(self.sites) + f) * self.weeks + t

    def as_array(self, flat: FloatArray) -> FloatArray:
        """The block reshaped to ``(products, sites, weeks)``."""
        return flat.reshape(len(self.products), len(self.sites), self.weeks)


def plan_blocks(scenario: Scenario) -> tuple[Block, ...]:
    """One block per vendor, in vendor order."""
    sites = tuple(s.name for s in scenario.retailer.sites)
    return tuple(Block(v.name, v.products, sites, scenario.weeks) for v in scenario.vendors)


@dataclass(frozen=True)
class PlanCostModel:
    """``C(x) = min c'y`` over the LP ``lp`` (a minimization), with ``x = y[:n_plan]``."""

    n_plan: int
    lp: LinearModel

    @property
    def n_vars(self) -> int:
        """Number of variables (plan and internal)."""
        return self.lp.n_cols

    @property
    def c(self) -> FloatArray:
        """Cost per variable."""
        return self.lp.c

    @property
    def a_matrix(self) -> sp.csc_matrix:
        """Constraint matrix."""
        return self.lp.a_matrix

    @property
    def row_lower(self) -> FloatArray:
        """Rows' lower bounds."""
        return self.lp.row_lower

    @property
    def row_upper(self) -> FloatArray:
        """Rows' upper bounds."""
        return self.lp.row_upper

    @property
    def y_lower(self) -> FloatArray:
        """Variables' lower bounds."""
        return self.lp.col_lower

    @property
    def y_upper(self) -> FloatArray:
        """Variables' upper bounds."""
        return self.lp.col_upper


def retailer_model(spec: RetailerSpec, blocks: tuple[Block, ...], weeks: int) -> PlanCostModel:
    """The retailer's fulfilment LP over the whole plan (every vendor's block)."""
    b = LinearModelBuilder()
    plan_index: dict[tuple[str, int, int], int] = {}
    for block in blocks:  # the retailer's copy is every block, in order (see Block.index)
        for product in block.products:
            for f in range(len(block.sites)):
                for t in range(weeks):
                    plan_index[(product, f, t)] = b.var(0.0)
    n_plan = b.n_cols
    products = [p for block in blocks for p in block.products]
    sites, regions = spec.sites, spec.regions
    outbound = [
        [
            spec.local_delivery_cost
            + spec.outbound_cost_per_unit_mile * road_miles(s.location, g.location)
            for g in regions
        ]
        for s in sites
    ]
    inv: dict[tuple[str, int, int], int] = {}
    ship: dict[tuple[str, int, int, int], int] = {}
    for product in products:
        for f, site in enumerate(sites):
            for t in range(weeks):
                inv[(product, f, t)] = b.var(site.holding_cost)
                for r in range(len(regions)):
                    ship[(product, f, r, t)] = b.var(outbound[f][r])
    for product in products:
        for f in range(len(sites)):
            for t in range(weeks):
                z = b.var(spec.disposal_cost)
                terms = [(inv[(product, f, t)], 1.0), (plan_index[(product, f, t)], -1.0), (z, 1.0)]
                if t > 0:
                    terms.append((inv[(product, f, t - 1)], -1.0))
                terms += [(ship[(product, f, r, t)], 1.0) for r in range(len(regions))]
                b.row(terms, 0.0, 0.0)
        for r, region in enumerate(regions):
            series = region.demand.get(product, (0.0,) * weeks)
            for t in range(weeks):
                u = b.var(spec.shortage_penalty)
                terms = [(ship[(product, f, r, t)], 1.0) for f in range(len(sites))] + [(u, 1.0)]
                b.row(terms, series[t], series[t])
    for f, site in enumerate(sites):
        for t in range(weeks):
            b.row([(inv[(p, f, t)], 1.0) for p in products], -np.inf, site.capacity)
    return PlanCostModel(n_plan, b.build())


def vendor_model(
    spec: VendorSpec, block: Block, site_locations: Mapping[str, Location]
) -> PlanCostModel:
    """The vendor's production and shipping LP over its own block."""
    b = LinearModelBuilder()
    weeks = block.weeks
    plan = {
        (k, f, t): b.var(0.0)
        for k in range(len(block.products))
        for f in range(len(block.sites))
        for t in range(weeks)
    }
    n_plan = b.n_cols
    spare = {(ln.factory, ln.site): ln.spare_room for ln in spec.lanes}
    sched: dict[tuple[int, int, int, int], int] = {}
    dedicated: dict[tuple[int, int, int, int], int] = {}
    for g, factory in enumerate(spec.factories):
        for f, site in enumerate(block.sites):
            per_unit = spec.truck_cost_per_mile * road_miles(factory.location, site_locations[site])
            per_unit /= spec.units_per_truck
            has_truck = (factory.name, site) in spare
            for k in range(len(block.products)):
                for t in range(weeks):
                    dedicated[(k, g, f, t)] = b.var(factory.production_cost + per_unit)
                    if has_truck:
                        sched[(k, g, f, t)] = b.var(
                            factory.production_cost + spec.scheduled_cost_per_unit
                        )
    for (k, f, t), x in plan.items():
        o = b.var(spec.overflow_cost)
        terms = [(x, -1.0), (o, 1.0)]
        for g in range(len(spec.factories)):
            terms.append((dedicated[(k, g, f, t)], 1.0))
            if (k, g, f, t) in sched:
                terms.append((sched[(k, g, f, t)], 1.0))
        b.row(terms, 0.0, 0.0)
    for g, factory in enumerate(spec.factories):
        for f, site in enumerate(block.sites):
            if (factory.name, site) not in spare:
                continue
            for t in range(weeks):
                terms = [(sched[(k, g, f, t)], 1.0) for k in range(len(block.products))]
                b.row(terms, -np.inf, spare[(factory.name, site)][t])
        for t in range(weeks):
            terms = []
            for f in range(len(block.sites)):
                for k in range(len(block.products)):
                    terms.append((dedicated[(k, g, f, t)], 1.0))
                    if (k, g, f, t) in sched:
                        terms.append((sched[(k, g, f, t)], 1.0))
            b.row(terms, -np.inf, factory.capacity[t])
    return PlanCostModel(n_plan, b.build())


def scenario_models(scenario: Scenario) -> dict[str, PlanCostModel]:
    """Every party's model by name (retailer first)."""
    blocks = plan_blocks(scenario)
    site_locations = {s.name: s.location for s in scenario.retailer.sites}
    models = {scenario.retailer.name: retailer_model(scenario.retailer, blocks, scenario.weeks)}
    for vendor, block in zip(scenario.vendors, blocks, strict=True):
        models[vendor.name] = vendor_model(vendor, block, site_locations)
    return models
