"""Geography and freight rates for the supply-chain scenarios.

A site, region or factory is at a :class:`Location`: a bundled metro (by name), coordinates
(latitude and longitude), or a name in a :class:`DistanceTable` of road miles that the scenario
gives (inline or as a CSV file, :func:`read_distance_csv`). Road miles between two locations
(:func:`road_miles`) come from the table when the scenario has one, else from the coordinates:

- Metro coordinates: ``pivotal/data/us_metros.csv``, downtown coordinates of 30 US metro areas
  rounded to 0.01 degree (public-domain values as in the U.S. Census Bureau's Gazetteer place
  files).
- Distances: great-circle (haversine, Earth radius 3,958.8 miles) times a road circuity factor
  of 1.2, the value measured for US road networks by Ballou, Rahardja & Sakai, "Selected
  country circuity factors for road and rail network distances", International Journal of
  Physical Distribution & Logistics Management 32(1), 2002 (US: 1.20).
- Truck cost: USD 2.25 per mile, the total marginal cost per truck mile reported for 2022 by
  the American Transportation Research Institute, "An Analysis of the Operational Costs of
  Trucking: 2023 Update" (USD 2.251).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from pivotal.errors import InputError

EARTH_RADIUS_MILES = 3958.8
ROAD_CIRCUITY = 1.2
TRUCK_COST_PER_MILE = 2.25


@dataclass(frozen=True)
class Metro:
    """A metro area with its coordinates (degrees)."""

    name: str
    state: str
    latitude: float
    longitude: float


@cache
def metros() -> dict[str, Metro]:
    """The bundled metro table, by name."""
    text = resources.files("pivotal.data").joinpath("us_metros.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return {
        r["metro"]: Metro(r["metro"], r["state"], float(r["latitude"]), float(r["longitude"]))
        for r in rows
    }


def metro(name: str) -> Metro:
    """Look up a metro by name; the error lists the known ones."""
    table = metros()
    if name not in table:
        raise InputError(
            f"unknown metro '{name}'; known metros: {', '.join(sorted(table))}", field=name
        )
    return table[name]


class _Point(Protocol):
    @property
    def latitude(self) -> float: ...

    @property
    def longitude(self) -> float: ...


def great_circle_miles(a: _Point, b: _Point) -> float:
    """Haversine distance in miles."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class DistanceTable:
    """Road miles between named locations, as the scenario gives them (symmetric: the distance
    from ``a`` to ``b`` is the one from ``b`` to ``a``; a location is 0 miles from itself)."""

    miles: Mapping[tuple[str, str], float]
    """Every given pair, in both orders."""

    @property
    def names(self) -> frozenset[str]:
        """The locations the table names."""
        return frozenset(a for a, _ in self.miles)

    def between(self, a: str, b: str) -> float | None:
        """Miles from ``a`` to ``b``, or None when the table does not give them."""
        if a == b:
            return 0.0
        return self.miles.get((a, b))

    def to_dict(self, names: set[str] | None = None) -> dict[str, dict[str, float]]:
        """The inline JSON form (each pair once), restricted to ``names`` if given."""
        out: dict[str, dict[str, float]] = {}
        for (a, b), miles in sorted(self.miles.items()):
            if a < b and (names is None or (a in names and b in names)):
                out.setdefault(a, {})[b] = miles
        return out


def distance_table(rows: Mapping[str, Mapping[str, float]], *, where: str) -> DistanceTable:
    """Validate ``{from: {to: miles}}`` into a table.

    Raises
    ------
    InputError
        On a negative or non-finite distance, a non-zero distance from a location to itself, or a
        pair given twice (``a``-``b`` and ``b``-``a``) with different distances.
    """
    miles: dict[tuple[str, str], float] = {}
    for a, row in rows.items():
        for b, value in row.items():
            d = float(value)
            at = f"{where}: the distance from '{a}' to '{b}'"
            if not math.isfinite(d) or d < 0:
                raise InputError(f"{at} must be a finite number >= 0, got {value}", field=where)
            if a == b:
                if d != 0:
                    raise InputError(f"{at} must be 0 (the same location), got {d:g}", field=where)
                continue
            if (a, b) in miles and miles[(a, b)] != d:
                raise InputError(
                    f"{at} is given as {d:g} and as {miles[(a, b)]:g}; give it once",
                    field=where,
                )
            miles[(a, b)] = miles[(b, a)] = d
    return DistanceTable(miles)


