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

from pivotal.negotiation.geography import DistanceTable, Location


@dataclass(frozen=True)
class Site:
    """A retailer site: storage capacity (units) and holding cost per unit-week."""

    name: str
    location: Location
    capacity: float
    holding_cost: float


@dataclass(frozen=True)
class Region:
    """A customer region with weekly demand per product."""

    name: str
    location: Location
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the scenario's ``retailer`` section)."""
        return {
            "name": self.name,
            "sites": [
                {
                    "name": s.name,
                    **s.location.to_dict(),
                    "capacity": s.capacity,
                    "holding_cost": s.holding_cost,
                }
                for s in self.sites
            ],
            "regions": [
                {
                    "name": g.name,
                    **g.location.to_dict(),
                    "demand": {k: list(v) for k, v in g.demand.items()},
                }
                for g in self.regions
            ],
            "outbound_cost_per_unit_mile": self.outbound_cost_per_unit_mile,
            "local_delivery_cost": self.local_delivery_cost,
            "shortage_penalty": self.shortage_penalty,
            "disposal_cost": self.disposal_cost,
        }


@dataclass(frozen=True)
class Factory:
    """A vendor factory: weekly capacity (all products) and production cost per unit."""

    name: str
    location: Location
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (one of the scenario's ``vendors``)."""
        return {
            "name": self.name,
            "products": list(self.products),
            "factories": [
                {
                    "name": f.name,
                    **f.location.to_dict(),
                    "capacity": list(f.capacity),
                    "production_cost": f.production_cost,
                }
                for f in self.factories
            ],
            "lanes": [
                {"factory": ln.factory, "site": ln.site, "spare_room": list(ln.spare_room)}
                for ln in self.lanes
            ],
            "truck_cost_per_mile": self.truck_cost_per_mile,
            "units_per_truck": self.units_per_truck,
            "scheduled_cost_per_unit": self.scheduled_cost_per_unit,
            "overflow_cost": self.overflow_cost,
        }


@dataclass(frozen=True)
class Scenario:
    """A validated negotiation scenario."""

    name: str
    products: tuple[str, ...]
    weeks: int
    retailer: RetailerSpec
    vendors: tuple[VendorSpec, ...]
    notes: str = field(default="", compare=False)
    distances: DistanceTable | None = None
    """The road miles the scenario gives, when its locations are names in a distance table."""

    @cached_property
    def parties(self) -> tuple[str, ...]:
        """The retailer first, then the vendors."""
        return (self.retailer.name, *(v.name for v in self.vendors))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (a distance table inline, restricted to the locations used)."""
        doc: dict[str, Any] = {
            "name": self.name,
            "products": list(self.products),
            "weeks": self.weeks,
            "retailer": self.retailer.to_dict(),
            "vendors": [v.to_dict() for v in self.vendors],
        }
        if self.distances is not None:
            doc["distances"] = self.distances.to_dict(self.location_names())
        return doc

    def location_names(self) -> set[str]:
        """The names of the distance table's locations that sites, regions and factories use."""
        r = self.retailer
        places = [
            *(s.location for s in r.sites),
            *(g.location for g in r.regions),
            *(f.location for v in self.vendors for f in v.factories),
        ]
        return {p.name for p in places if p.kind == "table"}
