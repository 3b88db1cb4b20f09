"""Re-checking a result (``pivotal verify``): recompute it from its recorded input and compare.

The input is the one recorded in the result (``input``) or a file given by the user; either way
its SHA-256 must equal the result's ``provenance.input_sha256``. The outcome is recomputed with
the recorded mechanism and parameters, and allocation (or plan), payments (or transfers) and
welfare (or costs) are compared within the recorded tolerances
(``|a - b| <= abs_tol + rel_tol * max(|a|, |b|)``).
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivotal.auctions import Auction
from pivotal.auctions.formats import auction_from_document, load_auction
from pivotal.auctions.payment_rules import PaymentRule, run_auction
from pivotal.errors import InputError
from pivotal.markets.clarke import vcg_market
from pivotal.markets.market import Market, load_market, market_from_document
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.scenario import Scenario, load_scenario, scenario_from_document
from pivotal.negotiation.session import MAX_WARM_PLAIN_ROUNDS, UNRECORDED
from pivotal.negotiation.simulation import simulate
from pivotal.report.documents import recorded_input, result_kind
from pivotal.results import ResultKind, sha256_of


@dataclass(frozen=True)
class Verification:
    """The outcome of a re-check."""

    kind: str
    checked: int
    mismatches: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Whether everything matched."""
        return not self.mismatches


class _Comparer:
    def __init__(self, abs_tol: float, rel_tol: float) -> None:
        self.abs_tol, self.rel_tol = abs_tol, rel_tol
        self.checked = 0
        self.mismatches: list[str] = []

    def number(self, what: str, recorded: Any, recomputed: float) -> None:
        self.checked += 1
        try:
            a = float(recorded)
        except (TypeError, ValueError):
            self.mismatches.append(f"{what}: recorded {recorded!r} is not a number")
            return
        b = float(recomputed)
        if abs(a - b) > self.abs_tol + self.rel_tol * max(abs(a), abs(b)):
            self.mismatches.append(f"{what}: recorded {a:.10g}, recomputed {b:.10g}")

    def mapping(self, what: str, recorded: Any, recomputed: dict[str, float]) -> None:
        if not isinstance(recorded, dict) or set(recorded) != set(recomputed):
            self.checked += 1
            keys = sorted(recorded) if isinstance(recorded, dict) else recorded
            self.mismatches.append(
                f"{what}: recorded keys {keys!r}, recomputed {sorted(recomputed)}"
            )
            return
        for key, value in recomputed.items():
            self.number(f"{what}[{key}]", recorded[key], value)

    def same(self, what: str, recorded: Any, recomputed: Any) -> None:
        self.checked += 1
        if recorded != recomputed:
            self.mismatches.append(f"{what}: recorded {recorded!r}, recomputed {recomputed!r}")


def _tolerances(doc: dict[str, Any], default: tuple[float, float]) -> tuple[float, float]:
    """The comparison's tolerances: the recorded ones, never looser than ``default`` (the
    mechanism's own, which every result pivotal writes records): a document cannot widen
    them to pass altered numbers."""
    tol = (doc.get("provenance") or {}).get("tolerances") or {}
    if not isinstance(tol, dict):
        raise InputError("provenance.tolerances must be an object", field="provenance.tolerances")
    where = "provenance.tolerances"
    out = []
    for name, most in zip(("abs_tol", "rel_tol"), default, strict=True):
        value = _number(tol, where, name, most)
        if value < 0:
            raise InputError(
                f"{where}.{name} must be >= 0, got {value:.6g}", field=f"{where}.{name}"
            )
        out.append(min(value, most))
    return out[0], out[1]


def _check_hash(doc: dict[str, Any], data: dict[str, Any], source: str) -> None:
    expected = (doc.get("provenance") or {}).get("input_sha256")
    if not expected:
        raise InputError("the result records no input hash (provenance.input_sha256)")
    actual = sha256_of(data)
    if actual != expected:
        raise InputError(
            f"{source} does not match the result: its SHA-256 is {actual[:16]}..., the result "
            f"records {str(expected)[:16]}...; give the input the result was computed from"
        )


def verify(doc: Any, input_path: Path | None = None) -> Verification:
    """Recompute a result from its input and compare (see the module docstring).

    Raises
    ------
    InputError
        If the document is not a result, has no usable input, or the input's hash differs.
    """
    kind = result_kind(doc)
    return RECHECKS[kind](doc, input_path, str(input_path or "the recorded input"))


def _recheck_auction(doc: dict[str, Any], input_path: Path | None, source: str) -> Verification:
    auction: Auction = (
        load_auction(input_path)
        if input_path is not None
        else auction_from_document(recorded_input(doc), source=source)
    )
    _check_hash(doc, auction.to_dict(), source)
    return _verify_auction(doc, auction)


def _recheck_market(doc: dict[str, Any], input_path: Path | None, source: str) -> Verification:
    market: Market = (
        load_market(input_path)
        if input_path is not None
        else market_from_document(recorded_input(doc), source=source)
    )
    _check_hash(doc, market.to_dict(), source)
    return _verify_market(doc, market)


def _recheck_negotiation(doc: dict[str, Any], input_path: Path | None, source: str) -> Verification:
    if input_path is None and not isinstance(doc.get("input"), dict):
        raise InputError(
            "this negotiation result records no scenario: an outcome of the coordinator service "
            "cannot be recomputed, since each party's cost data never left its machine (each "
            "party can check its own share with 'pivotal agent run' output); results of "
            "'pivotal negotiate run' record their scenario and can be verified"
        )
    scenario: Scenario = (
        load_scenario(input_path)
        if input_path is not None
        else scenario_from_document(recorded_input(doc), source=source)
    )
    _check_hash(doc, scenario.to_dict(), source)
    return _verify_negotiation(doc, scenario)


