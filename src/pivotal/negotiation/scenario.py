"""Supply-chain negotiation scenarios: a retailer, its vendors, their private data.

The shared plan is ``q[k, f, t]``: units of product ``k`` delivered to retailer site ``f`` in week
``t``; each vendor owns the block of the products it supplies (products are split among
vendors). The JSON format, with a complete example that the tests load, is described in
``docs/scenario-format.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationError

from pivotal.errors import InputError
from pivotal.fileio import read_json
from pivotal.negotiation.geography import TRUCK_COST_PER_MILE, metro, metros


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


# ---------------------------------------------------------------------------------- input
NonNeg = Field(ge=0)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteIn(_Model):
    name: str = Field(min_length=1)
    metro: str
    capacity: StrictFloat = NonNeg
    holding_cost: StrictFloat = NonNeg


class RegionIn(_Model):
    name: str = Field(min_length=1)
    metro: str
    demand: dict[str, list[StrictFloat]]


class RetailerIn(_Model):
    name: str = Field(min_length=1)
    sites: list[SiteIn] = Field(min_length=1)
    regions: list[RegionIn] = Field(min_length=1)
    outbound_cost_per_unit_mile: StrictFloat = NonNeg
    local_delivery_cost: StrictFloat = NonNeg
    shortage_penalty: StrictFloat = NonNeg
    disposal_cost: StrictFloat = NonNeg


class FactoryIn(_Model):
    name: str = Field(min_length=1)
    metro: str
    capacity: list[StrictFloat]
    production_cost: StrictFloat = NonNeg


class LaneIn(_Model):
    factory: str
    site: str
    spare_room: list[StrictFloat]


class VendorIn(_Model):
    name: str = Field(min_length=1)
    products: list[str] = Field(min_length=1)
    factories: list[FactoryIn] = Field(min_length=1)
    lanes: list[LaneIn] = []
    truck_cost_per_mile: StrictFloat = Field(default=TRUCK_COST_PER_MILE, ge=0)
    units_per_truck: StrictFloat = Field(gt=0)
    scheduled_cost_per_unit: StrictFloat = NonNeg
    overflow_cost: StrictFloat = NonNeg


class ScenarioIn(_Model):
    name: str = "scenario"
    products: list[str] = Field(min_length=1)
    weeks: int = Field(ge=1)
    retailer: RetailerIn
    vendors: list[VendorIn] = Field(min_length=1)


def describe_validation_error(err: ValidationError) -> str:
    """The first validation error as "field.path: message"."""
    first = err.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
    kind = first["type"]
    if kind == "missing":
        msg = "required field is missing"
    elif kind == "extra_forbidden":
        msg = "unknown field"
    elif kind in {"greater_than_equal", "greater_than"}:
        msg = (
            f"must be >= 0, got {first.get('input')!r}"
            if kind.endswith("equal")
            else (f"must be > 0, got {first.get('input')!r}")
        )
    elif kind in {"float_type", "float_parsing", "finite_number"}:
        msg = f"expected a finite number, got {first.get('input')!r}"
    else:
        msg = first["msg"]
    return f"{loc or '(document)'}: {msg}"


def _series(values: list[float], weeks: int, where: str) -> tuple[float, ...]:
    if len(values) != weeks:
        raise InputError(f"{where}: expected {weeks} weekly values, got {len(values)}", field=where)
    for v in values:
        if not np.isfinite(v):
            raise InputError(f"{where}: non-finite value {v}", field=where)
        if v < 0:
            raise InputError(f"{where}: negative value {v}; quantities must be >= 0", field=where)
    return tuple(float(v) for v in values)


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise InputError(f"{what} '{n}' is listed twice", field=what)
        seen.add(n)


def scenario_from_document(doc: Any, *, source: str = "input") -> Scenario:
    """Validate a parsed JSON document into a :class:`Scenario`.

    Raises
    ------
    InputError
        On a schema error, negative or non-finite numbers, unknown products, sites, factories or
        metros, products not supplied by exactly one vendor, or a vendor that cannot ship the
        retailer's status-quo order in some week (capacity below its products' demand).
    """
    if not isinstance(doc, dict):
        raise InputError(f"{source}: expected a JSON object describing a scenario")
    try:
        s = ScenarioIn.model_validate(doc)
    except ValidationError as err:
        raise InputError(f"{source}: {describe_validation_error(err)}") from None
    T = s.weeks
    _unique(s.products, "product")
    products = set(s.products)
    retailer = retailer_spec(s.retailer, products, T, source)
    site_names = {x.name for x in s.retailer.sites}
    owner: dict[str, str] = {}
    vendors = []
    _unique([s.retailer.name] + [v.name for v in s.vendors], "party")
    for j, v in enumerate(s.vendors):
        where = f"vendors[{j}] ('{v.name}')"
        for product in v.products:
            if product not in products:
                raise InputError(f"{source}: {where} supplies unknown product '{product}'")
            if product in owner:
                raise InputError(
                    f"{source}: product '{product}' is supplied by both '{owner[product]}' and "
                    f"'{v.name}'; each product has one vendor"
                )
            owner[product] = v.name
        vendors.append(vendor_spec(v, where, site_names, T, source))
    missing = [p for p in s.products if p not in owner]
    if missing:
        raise InputError(
            f"{source}: product '{missing[0]}' has no vendor; add it to a vendor's products"
        )
    scenario = Scenario(s.name, tuple(s.products), T, retailer, tuple(vendors))
    check_capacity(scenario)
    return scenario


def retailer_spec(r: RetailerIn, products: set[str], weeks: int, source: str) -> RetailerSpec:
    """Check a validated retailer document against the products and weeks."""
    for site in r.sites:
        metro(site.metro)
    for region in r.regions:
        metro(region.metro)
    _unique([x.name for x in r.sites], "site")
    _unique([x.name for x in r.regions], "region")
    regions = []
    for i, region in enumerate(r.regions):
        demand = {}
        for product, series in region.demand.items():
            if product not in products:
                raise InputError(
                    f"{source}: retailer.regions[{i}] ('{region.name}') has demand for unknown "
                    f"product '{product}'; products are {sorted(products)}"
                )
            demand[product] = _series(series, weeks, f"retailer.regions[{i}].demand.{product}")
        regions.append(Region(region.name, region.metro, demand))
    return RetailerSpec(
        r.name,
        tuple(Site(x.name, x.metro, x.capacity, x.holding_cost) for x in r.sites),
        tuple(regions),
        r.outbound_cost_per_unit_mile,
        r.local_delivery_cost,
        r.shortage_penalty,
        r.disposal_cost,
    )


def vendor_spec(
    v: VendorIn, where: str, site_names: set[str], weeks: int, source: str
) -> VendorSpec:
    """Check a validated vendor document against the retailer's sites and the weeks."""
    _unique([f.name for f in v.factories], f"{where} factory")
    factories = []
    for fi, f in enumerate(v.factories):
        metro(f.metro)
        factories.append(
            Factory(
                f.name,
                f.metro,
                _series(f.capacity, weeks, f"{where}.factories[{fi}].capacity"),
                f.production_cost,
            )
        )
    factory_names = {f.name for f in v.factories}
    lanes = []
    for li, ln in enumerate(v.lanes):
        if ln.factory not in factory_names:
            raise InputError(f"{source}: {where}.lanes[{li}] names unknown factory '{ln.factory}'")
        if ln.site not in site_names:
            raise InputError(
                f"{source}: {where}.lanes[{li}] names unknown site '{ln.site}'; sites are "
                f"{sorted(site_names)}"
            )
        lanes.append(
            Lane(
                ln.factory,
                ln.site,
                _series(ln.spare_room, weeks, f"{where}.lanes[{li}].spare_room"),
            )
        )
    return VendorSpec(
        v.name,
        tuple(v.products),
        tuple(factories),
        tuple(lanes),
        v.truck_cost_per_mile,
        v.units_per_truck,
        v.scheduled_cost_per_unit,
        v.overflow_cost,
    )


