"""Built-in and generated scenarios."""

from __future__ import annotations

import numpy as np

from pivotal.errors import InputError
from pivotal.negotiation.geography import TRUCK_COST_PER_MILE, metros
from pivotal.negotiation.scenario.model import Scenario
from pivotal.negotiation.scenario.schema import scenario_from_document


def truck_example() -> Scenario:
    """A vendor near Cincinnati, a half-empty weekly truck to Dallas, 5,000 cases for Phoenix.

    Trucks carry 10,000 cases and cost USD 2.25 a mile: a dedicated truck from Cincinnati to
    Phoenix costs about USD 0.43 a case, the scheduled Dallas truck has 5,000 cases of spare
    room at USD 0.01 a case, and the retailer's own trucks move goods on from Dallas to Phoenix
    at about USD 0.24 a case. Jointly it is cheaper to ship via Dallas.
    """
    doc = {
        "name": "truck-example",
        "products": ["cases"],
        "weeks": 1,
        "retailer": {
            "name": "retailer",
            "sites": [
                {"name": "PHX", "metro": "Phoenix", "capacity": 20000.0, "holding_cost": 0.1},
                {"name": "DAL", "metro": "Dallas", "capacity": 20000.0, "holding_cost": 0.1},
            ],
            "regions": [{"name": "Phoenix", "metro": "Phoenix", "demand": {"cases": [5000.0]}}],
            "outbound_cost_per_unit_mile": TRUCK_COST_PER_MILE / 10000.0,
            "local_delivery_cost": 0.25,
            "shortage_penalty": 25.0,
            "disposal_cost": 1.0,
        },
        "vendors": [
            {
                "name": "vendor",
                "products": ["cases"],
                "factories": [
                    {
                        "name": "CIN",
                        "metro": "Cincinnati",
                        "capacity": [8000.0],
                        "production_cost": 2.0,
                    }
                ],
                "lanes": [{"factory": "CIN", "site": "DAL", "spare_room": [5000.0]}],
                "truck_cost_per_mile": TRUCK_COST_PER_MILE,
                "units_per_truck": 10000.0,
                "scheduled_cost_per_unit": 0.01,
                "overflow_cost": 50.0,
            }
        ],
    }
    return scenario_from_document(doc, source="truck-example")


BUILT_IN = {"truck-example": truck_example}


def built_in(name: str) -> Scenario:
    """A built-in scenario by name."""
    if name not in BUILT_IN:
        raise InputError(f"unknown scenario '{name}'; built-in scenarios: {', '.join(BUILT_IN)}")
    return BUILT_IN[name]()


ROOM = ((1.6, 2.0), (0.05, 0.2))
"""Interacting vendors' spare room on the hub truck in odd and even weeks (times the factory's
share of its vendor's peak weekly demand)."""


