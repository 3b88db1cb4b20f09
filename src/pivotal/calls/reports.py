"""Sealed reports: validated at submission with the file readers' own models and validators.

A market report is one entry of the market file without its name (the name is the
participant's)::

    {"cost": {"kind": "piecewise_linear", "points": [[0, 0], [5, 10], [10, 30]]}, "capacity": 10}
    {"benefit": {"kind": "quadratic", "a": 10, "b": 0.5}, "capacity": 20}

An auction report is the participant's XOR bids without the bidder field::

    {"bids": [{"bundle": ["A", "B"], "value": 15}, {"bundle": ["C"], "value": 2}]}

:func:`validate_report` runs the same pydantic models (:class:`pivotal.markets.market.ProducerIn`,
:class:`pivotal.auctions.formats.BidsFile`) and the same constructors (the curve builders, which
refuse non-convex costs and negative capacities; :class:`pivotal.auctions.bids.Auction`, which
refuses unknown items, empty or repeated bundles and negative values) that read the files, and
then the call's public bounds. A report that passes is exactly one entry of the file the close
assembles, so the close cannot fail on it. The canonical report (what is hashed and stored) is
the entry as the file writer would write it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pivotal.auctions.bids import Auction, sorted_bundle
from pivotal.auctions.formats import BidsFile
from pivotal.calls.terms import RESERVE_PREFIX, CallTerms
from pivotal.errors import InputError, InvalidBidError, InvalidCurveError
from pivotal.markets.curves import Curve, CurveKind
from pivotal.markets.curves import Role as CurveRole
from pivotal.markets.market import BuyerIn, ProducerIn
from pivotal.markets.market import _curve as file_curve
from pivotal.results import sha256_of

_SHOWN = 80
_UNION_TAGS = {"linear", "quadratic", "piecewise_linear", "float", "int", "str", "bool"}


@dataclass(frozen=True)
class Report:
    """A validated report: its canonical JSON entry and that entry's SHA-256."""

    participant: str
    role: str
    entry: dict[str, Any]
    sha256: str


