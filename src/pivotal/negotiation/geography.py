"""Geography and freight rates for the supply-chain scenarios.

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
from dataclasses import dataclass
from functools import cache
from importlib import resources

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


def great_circle_miles(a: Metro, b: Metro) -> float:
    """Haversine distance in miles."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(h))


def road_miles(a: str, b: str) -> float:
    """Road distance estimate between two metros: great-circle times the circuity factor."""
    return ROAD_CIRCUITY * great_circle_miles(metro(a), metro(b))
