"""Published small auctions (../shared/cases/textbook_auctions.json, sources in the file).

Each case's welfare, allocation and VCG payments were recomputed there by brute force.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import SHARED_CASES
from pivotal.auctions import auction_from_document, vcg


def _cases() -> list[dict[str, Any]]:
    path = SHARED_CASES / "textbook_auctions.json"
    cases: list[dict[str, Any]] = json.loads(path.read_text())["cases"]
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_textbook_vcg(case: dict[str, Any]) -> None:
    auction = auction_from_document({"items": case["items"], "bids": case["bids"]})
    expected = case["expected"]
    outcome = vcg(auction)
    assert outcome.welfare == pytest.approx(expected["welfare"], abs=1e-9)
    assert {b: list(v) for b, v in outcome.allocation.items()} == expected["allocation"]
    for bidder, payment in expected["vcg_payments"].items():
        assert outcome.payments[bidder] == pytest.approx(payment, abs=1e-9), bidder
    assert outcome.revenue == pytest.approx(expected["vcg_revenue"], abs=1e-9)
