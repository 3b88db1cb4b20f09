"""The scenario file's schema and its validation into a :class:`~.model.Scenario`.

The JSON format, with a complete example that the tests load, is described in
``docs/scenario-format.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationError

from pivotal.errors import InputError
from pivotal.fileio import read_json
from pivotal.negotiation.geography import (
    TRUCK_COST_PER_MILE,
    DistanceTable,
    Location,
    coordinates,
    distance_table,
    metro_location,
    read_distance_csv,
    road_miles,
)
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


class PlaceIn(_Model):
    """Where a site, region or factory is: exactly one of ``metro``, ``latitude`` with
    ``longitude``, or ``location`` (a name in the scenario's ``distances``)."""

    metro: str | None = None
    latitude: StrictFloat | None = Field(default=None, ge=-90, le=90)
    longitude: StrictFloat | None = Field(default=None, ge=-180, le=180)
    location: str | None = Field(default=None, min_length=1)


class SiteIn(PlaceIn):
    name: str = Field(min_length=1)
    capacity: StrictFloat = NonNeg
    holding_cost: StrictFloat = NonNeg


class RegionIn(PlaceIn):
    name: str = Field(min_length=1)
    demand: dict[str, list[StrictFloat]]


class RetailerIn(_Model):
    name: str = Field(min_length=1)
    sites: list[SiteIn] = Field(min_length=1)
    regions: list[RegionIn] = Field(min_length=1)
    outbound_cost_per_unit_mile: StrictFloat = NonNeg
    local_delivery_cost: StrictFloat = NonNeg
    shortage_penalty: StrictFloat = NonNeg
    disposal_cost: StrictFloat = NonNeg


class FactoryIn(PlaceIn):
    name: str = Field(min_length=1)
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
    distances: str | dict[str, dict[str, StrictFloat]] | None = None


_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


def describe_validation_error(err: ValidationError) -> str:
    """The first validation error as "field.path: message"."""
    first = err.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
    kind = first["type"]
    if kind == "missing":
        msg = "required field is missing"
    elif kind == "extra_forbidden":
        msg = "unknown field"
    elif kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        msg = f"must be {op} {first.get('ctx', {}).get(key)}, got {first.get('input')!r}"
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


def scenario_from_document(
    doc: Any, *, source: str = "input", base: Path | None = None
) -> Scenario:
    """Validate a parsed JSON document into a :class:`Scenario`.

    ``base`` is the folder a ``distances`` CSV path is relative to (the scenario file's folder;
    the current folder if None).

    Raises
    ------
    InputError
        On a schema error, negative or non-finite numbers, unknown products, sites, factories,
        metros or locations, a distance the scenario needs and does not give, a lane listed twice,
        products not supplied by exactly one vendor, a status quo that is not unique
        (:func:`check_status_quo`), or a vendor that cannot ship the retailer's status-quo order in
        some week (capacity below its products' demand).
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
    table = scenario_distances(s.distances, source, base)
    retailer = retailer_spec(s.retailer, products, T, source, distances=table)
    sites = {x.name: x.location for x in retailer.sites}
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
        vendors.append(vendor_spec(v, where, sites, T, source, distances=table))
    missing = [p for p in s.products if p not in owner]
    if missing:
        raise InputError(
            f"{source}: product '{missing[0]}' has no vendor; add it to a vendor's products"
        )
    scenario = Scenario(s.name, tuple(s.products), T, retailer, tuple(vendors), distances=table)
    check_capacity(scenario)
    return scenario


def scenario_distances(
    given: str | Mapping[str, Mapping[str, float]] | None, source: str, base: Path | None
) -> DistanceTable | None:
    """The scenario's distance table: inline, or read from a CSV file (a path relative to
    ``base``), or None."""
    if given is None:
        return None
    try:
        if isinstance(given, str):
            path = Path(given)
            if not path.is_absolute() and base is not None:
                path = base / path
            rows: Mapping[str, Mapping[str, float]] = read_distance_csv(path, where="distances")
        else:
            rows = given
        return distance_table(rows, where="distances")
    except InputError as exc:
        raise InputError(f"{source}: {exc}", field="distances") from None


def place(p: PlaceIn, where: str, distances: DistanceTable | None, source: str) -> Location:
    """Where a site, region or factory is (see :class:`PlaceIn`).

    Raises
    ------
    InputError
        Unless exactly one way is given; on an unknown metro; a ``location`` without distances or
        not in them; coordinates in a scenario that gives distances.
    """
    has_coordinates = p.latitude is not None or p.longitude is not None
    ways = (p.metro is not None) + has_coordinates + (p.location is not None)
    if ways != 1:
        raise InputError(
            f"{source}: {where}: give exactly one of metro (a bundled US metro), latitude and "
            "longitude, or location (a name in the scenario's distances)",
            field=where,
        )
    if distances is not None and p.location is None:
        raise InputError(
            f"{source}: {where}: the scenario gives distances, so every site, region and factory "
            "is given by location (a name in distances)",
            field=where,
        )
    if p.location is not None:
        if distances is None:
            raise InputError(
                f"{source}: {where}.location: '{p.location}' names a location in a distance "
                "table, but the scenario gives no distances",
                field=f"{where}.location",
            )
        if p.location not in distances.names:
            known = sorted(distances.names)
            raise InputError(
                f"{source}: {where}.location: '{p.location}' is not in the distances; they name "
                + ", ".join(known[:12])
                + (" ..." if len(known) > 12 else ""),
                field=f"{where}.location",
            )
        return Location("table", p.location, table=distances)
    if p.metro is not None:
        try:
            return metro_location(p.metro)
        except InputError as exc:
            raise InputError(f"{source}: {where}.metro: {exc}", field=f"{where}.metro") from None
    if p.latitude is None or p.longitude is None:
        missing = "longitude" if p.longitude is None else "latitude"
        raise InputError(
            f"{source}: {where}.{missing}: required with "
            f"{'latitude' if missing == 'longitude' else 'longitude'}",
            field=f"{where}.{missing}",
        )
    return coordinates(p.latitude, p.longitude)


def _miles(a: Location, b: Location, what: str, source: str) -> float:
    """Road miles for a pair the scenario needs; a missing one is named."""
    try:
        return road_miles(a, b)
    except InputError:
        raise InputError(
            f"{source}: distances: no road distance between '{a.describe()}' and "
            f"'{b.describe()}' ({what}); the distances must give every site-region and "
            "factory-site pair",
            field="distances",
        ) from None


def retailer_spec(
    r: RetailerIn,
    products: set[str],
    weeks: int,
    source: str,
    *,
    distances: DistanceTable | None = None,
) -> RetailerSpec:
    """Check a validated retailer document against the products and weeks (and the distances,
    when the scenario gives a table); the status quo must be unique (:func:`check_status_quo`)."""
    _unique([x.name for x in r.sites], "site")
    _unique([x.name for x in r.regions], "region")
    sites = tuple(
        Site(
            x.name,
            place(x, f"retailer.sites[{i}]", distances, source),
            x.capacity,
            x.holding_cost,
        )
        for i, x in enumerate(r.sites)
    )
    regions = []
    for i, region in enumerate(r.regions):
        location = place(region, f"retailer.regions[{i}]", distances, source)
        demand = {}
        for product, series in region.demand.items():
            if product not in products:
                raise InputError(
                    f"{source}: retailer.regions[{i}] ('{region.name}') has demand for unknown "
                    f"product '{product}'; products are {sorted(products)}"
                )
            demand[product] = _series(series, weeks, f"retailer.regions[{i}].demand.{product}")
        regions.append(Region(region.name, location, demand))
    spec = RetailerSpec(
        r.name,
        sites,
        tuple(regions),
        r.outbound_cost_per_unit_mile,
        r.local_delivery_cost,
        r.shortage_penalty,
        r.disposal_cost,
    )
    check_status_quo(spec, source)
    return spec


def delivery_costs(spec: RetailerSpec, region: int, source: str = "retailer") -> list[float]:
    """The retailer's cost per unit from each site to a region (local delivery plus road
    miles times the outbound rate)."""
    g = spec.regions[region]
    return [
        spec.local_delivery_cost
        + spec.outbound_cost_per_unit_mile
        * _miles(s.location, g.location, f"site '{s.name}' to region '{g.name}'", source)
        for s in spec.sites
    ]


def check_status_quo(spec: RetailerSpec, source: str = "retailer") -> None:
    """The status quo, the retailer's cheapest plan on its own, must be unique.

    It is the just-in-time plan when every holding cost (of a site that can store anything) and
    the disposal cost are positive and
    each region with demand has one cheapest site, strictly cheaper than the shortage penalty
    (or the penalty strictly cheaper than every site): the retailer then orders each region's
    demand in its week into that site (or none of it), and nothing else. Otherwise several plans
    cost the retailer the same and the vendors' status-quo costs (so their VCG gains) would
    depend on which one a solver returns: such scenarios are refused. Ties are within 1e-9
    relative.

    Raises
    ------
    InputError
        Naming the field that makes the status quo not unique.
    """
    for i, site in enumerate(spec.sites):
        if site.holding_cost <= 0 and site.capacity > 0:
            raise InputError(
                f"{source}: retailer.sites[{i}] ('{site.name}').holding_cost: must be > 0, got "
                f"{site.holding_cost:g}; with free storage the retailer's status quo (its "
                "cheapest plan on its own) is not unique: it could order any amount early",
                field=f"retailer.sites[{i}].holding_cost",
            )
    if spec.disposal_cost <= 0:
        raise InputError(
            f"{source}: retailer.disposal_cost: must be > 0, got {spec.disposal_cost:g}; with "
            "free disposal the retailer's status quo (its cheapest plan on its own) is not "
            "unique: it could order any amount more and dispose of it",
            field="retailer.disposal_cost",
        )
    for r, region in enumerate(spec.regions):
        if not any(v > 0 for series in region.demand.values() for v in series):
            continue
        costs = delivery_costs(spec, r, source)
        best = min(costs)
        tie = 1e-9 * max(1.0, abs(best), spec.shortage_penalty)
        cheapest = [spec.sites[f].name for f, c in enumerate(costs) if c - best <= tie]
        where = f"retailer.regions[{r}] ('{region.name}')"
        if len(cheapest) > 1:
            raise InputError(
                f"{source}: {where}: sites {', '.join(repr(x) for x in cheapest)} serve it at "
                f"the same cost ({best:.6g} a unit), so the retailer's status quo (its cheapest "
                "plan on its own) is not unique; move one site or change the distances",
                field=f"retailer.regions[{r}]",
            )
        if abs(best - spec.shortage_penalty) <= tie:
            raise InputError(
                f"{source}: {where}: serving it from site '{cheapest[0]}' costs the shortage "
                f"penalty ({best:.6g} a unit), so the retailer's status quo (its cheapest plan on "
                "its own) is not unique; change retailer.shortage_penalty",
                field="retailer.shortage_penalty",
            )


def vendor_spec(
    v: VendorIn,
    where: str,
    sites: Mapping[str, Location],
    weeks: int,
    source: str,
    *,
    distances: DistanceTable | None = None,
) -> VendorSpec:
    """Check a validated vendor document against the retailer's sites (by name, with their
    locations), the weeks and the distances, when the scenario gives a table."""
    _unique([f.name for f in v.factories], f"{where} factory")
    factories = []
    for fi, f in enumerate(v.factories):
        factory = Factory(
            f.name,
            place(f, f"{where}.factories[{fi}]", distances, source),
            _series(f.capacity, weeks, f"{where}.factories[{fi}].capacity"),
            f.production_cost,
        )
        for site, location in sites.items():
            _miles(factory.location, location, f"factory '{f.name}' to site '{site}'", source)
        factories.append(factory)
    factory_names = {f.name for f in v.factories}
    lanes = []
    first: dict[tuple[str, str], int] = {}
    for li, ln in enumerate(v.lanes):
        if (ln.factory, ln.site) in first:
            raise InputError(
                f"{source}: {where}.lanes[{li}]: the lane {ln.factory} -> {ln.site} is listed "
                f"twice (also lanes[{first[(ln.factory, ln.site)]}]); give one lane per factory "
                "and site with the total spare room per week",
                field=f"{where}.lanes[{li}]",
            )
        first[(ln.factory, ln.site)] = li
        if ln.factory not in factory_names:
            raise InputError(f"{source}: {where}.lanes[{li}] names unknown factory '{ln.factory}'")
        if ln.site not in sites:
            raise InputError(
                f"{source}: {where}.lanes[{li}] names unknown site '{ln.site}'; sites are "
                f"{sorted(sites)}"
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
    return scenario_from_document(read_json(p), source=str(p), base=p.parent)