def _verify_auction(doc: dict[str, Any], auction: Auction) -> Verification:
    try:
        rule = PaymentRule(doc.get("mechanism"))
    except ValueError:
        raise InputError(f"unknown payment rule {doc.get('mechanism')!r} in the result") from None
    outcome = run_auction(auction, rule).to_dict()
    c = _Comparer(*_tolerances(doc, (1e-6, 1e-9)))
    recorded_alloc = {b: sorted(items) for b, items in (doc.get("allocation") or {}).items()}
    c.same("allocation", recorded_alloc, {b: sorted(i) for b, i in outcome["allocation"].items()})
    c.mapping("payments", doc.get("payments"), outcome["payments"])
    c.number("welfare", doc.get("welfare"), outcome["welfare"])
    c.number("revenue", doc.get("revenue"), outcome["revenue"])
    return Verification("auction", c.checked, tuple(c.mismatches))


def _verify_market(doc: dict[str, Any], market: Market) -> Verification:
    o = vcg_market(market)
    c = _Comparer(*_tolerances(doc, (1e-9, 1e-9)))
    c.number("price", doc.get("price"), o.price)
    c.number("welfare", doc.get("welfare"), o.welfare)
    c.mapping("quantities", doc.get("quantities"), dict(o.quantities))
    c.mapping("transfers", doc.get("transfers"), dict(o.transfers))
    return Verification("market", c.checked, tuple(c.mismatches))


def _number(values: dict[str, Any], where: str, name: str, default: float) -> float:
    """A recorded number ``where.name``: a finite JSON number (``default`` when absent)."""
    value = values.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(
            f"{where}.{name} must be a finite number, got {reprlib.repr(value)}",
            field=f"{where}.{name}",
        )
    return float(value)


def _parameter(params: dict[str, Any], name: str, default: float) -> float:
    """A recorded protocol parameter (``provenance.parameters``)."""
    return _number(params, "provenance.parameters", name, default)


def _count(params: dict[str, Any], name: str, default: int, most: int) -> int:
    """A recorded count: a whole number in ``[0, most]`` (``default`` when absent)."""
    value = _parameter(params, name, default)
    if not (value.is_integer() and 0 <= value <= most):
        raise InputError(
            f"provenance.parameters.{name} must be a whole number from 0 to {most}, got "
            f"{value:.6g}",
            field=f"provenance.parameters.{name}",
        )
    return int(value)


def _verify_negotiation(doc: dict[str, Any], scenario: Scenario) -> Verification:
    params = (doc.get("provenance") or {}).get("parameters") or {}
    if not isinstance(params, dict):
        raise InputError("provenance.parameters must be an object", field="provenance.parameters")
    # a document from before a parameter was recorded ran as UNRECORDED says
    warm = params.get("warm_start_counterfactuals", bool(UNRECORDED["warm_start_counterfactuals"]))
    if not isinstance(warm, bool):
        raise InputError(
            "provenance.parameters.warm_start_counterfactuals must be true or false, got "
            f"{reprlib.repr(warm)}",
            field="provenance.parameters.warm_start_counterfactuals",
        )
    settings = AdmmSettings(
        eps_abs=_parameter(params, "eps_abs", 1e-6),
        eps_rel=_parameter(params, "eps_rel", 1e-6),
        max_rounds=_count(params, "max_rounds", 500, 10**9),
    )
    sim = simulate(
        scenario,
        settings,
        activity_fee=_parameter(params, "activity_fee", 0.0),
        check=False,
        warm_start_counterfactuals=warm,
        warm_plain_rounds=_count(
            params, "warm_plain_rounds", UNRECORDED["warm_plain_rounds"], MAX_WARM_PLAIN_ROUNDS
        ),
    ).to_dict()
    c = _Comparer(*_tolerances(doc, (1e-3, 1e-4)))
    for vendor, products in sim["plan"].items():
        for product, sites in products.items():
            for site, weeks in sites.items():
                try:
                    recorded = doc["plan"][vendor][product][site]
                except (KeyError, TypeError):
                    recorded = None
                if not isinstance(recorded, list) or len(recorded) != len(weeks):
                    c.same(f"plan[{vendor}][{product}][{site}]", recorded, weeks)
                    continue
                for t, q in enumerate(weeks):
                    c.number(f"plan[{vendor}][{product}][{site}][week {t + 1}]", recorded[t], q)
    c.mapping("transfers", doc.get("transfers"), sim["transfers"])
    for party, costs in sim["costs"].items():
        c.mapping(f"costs[{party}]", (doc.get("costs") or {}).get(party), costs)
    c.number("total_cost", doc.get("total_cost"), sim["total_cost"])
    return Verification("negotiation", c.checked, tuple(c.mismatches))


Recheck = Callable[[dict[str, Any], Path | None, str], Verification]
RECHECKS: dict[ResultKind, Recheck] = {
    ResultKind.AUCTION: _recheck_auction,
    ResultKind.MARKET: _recheck_market,
    ResultKind.NEGOTIATION: _recheck_negotiation,
}
"""How each kind of result is recomputed (the counterpart of :data:`pivotal.report.kinds.VIEWS`)."""