def generate_scenario(
    products: int,
    sites: int,
    regions: int,
    weeks: int,
    vendors: int,
    rng: np.random.Generator,
    *,
    interacting: bool = False,
) -> Scenario:
    """A random scenario on the bundled metros.

    Sites, regions and factories sit on distinct random metros (regions may share a metro with a
    site). Demand per product, region and week ``~ U(50, 500)`` (integers); products are dealt
    to vendors round-robin; each vendor has 1 or 2 factories whose weekly capacity covers 1.3
    times its products' peak weekly demand; about half of its factory-site lanes carry a
    scheduled truck with spare room ``~ U(0.2, 0.8)`` times an average lane's weekly flow.

    Such vendors do not interact: each one's saving is the same whatever the others do, so the
    retailer's VCG gain is 0. With ``interacting`` (at least 2 weeks), they compete for storage
    at one hub site (the first): every factory's only scheduled truck goes to the hub, with room
    ``~ U(1.6, 2.0)`` times the factory's share of its vendor's peak weekly demand in weeks 1, 3,
    ... and ``~ U(0.05, 0.2)`` times it in weeks 2, 4, ... (:data:`ROOM`), so that it pays to
    ship two weeks' goods at once and store one week's at the hub; the hub stores only 0.4 times
    the vendors' mean peak weekly demand, less than one vendor alone would like to store. The
    vendors' savings are then less than additive and the retailer's VCG gain is positive when
    two or more vendors use the hub. (Vendors sharing a factory's capacity would couple two
    vendors' private cost models, which the model, one cost per party coupled only through the
    plan, does not express.)
    """
    for value, what in (
        (products, "products"),
        (sites, "sites"),
        (regions, "regions"),
        (weeks, "weeks"),
        (vendors, "vendors"),
    ):
        if value < 1:
            raise InputError(f"{what} must be at least 1, got {value}", field=what)
    if interacting and weeks < 2:
        raise InputError(
            f"interacting vendors need at least 2 weeks (they compete for storage between "
            f"weeks), got weeks = {weeks}",
            field="weeks",
        )
    if vendors > products:
        raise InputError(
            f"vendors ({vendors}) cannot exceed products ({products}): each vendor supplies at "
            "least one product",
            field="vendors",
        )
    names = sorted(metros())
    if sites > len(names) or regions > len(names):
        raise InputError(f"at most {len(names)} sites and regions (one per bundled metro)")
    site_metros = list(rng.choice(names, sites, replace=False))
    region_metros = list(rng.choice(names, regions, replace=False))
    product_names = [f"P{k + 1}" for k in range(products)]
    demand = rng.integers(50, 501, size=(products, regions, weeks)).astype(float)
    doc_regions = [
        {
            "name": f"R{r + 1}-{region_metros[r]}",
            "metro": region_metros[r],
            "demand": {product_names[k]: demand[k, r].tolist() for k in range(products)},
        }
        for r in range(regions)
    ]
    total_weekly = demand.sum(axis=(0, 1))
    doc_sites = [
        {
            "name": f"S{f + 1}-{site_metros[f]}",
            "metro": site_metros[f],
            "capacity": float(np.ceil(2.0 * total_weekly.max() / sites)),
            "holding_cost": round(float(rng.uniform(0.05, 0.3)), 3),
        }
        for f in range(sites)
    ]
    doc_vendors = []
    peaks: list[float] = []
    for v in range(vendors):
        mine = [k for k in range(products) if k % vendors == v]
        peak = float(demand[mine].sum(axis=(0, 1)).max())
        n_fact = int(rng.integers(1, 3))
        fact_metros = list(rng.choice(names, n_fact, replace=False))
        factories = [
            {
                "name": f"F{v + 1}.{g + 1}",
                "metro": fact_metros[g],
                "capacity": [float(np.ceil(1.3 * peak / n_fact) + 1)] * weeks,
                "production_cost": round(float(rng.uniform(1.0, 3.0)), 3),
            }
            for g in range(n_fact)
        ]
        flow = peak / max(1, sites)
        lanes = [
            {
                "factory": fac["name"],
                "site": site["name"],
                "spare_room": [float(np.floor(rng.uniform(0.2, 0.8) * flow))] * weeks,
            }
            for fac in factories
            for site in doc_sites
            if rng.random() < 0.5
        ]
        if interacting:  # a big scheduled truck to the hub every other week (the docstring)
            lanes = [
                {
                    "factory": fac["name"],
                    "site": doc_sites[0]["name"],
                    "spare_room": [
                        float(np.floor(rng.uniform(*ROOM[t % 2]) * peak / n_fact))
                        for t in range(weeks)
                    ],
                }
                for fac in factories
            ]
        peaks.append(peak)
        doc_vendors.append(
            {
                "name": f"vendor{v + 1}",
                "products": [product_names[k] for k in mine],
                "factories": factories,
                "lanes": lanes,
                "truck_cost_per_mile": TRUCK_COST_PER_MILE,
                "units_per_truck": 2000.0,
                "scheduled_cost_per_unit": 0.02,
                "overflow_cost": 100.0,
            }
        )
    if interacting:
        doc_sites[0]["capacity"] = float(np.ceil(0.4 * np.mean(peaks)))
    doc = {
        "name": f"generated-k{products}-f{sites}-r{regions}-t{weeks}-v{vendors}"
        + ("-interacting" if interacting else ""),
        "products": product_names,
        "weeks": weeks,
        "retailer": {
            "name": "retailer",
            "sites": doc_sites,
            "regions": doc_regions,
            "outbound_cost_per_unit_mile": TRUCK_COST_PER_MILE / 2000.0 * 1.5,
            "local_delivery_cost": 0.5,
            "shortage_penalty": 40.0,
            "disposal_cost": 5.0,
        },
        "vendors": doc_vendors,
    }
    return scenario_from_document(doc, source="generator")
