"""Splitting a negotiation into public terms and each party's private data.

In a real deployment nobody holds a whole :class:`~pivotal.negotiation.scenario.Scenario`. The
coordinator gets the *public terms* (:class:`NegotiationConfig`): party names, the plan's
structure (sites with their metros, each vendor's products, weeks), tolerances, the activity fee
and the round deadline. Each party keeps its *private data* (its retailer or vendor section of a
scenario) on its own machine and builds its cost model from it and the public plan structure.

``split_scenario`` writes both from a scenario, for trials and tests.

The terms also carry public *bounds* every party agrees to (:class:`AnswerBounds`): the largest
magnitude of a plan entry and of a cost that an answer may carry. The coordinator refuses an
answer outside them (HTTP 422 naming the entry and the bound), so one party cannot push the
shared computation to magnitudes where it breaks down. ``split_scenario`` derives them from the
scenario, generous by :data:`BOUND_FACTOR`: ``max_quantity`` is that factor times the total
demand (no honest plan entry comes near the total demand: over the joint and counterfactual runs
of the test scenarios the largest is 1.08 times it), and ``max_cost`` that factor times the
parties' total cost at the status quo (costs are non-negative, and no plan the protocol asks a
party to cost is worse for everybody together than the status quo). A config without bounds gets
:data:`DEFAULT_MAX_QUANTITY` and :data:`DEFAULT_MAX_COST`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from pivotal.errors import InputError
from pivotal.fileio import read_json
from pivotal.names import check_name
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.agents import LpParty
from pivotal.negotiation.cost_models import Block, retailer_model, scenario_models, vendor_model
from pivotal.negotiation.geography import DistanceTable, Location
from pivotal.negotiation.scenario import (
    PlaceIn,
    RetailerIn,
    Scenario,
    VendorIn,
    describe_validation_error,
    place,
    retailer_spec,
    scenario_distances,
    vendor_spec,
)
from pivotal.negotiation.session import MAX_WARM_PLAIN_ROUNDS, WARM_PLAIN_ROUNDS, SessionTerms

SCHEMA_VERSION = 1
BOUND_FACTOR = 10.0
"""How generous the bounds ``split_scenario`` derives are (times the honest scale)."""
DEFAULT_MAX_QUANTITY = 1e9
"""``max_quantity`` of a config that gives no bounds."""
DEFAULT_MAX_COST = 1e15
"""``max_cost`` of a config that gives no bounds."""


def _party_name(name: str) -> str:
    return check_name(name, what="party")


PartyName = Annotated[str, AfterValidator(_party_name)]
"""A party's name (:data:`pivotal.names.NAME_PATTERN`; ``operator`` and the other service names
are reserved): it names the party's token file and its URLs."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteRef(PlaceIn):
    """A retailer site as the vendors see it: its name and where it is (a metro, coordinates or
    a location name that the parties' private distances give)."""

    name: str = Field(min_length=1)

    def place(self) -> dict[str, Any]:
        """The fields that give where the site is."""
        return self.model_dump(exclude={"name"}, exclude_none=True)


class VendorRef(_Model):
    """A vendor as the others see it: its name and the products it supplies."""

    name: PartyName
    products: list[str] = Field(min_length=1)


class AdmmTerms(_Model):
    """The protocol's stopping rule, and where the counterfactual runs start (``true``: from
    the joint run's final plan and prices, after it; ``false``: cold, beside it)."""

    eps_abs: float = Field(default=1e-6, gt=0, allow_inf_nan=False)
    eps_rel: float = Field(default=1e-6, ge=0, allow_inf_nan=False)
    max_rounds: int = Field(default=500, ge=1)
    warm_start_counterfactuals: StrictBool = True
    warm_plain_rounds: StrictInt = Field(default=WARM_PLAIN_ROUNDS, ge=0, le=MAX_WARM_PLAIN_ROUNDS)
    """Rounds of plain ADMM a warm-started counterfactual run tries first (0: none)."""


class AnswerBounds(_Model):
    """Public bounds on what an answer may carry (see the module docstring).

    The ceilings (1e15 units, 1e20 money) keep every sum of squares the coordinator forms far
    from float overflow, whatever the config says."""

    max_quantity: float = Field(default=DEFAULT_MAX_QUANTITY, gt=0, le=1e15, allow_inf_nan=False)
    max_cost: float = Field(default=DEFAULT_MAX_COST, gt=0, le=1e20, allow_inf_nan=False)


