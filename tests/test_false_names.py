"""The weakness docs/calls.md warns about: VCG is not proof against false names.

Reference: Yokoo, Sakurai and Matsubara (2004), "The effect of false-name bids in combinatorial
auctions: new fraud in Internet auctions", Games and Economic Behavior 46(1), the two-item
example. The Clarke payments below are computed by hand from their definition
(payment = the others' best welfare without the bidder - the others' welfare in the outcome).
"""

from __future__ import annotations

from pivotal.auctions import run_auction
from pivotal.auctions.formats import auction_from_document
from pivotal.calls.terms import false_name_warning, terms_from_document


def test_one_party_under_two_names_wins_both_items_and_pays_nothing() -> None:
    honest = auction_from_document(
        {
            "items": ["A", "B"],
            "bids": [
                {"bidder": "x", "bundle": ["A", "B"], "value": 10},
                {"bidder": "y", "bundle": ["A", "B"], "value": 8},
            ],
        },
        source="honest",
    )
    two_names = auction_from_document(
        {
            "items": ["A", "B"],
            "bids": [
                {"bidder": "x1", "bundle": ["A"], "value": 10},
                {"bidder": "x2", "bundle": ["B"], "value": 10},
                {"bidder": "y", "bundle": ["A", "B"], "value": 8},
            ],
        },
        source="two names",
    )
    h = run_auction(honest, "vcg")
    # x wins; without x, y would have taken both items (8); with x the others get 0: x pays 8
    assert h.allocation == {"x": ("A", "B")}
    assert h.payments["x"] == 8.0
    f = run_auction(two_names, "vcg")
    # without x1, the best of the others is x2 alone (10, not y's 8), and x2 gets 10 anyway: 0
    assert f.allocation == {"x1": ("A",), "x2": ("B",)}
    assert f.payments["x1"] == 0.0 and f.payments["x2"] == 0.0
    # the party behind both names holds the pair it values at 10 and pays 0 instead of 8
    assert f.payments["x1"] + f.payments["x2"] < h.payments["x"]


def test_the_server_warns_when_anyone_may_hold_any_number_of_names() -> None:
    base = {"name": "c", "kind": "market", "good": "kits", "unit": "kit"}
    base["deadline"] = "2030-01-01T00:00:00Z"
    doors = {
        ("open", "automatic"): True,
        ("open", "operator"): False,
        ("invite_only", "automatic"): False,
        ("invite_only", "operator"): False,
    }
    for (registration, approval), warned in doors.items():
        terms = terms_from_document({**base, "registration": registration, "approval": approval})
        warning = false_name_warning(terms)
        assert (warning is not None) == warned, (registration, approval)
        if warning is not None:
            assert "several names" in warning and '"approval": "operator"' in warning
