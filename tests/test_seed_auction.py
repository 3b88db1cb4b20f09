"""The VCG tutorial seed: 3 items (A, B, C), 4 bidders, XOR bids on all seven bundles.

Expected numbers from ../shared/cases/seed_vcg_3x4.ref.json and its README, computed there by
brute force and a second MIP solver (CBC), independently of pivotal.
"""

from __future__ import annotations

import json
from pathlib import Path

from pivotal.auctions import (
    PaymentRule,
    audit_auction,
    load_auction,
    sequential_second_price,
    vcg,
)
from pivotal.auctions.audit import misreport_utility
from pivotal.auctions.brute_force import brute_force_vcg, brute_force_wdp
from pivotal.auctions.payment_rules import run_auction


def test_seed_vcg_matches_reference(shared_cases: Path) -> None:
    auction = load_auction(shared_cases / "seed_vcg_3x4.json")
    ref = json.loads((shared_cases / "seed_vcg_3x4.ref.json").read_text())
    outcome = vcg(auction)
    assert dict(outcome.allocation) == {"2": ("B", "C"), "3": ("A",)}
    assert outcome.welfare == ref["welfare"] == 26
    assert dict(outcome.payments) == {b: float(p) for b, p in ref["payments"].items()}
    assert outcome.revenue == ref["revenue"] == 14
    assert {b: [k] for b, k in outcome.winning_bids.items()} == ref["winners"]
    assert dict(outcome.utilities) == {"1": 0.0, "2": 7.0, "3": 5.0, "4": 0.0}
    assert outcome.exact
    # one MIP for the main solve and one per winner, none for losers
    assert outcome.provenance.parameters["counterfactuals"] == 2
    assert vcg(auction, lp_skip=False, decompose=False).provenance.n_solves == 3


def test_seed_sequential_second_price(shared_cases: Path) -> None:
    # Hand computation (marginal-value bids, order A, B, C):
    # A: bids 5, 2, 10, 4 -> bidder 3 wins, pays 5
    # B: bids 4, 6, v3(AB)-v3(A)=1, 4 -> bidder 2 wins, pays 4
    # C: bids 2, v2(BC)-v2(B)=10, v3(AC)-v3(A)=1, 4 -> bidder 2 wins, pays 4; revenue 13
    auction = load_auction(shared_cases / "seed_vcg_3x4.json")
    seq = sequential_second_price(auction, ["A", "B", "C"])
    assert seq.allocation == {"2": ("B", "C"), "3": ("A",)}
    assert seq.revenue == 13
    assert seq.payments == {"1": 0.0, "2": 8.0, "3": 5.0, "4": 0.0}
    assert [s.price for s in seq.sales] == [5, 4, 4]
    assert seq.welfare == 26


def test_tutorial_overbid_leaves_bidder_one_worse_off(shared_cases: Path) -> None:
    # Bidder 1 reports A+B at 25 and A+B+C at 26. It then wins {A, B} (with bidder 2 on {C}:
    # 25 + 5 = 30), pays W_-1 - (30 - 25) = 26 - 5 = 21 and its true value is 15: utility -6.
    auction = load_auction(shared_cases / "seed_vcg_3x4.json")
    reported = tuple(
        (b.bundle, {frozenset("AB"): 25.0, frozenset("ABC"): 26.0}.get(b.bundle, b.value))
        for b in auction.bids
        if b.bidder == "1"
    )
    assert misreport_utility(auction, "1", reported, vcg) == -6


def test_seed_against_brute_force(shared_cases: Path) -> None:
    auction = load_auction(shared_cases / "seed_vcg_3x4.json")
    welfare, chosen = brute_force_wdp(auction)
    assert welfare == 26
    assert brute_force_vcg(auction) == dict(vcg(auction).payments)


def test_seed_audit_vcg_truthful_pay_as_bid_not(shared_cases: Path) -> None:
    auction = load_auction(shared_cases / "seed_vcg_3x4.json")
    report = audit_auction(auction, PaymentRule.VCG, seed=1, n_random=5)
    assert report.passed, report.checks
    assert report.max_gain <= 1e-9
    assert all(m.n_deviations > 30 for m in report.misreports)
    shaded = audit_auction(auction, PaymentRule.PAY_AS_BID, seed=1, n_random=5)
    assert not shaded.passed
    gains = {m.bidder: m.gain for m in shaded.misreports}
    # Under pay-as-bid both winners gain by shading (bidder 3 wins {A} with 5 instead of 10).
    assert gains["3"] >= 4.99 and gains["2"] > 0
    assert run_auction(auction, PaymentRule.PAY_AS_BID).revenue == 26
