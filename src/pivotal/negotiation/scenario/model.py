"""The scenario model: a retailer, its vendors and their private data, validated.

The shared plan is ``q[k, f, t]``: units of product ``k`` delivered to retailer site ``f`` in week
``t``; each vendor owns the block of the products it supplies (products are split among
vendors). :mod:`~pivotal.negotiation.scenario.schema` reads these from JSON
(``docs/scenario-format.md``), :mod:`~pivotal.negotiation.scenario.builtin` makes the built-in
and generated ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Site:
    """A retailer site: storage capacity (units) and holding cost per unit-week."""

    name: str
    metro: str
    capacity: float
    holding_cost: float


@dataclass(frozen=True)
class Region:
    """A customer region with weekly demand per product."""

    name: str
    metro: str
    demand: dict[str, tuple[float, ...]]


@dataclass(frozen=True)
class RetailerSpec:
    """The retailer's private data."""

    name: str
    sites: tuple[Site, ...]
    regions: tuple[Region, ...]
    outbound_cost_per_unit_mile: float
    local_delivery_cost: float
    shortage_penalty: float
    disposal_cost: float


@dataclass(frozen=True)
class Factory:
    """A vendor factory: weekly capacity (all products) and production cost per unit."""

    name: str
    metro: str
    capacity: tuple[float, ...]
    production_cost: float


@dataclass(frozen=True)
class Lane:
    """A scheduled truck from a factory to a site with spare room per week."""

    factory: str
    site: str
    spare_room: tuple[float, ...]


@dataclass(frozen=True)
class VendorSpec:
    """A vendor's private data."""

    name: str
    products: tuple[str, ...]
    factories: tuple[Factory, ...]
    lanes: tuple[Lane, ...]
    truck_cost_per_mile: float
    units_per_truck: float
    scheduled_cost_per_unit: float
    overflow_cost: float


@dataclass(frozen=True)
class Scenario:
    """A validated negotiation scenario."""

    name: str
    products: tuple[str, ...]
    weeks: int
    retailer: RetailerSpec
    vendors: tuple[VendorSpec, ...]
    notes: str = field(default="", compare=False)

    @cached_property
    def parties(self) -> tuple[str, ...]:
        """The retailer first, then the vendors."""
        return (self.retailer.name, *(v.name for v in self.vendors))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        r = self.retailer
        return {
            "name": self.name,
            "products": list(self.products),
            "weeks": self.weeks,
            "retailer": {
                "name": r.name,
                "sites": [vars(s).copy() for s in r.sites],
                "regions": [
                    {
                        "name": g.name,
                        "metro": g.metro,
                        "demand": {k: list(v) for k, v in g.demand.items()},
                    }
                    for g in r.regions
                ],
                "outbound_cost_per_unit_mile": r.outbound_cost_per_unit_mile,
                "local_delivery_cost": r.local_delivery_cost,
                "shortage_penalty": r.shortage_penalty,
                "disposal_cost": r.disposal_cost,
            },
            "vendors": [
                {
                    "name": v.name,
                    "products": list(v.products),
                    "factories": [
                        {
                            "name": f.name,
                            "metro": f.metro,
                            "capacity": list(f.capacity),
                            "production_cost": f.production_cost,
                        }
                        for f in v.factories
                    ],
                    "lanes": [
                        {"factory": ln.factory, "site": ln.site, "spare_room": list(ln.spare_room)}
                        for ln in v.lanes
                    ],
                    "truck_cost_per_mile": v.truck_cost_per_mile,
                    "units_per_truck": v.units_per_truck,
                    "scheduled_cost_per_unit": v.scheduled_cost_per_unit,
                    "overflow_cost": v.overflow_cost,
                }
                for v in self.vendors
            ],
        }