class NegotiationConfig(_Model):
    """The public terms of a negotiation (the coordinator's ``--config``)."""

    schema_version: Literal[1] = 1
    name: str = "negotiation"
    hub: PartyName
    weeks: int = Field(ge=1)
    sites: list[SiteRef] = Field(min_length=1)
    vendors: list[VendorRef] = Field(min_length=1)
    activity_fee: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    admm: AdmmTerms = AdmmTerms()
    round_deadline_seconds: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    bounds: AnswerBounds = AnswerBounds()

    @property
    def parties(self) -> tuple[str, ...]:
        """The hub first, then the vendors."""
        return (self.hub, *(v.name for v in self.vendors))

    def blocks(self) -> tuple[Block, ...]:
        """One plan block per vendor, in vendor order."""
        sites = tuple(s.name for s in self.sites)
        return tuple(Block(v.name, tuple(v.products), sites, self.weeks) for v in self.vendors)

    def settings(self) -> AdmmSettings:
        """The ADMM settings of the terms."""
        a = self.admm
        return AdmmSettings(eps_abs=a.eps_abs, eps_rel=a.eps_rel, max_rounds=a.max_rounds)

    def terms(self, *, keep_plans: bool = True) -> SessionTerms:
        """The session's terms."""
        return SessionTerms(
            self.hub,
            tuple(v.name for v in self.vendors),
            tuple(b.size for b in self.blocks()),
            self.settings(),
            activity_fee=self.activity_fee,
            warm_start_counterfactuals=self.admm.warm_start_counterfactuals,
            warm_plain_rounds=self.admm.warm_plain_rounds,
            keep_plans=keep_plans,
            max_quantity=self.bounds.max_quantity,
            max_cost=self.bounds.max_cost,
        )


def config_from_document(doc: Any, *, source: str = "config") -> NegotiationConfig:
    """Validate public terms.

    Raises
    ------
    InputError
        On a schema error, duplicate names, unknown metros or a product with two vendors.
    """
    try:
        config = NegotiationConfig.model_validate(doc)
    except ValidationError as err:
        raise InputError(f"{source}: {describe_validation_error(err)}") from None
    names = config.parties
    if len(set(names)) != len(names):
        raise InputError(f"{source}: party names must be unique, got {list(names)}")
    site_names = [s.name for s in config.sites]
    if len(set(site_names)) != len(site_names):
        raise InputError(f"{source}: site names must be unique")
    for i, s in enumerate(config.sites):
        if s.location is None:  # a table's name is resolved by each party, with its distances
            place(s, f"sites[{i}]", None, source)
    products = [p for v in config.vendors for p in v.products]
    if len(set(products)) != len(products):
        raise InputError(f"{source}: each product has exactly one vendor")
    config.terms()
    return config


def load_config(path: str | Path) -> NegotiationConfig:
    """Read public terms from a JSON file."""
    return config_from_document(read_json(Path(path)), source=str(path))


class PrivateRetailer(_Model):
    """The retailer's private data file."""

    schema_version: Literal[1] = 1
    party: str
    retailer: RetailerIn
    distances: dict[str, dict[str, StrictFloat]] | None = None


class PrivateVendor(_Model):
    """A vendor's private data file."""

    schema_version: Literal[1] = 1
    party: str
    vendor: VendorIn
    distances: dict[str, dict[str, StrictFloat]] | None = None


def party_from_private(doc: Any, config: NegotiationConfig, *, source: str = "private") -> LpParty:
    """Build a party's agent from its private data and the public terms.

    Raises
    ------
    InputError
        If the data does not validate, names another party, or disagrees with the public plan
        structure (products, sites).
    """
    if not isinstance(doc, dict):
        raise InputError(f"{source}: expected a JSON object with 'party' and its data")
    blocks = config.blocks()
    products = {p for v in config.vendors for p in v.products}
    try:
        if "retailer" in doc:
            r = PrivateRetailer.model_validate(doc)
            if r.party != config.hub or r.retailer.name != config.hub:
                raise InputError(
                    f"{source}: retailer data for '{r.retailer.name}' but the hub is "
                    f"'{config.hub}'",
                    field="party",
                )
            table = scenario_distances(r.distances, source, None)
            spec = retailer_spec(r.retailer, products, config.weeks, source, distances=table)
            public = [(s.name, s.place()) for s in config.sites]
            if [(s.name, s.location.to_dict()) for s in spec.sites] != public:
                raise InputError(
                    f"{source}: the retailer's sites {[s.name for s in spec.sites]} differ from "
                    f"the public terms' sites {[s for s, _ in public]} (same names, places, "
                    "order)",
                    field="retailer.sites",
                )
            return LpParty(r.party, retailer_model(spec, blocks, config.weeks))
        v = PrivateVendor.model_validate(doc)
    except ValidationError as err:
        raise InputError(f"{source}: {describe_validation_error(err)}") from None
    names = [x.name for x in config.vendors]
    if v.party not in names or v.vendor.name != v.party:
        raise InputError(
            f"{source}: vendor data for '{v.vendor.name}' (party '{v.party}'), but the vendors "
            f"are {names}",
            field="party",
        )
    block = blocks[names.index(v.party)]
    if tuple(v.vendor.products) != block.products:
        raise InputError(
            f"{source}: vendor '{v.party}' lists products {v.vendor.products}, the public terms "
            f"{list(block.products)}",
            field="vendor.products",
        )
    table = scenario_distances(v.distances, source, None)
    sites = _site_locations(config, table, source)
    vspec = vendor_spec(
        v.vendor, f"vendor ('{v.party}')", sites, config.weeks, source, distances=table
    )
    return LpParty(v.party, vendor_model(vspec, block, sites))


