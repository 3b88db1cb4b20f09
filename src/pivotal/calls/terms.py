"""A call's public terms: what every participant agrees to before it submits anything.

JSON (``pivotal serve call --config call.json``)::

    {"name": "test-equipment-2027", "kind": "market",
     "good": "test kits", "unit": "kit",
     "roles": ["producer", "buyer"],
     "deadline": "2027-01-31T12:00:00Z",
     "registration": "open", "approval": "operator",
     "invited": [{"name": "government", "role": "buyer"}],
     "publish_reports": true}

An auction names its ``items`` instead of a good, and its participants are bidders::

    {"name": "spectrum-lots", "kind": "auction", "items": ["A", "B", "C"],
     "payment_rule": "vcg", "reserves": {"A": 2.0}, "deadline": "...", ...}

Nothing private is in the terms. The bounds (``max_points``, ``max_bundles``, ``max_quantity``,
``max_value``, and for an auction ``min_value``, the smallest positive bid) are public limits
every report must respect; a report outside them is refused at submission (422), so the close
never fails on input.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    ValidationError,
    field_validator,
    model_validator,
)

from pivotal.auctions.bids import MAX_VALUE_RATIO
from pivotal.errors import InputError
from pivotal.names import NAME_PATTERN, RESERVED_NAMES
from pivotal.names import check_name as check_party_name
from pivotal.results import sha256_of

CORE_VALUE_RATIO = 1e4
"""Largest ratio between an auction call's ``max_value`` and ``min_value`` under a core payment
rule. Core constraint generation and the VCG-nearest QP failed on random 6-item auctions whose
values spanned 1e6 (2 of 1,200 closes), 1e8 (2 of 120 on 3 items) and 1e9 (42 of 120), never up
to 1e5 (0 of 1,200): a call keeps an order of magnitude below that, so its close cannot fail."""

RESERVE_PREFIX = "reserve:"
"""Reserve bidders (one per item with a reserve value) are named ``reserve:ITEM``: the ``:``
keeps them apart from every participant name."""


def check_name(name: str, *, field: str = "name") -> str:
    """A valid participant name (:data:`pivotal.names.NAME_PATTERN`, not reserved), or
    :class:`InputError` naming the rule."""
    return check_party_name(name, what="participant", field=field)


def _participant_name(name: str) -> str:
    return check_name(name)


ParticipantName = Annotated[str, AfterValidator(_participant_name)]
Role = Literal["producer", "buyer", "bidder"]
PaymentRuleName = Literal["vcg", "core-vcg-nearest", "core-bidder-optimal", "pay-as-bid"]


class Invitation(BaseModel):
    """A participant invited by the operator: its credential is issued when the call is created."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ParticipantName
    role: Role


