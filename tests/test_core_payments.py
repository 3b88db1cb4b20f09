"""Core-selecting payments against published numbers and an independent brute-force core LP.

References: ../shared/cases/textbook_auctions.json (LLG, Ausubel-Milgrom, Day & Raghavan 2007,
MechLib's four-bidder case; MRC and VCG-nearest recomputed there by brute force over all
coalitions) and the seed's README (blocking coalition {1, 4} with 19, MRC 19, VCG-nearest 11.5
and 7.5).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from scipy.optimize import linprog

from conftest import SHARED_CASES
from pivotal.auctions import (
    Auction,
    PaymentRule,
    auction_from_document,
    load_auction,
    run_auction,
    vcg,
)
from pivotal.auctions.audit import audit_auction, misreport_utility
from pivotal.auctions.brute_force import brute_force_wdp
from pivotal.auctions.core_payments import core_payments, is_in_core
from test_auction_properties import auctions

CASES: list[dict[str, Any]] = json.loads((SHARED_CASES / "textbook_auctions.json").read_text())[
    "cases"
]


def brute_force_core_lp(auction: Auction) -> tuple[float, dict[str, float]]:
    """MRC by enumerating every coalition's value by brute force and solving the LP with SciPy
    (a second LP solver path, independent of pivotal's constraint generation)."""
    outcome = vcg(auction)
    winners = list(outcome.allocation)
    if not winners:
        return 0.0, {}
    rows, rhs = [], []
    for size in range(1, len(auction.bidders) + 1):
        for coalition in itertools.combinations(auction.bidders, size):
            ks = [k for k, b in enumerate(auction.bids) if b.bidder in coalition]
            value, _ = brute_force_wdp(auction, ks)
            lhs = [0.0 if w in coalition else 1.0 for w in winners]
            rows.append([-x for x in lhs])
            rhs.append(-(value - sum(outcome.values[w] for w in winners if w in coalition)))
    bounds = [(outcome.payments[w], outcome.values[w]) for w in winners]
    res = linprog(np.ones(len(winners)), A_ub=rows, b_ub=rhs, bounds=bounds, method="highs-ds")
    assert res.status == 0
    return float(res.fun), dict(zip(winners, res.x, strict=True))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_textbook_core(case: dict[str, Any]) -> None:
    auction = auction_from_document({"items": case["items"], "bids": case["bids"]})
    expected = case["expected"]
    outcome = vcg(auction)
    in_core, _ = is_in_core(auction, outcome)
    assert in_core == expected["vcg_in_core"]
    mrc = core_payments(auction, outcome, rule="bidder-optimal")
    assert mrc.revenue == pytest.approx(expected["mrc_revenue"], abs=1e-6)
    assert mrc.mrc_revenue == pytest.approx(expected["mrc_revenue"], abs=1e-6)
    nearest = run_auction(auction, PaymentRule.CORE_VCG_NEAREST)
    for bidder, payment in expected.get("vcg_nearest_payments", {}).items():
        assert nearest.payments[bidder] == pytest.approx(payment, abs=1e-6), bidder
    assert nearest.revenue == pytest.approx(expected["mrc_revenue"], abs=1e-6)


def test_seed_core(shared_cases: Path) -> None:
    auction = load_auction(shared_cases / "seed_vcg_3x4.json")
    outcome = vcg(auction)
    in_core, coalition = is_in_core(auction, outcome)
    assert not in_core
    assert coalition.bidders == ("1", "4") and coalition.value == 19 and coalition.revenue == 14
    assert dict(coalition.allocation) == {"1": ("A", "B"), "4": ("C",)}
    bidder_optimal = run_auction(auction, PaymentRule.CORE_BIDDER_OPTIMAL)
    assert bidder_optimal.revenue == pytest.approx(19, abs=1e-9)
    nearest = run_auction(auction, PaymentRule.CORE_VCG_NEAREST)
    assert nearest.payments["2"] == pytest.approx(11.5, abs=1e-6)
    assert nearest.payments["3"] == pytest.approx(7.5, abs=1e-6)
    assert nearest.provenance.parameters["mrc_revenue"] == pytest.approx(19, abs=1e-9)
    report = audit_auction(auction, seed=0, n_random=0)
    assert not report.core.in_core and report.core.coalition.bidders == ("1", "4")


def test_loser_collusion_vcg_weakness_core_answer() -> None:
    # Ausubel & Milgrom 2006: G values {A,B} at 2; losers L1 (A) and L2 (B) value 0.5 each.
    # Truthful: G wins and pays 1; L1, L2 get 0. Colluding, L1 and L2 both bid 2: they win, and
    # VCG charges each W_-i - (W* - v_i) = 2 - (4 - 2) = 0, so each gains 0.5. Under the
    # VCG-nearest core rule G blocks unless they pay 2 together: 1 each, utility 0.5 - 1 < 0.
    truth = Auction.from_bids(
        ["A", "B"], [("G", ["A", "B"], 2.0), ("L1", ["A"], 0.5), ("L2", ["B"], 0.5)]
    )
    colluding = truth.replace_bids("L1", [(["A"], 2.0)]).replace_bids("L2", [(["B"], 2.0)])
    for rule, colluders_gain in ((PaymentRule.VCG, True), (PaymentRule.CORE_VCG_NEAREST, False)):
        honest = run_auction(truth, rule)
        together = run_auction(colluding, rule)
        gains = [
            truth.value(b, together.allocation.get(b, ()))
            - together.payments[b]
            - honest.utilities[b]
            for b in ("L1", "L2")
        ]
        assert all(g > 0.49 for g in gains) if colluders_gain else all(g < 0 for g in gains)


def test_shill_bidding_vcg_weakness_core_answer() -> None:
    # X values {A,B} at 1.5, rival G values {A,B} at 2: truthful X loses (utility 0). With two
    # shills bidding 2 on A and on B, VCG charges each shill 2 - (4 - 2) = 0: X gets {A,B} free,
    # utility 1.5. Under the VCG-nearest core the shills pay 1 each: X's utility 1.5 - 2 < 0.
    truth = Auction.from_bids(["A", "B"], [("X", ["A", "B"], 1.5), ("G", ["A", "B"], 2.0)])
    shills = Auction.from_bids(
        ["A", "B"], [("X1", ["A"], 2.0), ("X2", ["B"], 2.0), ("G", ["A", "B"], 2.0)]
    )
    assert run_auction(truth, PaymentRule.VCG).utilities["X"] == 0
    vcg_pay = run_auction(shills, PaymentRule.VCG).payments
    assert 1.5 - (vcg_pay["X1"] + vcg_pay["X2"]) == pytest.approx(1.5)
    core_pay = run_auction(shills, PaymentRule.CORE_VCG_NEAREST).payments
    assert 1.5 - (core_pay["X1"] + core_pay["X2"]) == pytest.approx(-0.5, abs=1e-6)


def test_core_rule_is_not_truthful_but_vcg_is(shared_cases: Path) -> None:
    auction = load_auction(shared_cases / "seed_vcg_3x4.json")

    def nearest(a: Auction) -> Any:
        return run_auction(a, PaymentRule.CORE_VCG_NEAREST)

    truthful = nearest(auction).utilities["2"]
    shaded = tuple((b.bundle, b.value * 0.9) for b in auction.bids if b.bidder == "2")
    assert misreport_utility(auction, "2", shaded, nearest) > truthful
    assert misreport_utility(auction, "2", shaded, vcg) <= vcg(auction).utilities["2"] + 1e-9


@settings(max_examples=30, deadline=None)
@given(auctions())
def test_core_payments_against_brute_force_lp(auction: Auction) -> None:
    outcome = vcg(auction)
    reference_revenue, _ = brute_force_core_lp(auction)
    for rule in ("bidder-optimal", "vcg-nearest"):
        result = core_payments(auction, outcome, rule=rule)
        assert result.revenue == pytest.approx(reference_revenue, abs=1e-6)
        for bidder in auction.bidders:
            assert outcome.payments[bidder] - 1e-7 <= result.payments[bidder]
            assert result.payments[bidder] <= outcome.values[bidder] + 1e-7