def _site_locations(
    config: NegotiationConfig, table: DistanceTable | None, source: str
) -> dict[str, Location]:
    """The public sites' locations, a table's names resolved with the party's distances."""
    return {s.name: place(s, f"sites[{i}]", table, source) for i, s in enumerate(config.sites)}


def load_private(path: str | Path, config: NegotiationConfig) -> LpParty:
    """Read a party's private data file and build its agent."""
    return party_from_private(read_json(Path(path)), config, source=str(path))


def split_scenario(
    scenario: Scenario,
    *,
    activity_fee: float = 0.0,
    settings: AdmmSettings | None = None,
    round_deadline_seconds: float = 60.0,
    warm_start_counterfactuals: bool = True,
    warm_plain_rounds: int = WARM_PLAIN_ROUNDS,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The public terms and each party's private data of a scenario, as JSON documents."""
    s = settings or AdmmSettings()
    full = scenario.to_dict()
    bounds = derived_bounds(scenario)
    config = NegotiationConfig(
        name=scenario.name,
        hub=scenario.retailer.name,
        weeks=scenario.weeks,
        sites=[SiteRef(name=x.name, **x.location.to_dict()) for x in scenario.retailer.sites],
        vendors=[VendorRef(name=v.name, products=list(v.products)) for v in scenario.vendors],
        activity_fee=activity_fee,
        admm=AdmmTerms(
            eps_abs=s.eps_abs,
            eps_rel=s.eps_rel,
            max_rounds=s.max_rounds,
            warm_start_counterfactuals=warm_start_counterfactuals,
            warm_plain_rounds=warm_plain_rounds,
        ),
        round_deadline_seconds=round_deadline_seconds,
        bounds=bounds,
    )
    r = scenario.retailer
    private: dict[str, dict[str, Any]] = {
        r.name: {"schema_version": SCHEMA_VERSION, "party": r.name, "retailer": full["retailer"]}
    }
    site_places = {s.location.name for s in r.sites}
    if scenario.distances is not None:  # each party gets the distances it needs
        mine = site_places | {g.location.name for g in r.regions}
        private[r.name]["distances"] = scenario.distances.to_dict(mine)
    for vendor, v in zip(scenario.vendors, full["vendors"], strict=True):
        private[v["name"]] = {"schema_version": SCHEMA_VERSION, "party": v["name"], "vendor": v}
        if scenario.distances is not None:
            mine = site_places | {f.location.name for f in vendor.factories}
            private[v["name"]]["distances"] = scenario.distances.to_dict(mine)
    doc = config.model_dump(mode="json")
    doc["sites"] = [{"name": x.name, **x.place()} for x in config.sites]  # only the given place
    return doc, private


def derived_bounds(scenario: Scenario, factor: float = BOUND_FACTOR) -> AnswerBounds:
    """Public bounds from a whole scenario: ``factor`` times the total demand (plan entries)
    and ``factor`` times the parties' total cost at the status quo (costs); see the module
    docstring."""
    demand = sum(sum(series) for r in scenario.retailer.regions for series in r.demand.values())
    models = scenario_models(scenario)
    hub = LpParty(scenario.retailer.name, models[scenario.retailer.name])
    status_quo = hub.preferred_plan()
    total, start = hub.cost_at(status_quo), 0
    for vendor in scenario.vendors:
        n = models[vendor.name].n_plan
        total += LpParty(vendor.name, models[vendor.name]).cost_at(status_quo[start : start + n])
        start += n
    return AnswerBounds(
        max_quantity=min(1e15, factor * max(1.0, demand)),
        max_cost=min(1e20, factor * max(1.0, abs(total))),
    )