class ReserveCurve(BaseModel):
    """A market reserve published in the terms: a curve the operator reports for itself (for
    example the buyer's benefit, which caps what it pays). Named ``reserve:...``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^reserve:[a-z0-9_-]{1,56}$")
    role: Literal["producer", "buyer"]
    curve: dict[str, Any]
    capacity: StrictFloat | None = None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("the deadline needs a time zone; write it in UTC, like 2027-01-31T12:00Z")
    return value.astimezone(UTC)


class CallTerms(BaseModel):
    """The validated public terms of a call (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["market", "auction"]
    good: str | None = Field(default=None, min_length=1, max_length=200)
    unit: str | None = Field(default=None, min_length=1, max_length=50)
    roles: tuple[Literal["producer", "buyer"], ...] = ("producer", "buyer")
    items: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] | None = None
    payment_rule: PaymentRuleName = "vcg"
    reserves: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = {}
    reserve_curves: tuple[ReserveCurve, ...] = ()
    deadline: Annotated[datetime, AfterValidator(_utc)]
    registration: Literal["open", "invite_only"] = "open"
    approval: Literal["operator", "automatic"] = "operator"
    invited: tuple[Invitation, ...] = ()
    max_participants: int = Field(default=100_000, ge=1, le=1_000_000)
    publish_reports: bool = False
    max_points: int = Field(default=100, ge=2, le=10_000)
    max_bundles: int = Field(default=64, ge=1, le=10_000)
    max_quantity: float = Field(default=1e9, gt=0, allow_inf_nan=False)
    max_value: float = Field(default=1e12, gt=0, allow_inf_nan=False)
    min_value: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _auction_value_range(cls, data: Any) -> Any:
        """An auction's positive bid values lie in ``[min_value, max_value]``, a range winner
        determination can tell apart (:data:`pivotal.auctions.bids.MAX_VALUE_RATIO`): the span
        of the assembled auction is then within it whatever the bidders report, so the close
        cannot refuse it. Under a core payment rule the range is :data:`CORE_VALUE_RATIO`, what
        the core payment programs solve. Defaults: ``min_value`` 1 and ``max_value`` the ratio
        (1e9, or 1e4 under a core rule); with only ``max_value``, ``min_value`` is ``max_value``
        over the ratio."""
        if not isinstance(data, dict) or data.get("kind") != "auction" or "min_value" in data:
            return data
        ratio = value_ratio(data.get("payment_rule", "vcg"))
        top = data.get("max_value", ratio)
        if isinstance(top, bool) or not isinstance(top, int | float):
            return data  # the field's own check names the problem
        if not math.isfinite(top) or top <= 0:
            return data
        low = top / ratio
        while top > ratio * low:  # rounding: the smallest low that passes the check
            low = math.nextafter(low, math.inf)
        return {**data, "max_value": top, "min_value": low}

    @field_validator("items")
    @classmethod
    def _distinct_items(cls, items: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if items is not None and len(set(items)) != len(items):
            raise ValueError("an item is listed twice")
        return items

    @model_validator(mode="after")
    def _consistent(self) -> CallTerms:
        if self.kind == "market":
            if self.good is None or self.unit is None:
                raise ValueError("a market call names its 'good' and its 'unit'")
            if self.items is not None or self.reserves:
                raise ValueError("'items' and 'reserves' are for auctions; a market has a good")
            if self.payment_rule != "vcg":
                raise ValueError("a market call pays VCG transfers ('payment_rule': 'vcg')")
            if self.min_value is not None:
                raise ValueError("'min_value' is for auctions (the smallest positive bid)")
            if not self.roles:
                raise ValueError("'roles' must allow producers, buyers or both")
            for inv in self.invited:
                if inv.role not in self.roles:
                    raise ValueError(
                        f"invited '{inv.name}' has role '{inv.role}', not one of {self.roles}"
                    )
        else:
            if not self.items:
                raise ValueError("an auction call names its 'items'")
            if self.reserve_curves:
                raise ValueError("'reserve_curves' are for markets; an auction has 'reserves'")
            unknown = sorted(set(self.reserves) - set(self.items))
            if unknown:
                raise ValueError(f"reserves name item '{unknown[0]}', which is not in 'items'")
            low, ratio = self.min_value, value_ratio(self.payment_rule)
            if low is None or self.max_value > ratio * low:
                raise ValueError(
                    f"max_value / min_value must be at most {ratio:g} in an auction paying "
                    f"'{self.payment_rule}' (what its solvers tell apart), so that the close "
                    "cannot fail on the bids; raise min_value or lower max_value"
                )
            for item, value in self.reserves.items():
                if value != 0 and not low <= value <= self.max_value:
                    raise ValueError(
                        f"reserves.{item}: {value:g} is outside [min_value, max_value] = "
                        f"[{low:g}, {self.max_value:g}] (0 for no reserve)"
                    )
            for inv in self.invited:
                if inv.role != "bidder":
                    raise ValueError(f"invited '{inv.name}' must have role 'bidder' in an auction")
        names = [i.name for i in self.invited]
        if len(set(names)) != len(names):
            raise ValueError("a participant is invited twice")
        return self

    def roles_allowed(self) -> tuple[str, ...]:
        """Roles a participant may register with."""
        return tuple(self.roles) if self.kind == "market" else ("bidder",)

    def public_document(self) -> dict[str, Any]:
        """The terms as published (JSON)."""
        return self.model_dump(mode="json")

    def sha256(self) -> str:
        """The hash every receipt carries: of the published terms but the deadline (the one
        term that may change during the call, and only later), so that a receipt proves the
        terms its report was accepted under."""
        fixed = {k: v for k, v in self.public_document().items() if k != "deadline"}
        return sha256_of(fixed)


def false_name_warning(terms: CallTerms) -> str | None:
    """One line when anyone may hold any number of names: open registration approved
    automatically (VCG is not proof against false names; docs/calls.md, "Who may take part")."""
    if terms.registration == "open" and terms.approval == "automatic":
        return (
            f"call {terms.name}: registration is open and approved automatically, so one party "
            "can take part under several names and pay less (VCG is not proof against false "
            'names); for a real call use "approval": "operator" (docs/calls.md)'
        )
    return None


def value_ratio(payment_rule: object) -> float:
    """The widest ``max_value / min_value`` an auction call accepts under ``payment_rule``."""
    return CORE_VALUE_RATIO if str(payment_rule).startswith("core") else MAX_VALUE_RATIO


def terms_from_document(doc: Any, *, source: str = "call config") -> CallTerms:
    """Validate a parsed JSON document into :class:`CallTerms` (one line naming the field)."""
    if not isinstance(doc, dict):
        raise InputError(f"{source}: expected a JSON object with the call's terms")
    try:
        terms = CallTerms.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(document)"
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise InputError(f"{source}: {loc}: {msg}", field=loc) from None
    # the reserve curves are checked like any report, so that the close cannot fail on them
    from pivotal.calls.reports import validate_reserve_curves

    validate_reserve_curves(terms, source=source)
    return terms


def utc_now() -> datetime:
    """The server's time (UTC)."""
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    """A UTC time as ISO 8601 with a ``Z``."""
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


__all__ = [
    "false_name_warning",
    "CORE_VALUE_RATIO",
    "NAME_PATTERN",
    "RESERVED_NAMES",
    "RESERVE_PREFIX",
    "CallTerms",
    "Invitation",
    "ReserveCurve",
    "check_name",
    "iso",
    "terms_from_document",
    "utc_now",
    "value_ratio",
]
