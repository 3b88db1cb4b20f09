"""Supply-chain negotiation scenarios: a retailer, its vendors, their private data.

Three modules: :mod:`.model` (the validated frozen dataclasses), :mod:`.schema` (the JSON input
schema, its validation and :func:`load_scenario`; the format is ``docs/scenario-format.md``) and
:mod:`.builtin` (the built-in truck example and the random generator). The public names of all
three are re-exported here.
"""

from __future__ import annotations

from pivotal.negotiation.scenario.builtin import (
    BUILT_IN,
    built_in,
    generate_scenario,
    truck_example,
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
from pivotal.negotiation.scenario.schema import (
    FactoryIn,
    LaneIn,
    PlaceIn,
    RegionIn,
    RetailerIn,
    ScenarioIn,
    SiteIn,
    VendorIn,
    check_capacity,
    check_status_quo,
    delivery_costs,
    describe_validation_error,
    load_scenario,
    place,
    retailer_spec,
    scenario_distances,
    scenario_from_document,
    vendor_spec,
)

__all__ = [
    "BUILT_IN",
    "Factory",
    "FactoryIn",
    "Lane",
    "LaneIn",
    "PlaceIn",
    "Region",
    "RegionIn",
    "RetailerIn",
    "RetailerSpec",
    "Scenario",
    "ScenarioIn",
    "Site",
    "SiteIn",
    "VendorIn",
    "VendorSpec",
    "built_in",
    "check_capacity",
    "check_status_quo",
    "delivery_costs",
    "describe_validation_error",
    "generate_scenario",
    "load_scenario",
    "place",
    "retailer_spec",
    "scenario_distances",
    "scenario_from_document",
    "truck_example",
    "vendor_spec",
]
