"""The scenario file's schema and its validation into a :class:`~.model.Scenario`.

The JSON format, with a complete example that the tests load, is described in
``docs/scenario-format.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationError

from pivotal.errors import InputError
from pivotal.fileio import read_json
from pivotal.negotiation.geography import TRUCK_COST_PER_MILE, metro
from pivotal.negotiation.scenario.model import (
    Factory,
    Lane,
    Region,
    RetailerSpec,
    Scenario,
    Site,
    VendorSpec,
)

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