def read_distance_csv(path: Path, *, where: str) -> dict[str, dict[str, float]]:
    """Read a distance matrix CSV: a header row naming the columns (its first cell is a label
    and is ignored), then one row per location, its name first and then the road miles to each
    column's location; an empty cell gives no distance.

    Raises
    ------
    InputError
        If the file cannot be read, a row has the wrong number of cells, a name is empty or
        repeated, or a cell is not a number.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(
            f"{where}: cannot read the distance matrix {path}: {exc.strerror or exc}", field=where
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"{where}: {path} is not a UTF-8 text file", field=where) from None
    rows = [r for r in csv.reader(text.splitlines()) if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise InputError(
            f"{where}: {path} needs a header row of location names and one row per location",
            field=where,
        )
    columns = [c.strip() for c in rows[0][1:]]
    _names_once(columns, f"{where}: {path} header", where)
    _names_once([r[0].strip() for r in rows[1:]], f"{where}: {path} first column", where)
    out: dict[str, dict[str, float]] = {}
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(columns) + 1:
            raise InputError(
                f"{where}: {path} line {i} has {len(row)} cells, the header {len(columns) + 1}",
                field=where,
            )
        name = row[0].strip()
        out[name] = {}
        for col, cell in zip(columns, row[1:], strict=True):
            if not cell.strip():
                continue
            try:
                out[name][col] = float(cell)
            except ValueError:
                raise InputError(
                    f"{where}: {path} line {i} ('{name}' to '{col}'): {cell.strip()!r} is not a "
                    "number of miles",
                    field=where,
                ) from None
    return out


def _names_once(names: list[str], what: str, where: str) -> None:
    seen: set[str] = set()
    for n in names:
        if not n:
            raise InputError(f"{what} has an empty location name", field=where)
        if n in seen:
            raise InputError(f"{what} names '{n}' twice", field=where)
        seen.add(n)


LocationKind = Literal["metro", "coordinates", "table"]


@dataclass(frozen=True)
class Location:
    """Where a site, region or factory is.

    ``kind`` says how the scenario gives it: ``metro`` (``name`` is a bundled metro, with its
    coordinates), ``coordinates`` (``latitude`` and ``longitude`` in degrees) or ``table``
    (``name`` is a location of the scenario's distance table, which it carries; no
    coordinates).
    """

    kind: LocationKind
    name: str = ""
    latitude: float | None = None
    longitude: float | None = None
    table: DistanceTable | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON fields that give this location."""
        if self.kind == "metro":
            return {"metro": self.name}
        if self.kind == "coordinates":
            return {"latitude": self.latitude, "longitude": self.longitude}
        return {"location": self.name}

    def describe(self) -> str:
        """A short name for messages."""
        if self.kind == "coordinates":
            return f"({self.latitude:g}, {self.longitude:g})"
        return self.name


def metro_location(name: str) -> Location:
    """A bundled metro's location (raises on an unknown metro)."""
    m = metro(name)
    return Location("metro", m.name, m.latitude, m.longitude)


def coordinates(latitude: float, longitude: float) -> Location:
    """A location by coordinates (degrees)."""
    return Location("coordinates", "", float(latitude), float(longitude))


def _as_location(a: str | Location) -> Location:
    return a if isinstance(a, Location) else metro_location(a)


def road_miles(a: str | Location, b: str | Location) -> float:
    """Road miles between two locations (a string names a bundled metro).

    From the distance table when both are table locations, else great-circle times the circuity
    factor.

    Raises
    ------
    InputError
        If the table does not give the distance, or one location is in a table and the other not.
    """
    la, lb = _as_location(a), _as_location(b)
    if la.kind == "table" or lb.kind == "table":
        table = la.table or lb.table
        miles = None
        if la.kind == lb.kind and table is not None:
            miles = table.between(la.name, lb.name)
        if miles is None:
            raise InputError(
                f"no road distance between '{la.describe()}' and '{lb.describe()}'; give it in "
                "the scenario's distances",
                field="distances",
            )
        return miles
    assert la.latitude is not None and la.longitude is not None  # metro or coordinates
    assert lb.latitude is not None and lb.longitude is not None
    return ROAD_CIRCUITY * great_circle_miles(
        _LatLon(la.latitude, la.longitude), _LatLon(lb.latitude, lb.longitude)
    )


@dataclass(frozen=True)
class _LatLon:
    latitude: float
    longitude: float