def check_capacity(scenario: Scenario) -> None:
    """Every vendor can ship its products' total demand in every week (the status quo)."""
    for v in scenario.vendors:
        for t in range(scenario.weeks):
            need = sum(
                region.demand.get(p, (0.0,) * scenario.weeks)[t]
                for region in scenario.retailer.regions
                for p in v.products
            )
            have = sum(f.capacity[t] for f in v.factories)
            if need > have + 1e-9:
                raise InputError(
                    f"infeasible capacity: vendor '{v.name}' can make {have:g} units in week "
                    f"{t + 1} but the retailer's status-quo order needs {need:g}; raise its "
                    "factories' capacity or lower the demand"
                )


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario from a JSON file."""
    p = Path(path)
    return scenario_from_document(read_json(p), source=str(p))


# ------------------------------------------------------------------------- built-in scenarios
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


def generate_scenario(
    products: int,
    sites: int,
    regions: int,
    weeks: int,
    vendors: int,
    rng: np.random.Generator,
) -> Scenario:
    """A random scenario on the bundled metros.

    Sites, regions and factories sit on distinct random metros (regions may share a metro with a
    site). Demand per product, region and week ``~ U(50, 500)`` (integers); products are dealt
    to vendors round-robin; each vendor has 1 or 2 factories whose weekly capacity covers 1.3
    times its products' peak weekly demand; about half of its factory-site lanes carry a
    scheduled truck with spare room ``~ U(0.2, 0.8)`` times an average lane's weekly flow.
    """
    for value, what in (
        (products, "--products"),
        (sites, "--sites"),
        (regions, "--regions"),
        (weeks, "--weeks"),
        (vendors, "--vendors"),
    ):
        if value < 1:
            raise InputError(f"{what} must be at least 1, got {value}")
    if vendors > products:
        raise InputError(f"--vendors ({vendors}) cannot exceed --products ({products})")
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
    doc = {
        "name": f"generated-k{products}-f{sites}-r{regions}-t{weeks}-v{vendors}",
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