def _first_error(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    parts = [p for p in first["loc"] if p not in _UNION_TAGS]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    if len(loc) > _SHOWN:  # an unknown key is the participant's text: shown cut
        loc = loc[:_SHOWN] + "..."
    kind = first["type"]
    if kind in {"float_type", "float_parsing", "finite_number", "int_type"}:
        got = repr(first.get("input"))
        msg = f"expected a finite number, got {got if len(got) <= _SHOWN else got[:_SHOWN] + '...'}"
    elif kind == "union_tag_invalid":
        msg = "unknown curve kind; use linear, quadratic or piecewise_linear"
    elif kind == "union_tag_not_found":
        msg = "the curve needs a 'kind' (linear, quadratic or piecewise_linear)"
    elif kind == "missing":
        msg = "required field is missing"
    elif kind == "extra_forbidden":
        msg = "unknown field"
    else:
        msg = str(first["msg"])
    return loc or "(report)", msg


def _bounded(value: float, bound: float, field: str, what: str) -> None:
    if not math.isfinite(value) or abs(value) > bound:
        raise InputError(
            f"{field}: {what} {value:g} is outside the call's bound {bound:g} (public terms)",
            field=field,
        )


def market_report(terms: CallTerms, participant: str, role: str, body: Any) -> Report:
    """A producer's or buyer's report, validated (see the module docstring)."""
    if role not in terms.roles_allowed():
        raise InputError(f"role '{role}' cannot report in this call", field="role")
    key = "cost" if role == "producer" else "benefit"
    if not isinstance(body, dict):
        raise InputError(f"the report must be a JSON object with '{key}'", field="(report)")
    other = "benefit" if key == "cost" else "cost"
    if other in body:
        raise InputError(f"a {role} reports its '{key}' curve, not a '{other}' curve", field=other)
    if "name" in body:
        raise InputError("the name is the participant's own; leave it out", field="name")
    model = ProducerIn if role == "producer" else BuyerIn
    try:
        spec = model.model_validate({"name": participant, **body})
    except ValidationError as err:
        loc, msg = _first_error(err)
        raise InputError(f"{loc}: {msg}", field=loc) from None
    curve_spec = spec.cost if isinstance(spec, ProducerIn) else spec.benefit
    points = getattr(curve_spec, "points", None)
    if points is not None and len(points) > terms.max_points:
        raise InputError(
            f"{key}.points: {len(points)} points, the call allows at most {terms.max_points}",
            field=f"{key}.points",
        )
    curve_role = CurveRole.PRODUCER if role == "producer" else CurveRole.BUYER
    curve: Curve = file_curve(curve_spec, curve_role, spec.capacity, key)
    _check_curve_bounds(terms, curve, key)
    entry = {"name": participant, key: curve.to_dict(), "capacity": curve.capacity}
    return Report(participant, role, entry, sha256_of(entry))


def _check_curve_bounds(terms: CallTerms, curve: Curve, key: str) -> None:
    _bounded(curve.capacity, terms.max_quantity, "capacity", "capacity")
    if curve.kind is CurveKind.PIECEWISE_LINEAR:
        for i, (q, v) in enumerate(curve.points):
            _bounded(q, terms.max_quantity, f"{key}.points[{i}]", "quantity")
            _bounded(v, terms.max_value, f"{key}.points[{i}]", "value")
    else:
        _bounded(curve.a, terms.max_value, f"{key}.a", "coefficient")
        _bounded(curve.b, terms.max_value, f"{key}.b", "coefficient")


def auction_report(terms: CallTerms, participant: str, body: Any) -> Report:
    """A bidder's XOR bids, validated (see the module docstring)."""
    items = list(terms.items or ())
    if not isinstance(body, dict) or set(body) != {"bids"} or not isinstance(body["bids"], list):
        raise InvalidBidError(
            "the report must be a JSON object with only 'bids', a list of "
            '{"bundle": [...], "value": ...}',
            field="bids",
        )
    bids = body["bids"]
    if not bids:
        raise InvalidBidError(
            "bids: give at least one bid (withdraw the report to take no part)", field="bids"
        )
    if len(bids) > terms.max_bundles:
        raise InvalidBidError(
            f"bids: {len(bids)} bundles, the call allows at most {terms.max_bundles}",
            field="bids",
        )
    for k, bid in enumerate(bids):
        if isinstance(bid, dict) and "bidder" in bid:
            raise InvalidBidError(
                f"bids[{k}].bidder: the bidder is the participant itself; leave it out",
                field=f"bids[{k}].bidder",
            )
    doc = {
        "items": items,
        "bids": [{"bidder": participant, **b} if isinstance(b, dict) else b for b in bids],
    }
    try:
        parsed = BidsFile.model_validate(doc)
    except ValidationError as err:
        loc, msg = _first_error(err)
        raise InvalidBidError(f"{loc}: {msg}", field=loc) from None
    auction = Auction.from_bids(
        items, [(participant, [str(i) for i in b.bundle], b.value) for b in parsed.bids]
    )
    for k, bid in enumerate(auction.bids):
        _bounded(bid.value, terms.max_value, f"bids[{k}].value", "value")
        low = terms.min_value or 0.0
        if 0 < bid.value < low:  # the span the close's winner determination accepts
            raise InputError(
                f"bids[{k}].value: value {bid.value:g} is below the call's smallest positive "
                f"bid {low:g} (public terms); bid 0 or at least {low:g}",
                field=f"bids[{k}].value",
            )
    entry = {
        "bidder": participant,
        "bids": [
            {"bundle": sorted_bundle(b.bundle, items), "value": float(b.value)}
            for b in auction.bids
        ],
    }
    return Report(participant, "bidder", entry, sha256_of(entry))


def validate_report(terms: CallTerms, participant: str, role: str, body: Any) -> Report:
    """A participant's report for this call, or :class:`InputError` (field and reason)."""
    if terms.kind == "market":
        return market_report(terms, participant, role, body)
    return auction_report(terms, participant, body)


def validate_reserve_curves(terms: CallTerms, *, source: str) -> None:
    """The market reserve curves in the terms pass the report checks."""
    for i, rc in enumerate(terms.reserve_curves):
        key = "cost" if rc.role == "producer" else "benefit"
        try:
            market_report(terms, rc.name, rc.role, {key: rc.curve, "capacity": rc.capacity})
        except (InputError, InvalidCurveError) as exc:
            raise InputError(
                f"{source}: reserve_curves[{i}]: {exc}", field="reserve_curves"
            ) from None


def reserve_entries(terms: CallTerms) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The operator's published reserves as file entries: (market producers + buyers entries)
    or auction bids (one bidder ``reserve:ITEM`` per item with a reserve value)."""
    if terms.kind == "market":
        entries = []
        for rc in terms.reserve_curves:
            key = "cost" if rc.role == "producer" else "benefit"
            rep = market_report(terms, rc.name, rc.role, {key: rc.curve, "capacity": rc.capacity})
            entries.append(rep.entry)
        return entries, []
    bids = [
        {"bidder": f"{RESERVE_PREFIX}{item}", "bundle": [item], "value": float(value)}
        for item, value in terms.reserves.items()
        if value > 0
    ]
    return [], bids


__all__ = ["Report", "auction_report", "market_report", "reserve_entries", "validate_report"]
