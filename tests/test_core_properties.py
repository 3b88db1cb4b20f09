"""Every payment rule on small auctions with ties, against an independent brute-force core.

Issue 19: VCG-nearest crashed (OSQP refused its QP, a VCG payment 3.6e-15 above its bid) on about
1 auction in 400 with ties, zero values, duplicate bundles and identical bidders. The property
test draws such auctions (2-6 items, 2-7 bidders) and checks, against
:mod:`core_reference` (every coalition's value by enumeration, the minimum core revenue by
SciPy's ``linprog``, the nearest point by NNLS):

- VCG: welfare and payments equal brute force's for the allocation chosen;
- pay-as-bid: every winner pays its bid;
- both core rules: payments in the core (every coalition), individually rational, at least VCG,
  losers pay 0, revenue = the minimum core revenue; VCG-nearest's point is the NNLS point.

2,000 examples in one test (about 40 s on one core of the project machine; see the closing
note of issue 19). Cases found by this or by outside checks are kept below as explicit examples.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core_reference import brute_force_core, nearest_point
from pivotal.auctions import Auction, PaymentRule, auction_from_document, vcg
from pivotal.auctions.payment_rules import core_outcome, pay_as_bid
from pivotal.auctions.winner_determination import Allocation

ITEMS = ("A", "B", "C", "D", "E", "F")
SHARED = (11.988405292772267, 15.927206477292252, 0.8527896151074921, 2.618629881638823)

# issue 19's reproduction (../shared report, main at 8ad0e74): OSQPException from solver.setup
ISSUE_19_CRASH = {
    "items": ["A", "B", "C", "D"],
    "bids": [
        {"bidder": "b0", "bundle": ["A", "B", "C"], "value": 0.0},
        {"bidder": "b6", "bundle": ["A", "D"], "value": 0.0},
        {"bidder": "b1", "bundle": ["C", "D"], "value": 17.0},
        {"bidder": "b0", "bundle": ["B"], "value": 11.988405292772267},
        {"bidder": "b0", "bundle": ["A", "D"], "value": 15.927206477292252},
        {"bidder": "b6", "bundle": ["C"], "value": 0.8527896151074921},
        {"bidder": "b1", "bundle": ["D"], "value": 20.0},
        {"bidder": "b1", "bundle": ["A", "D"], "value": 3.0},
        {"bidder": "b6", "bundle": ["A", "B", "C", "D"], "value": 0.0},
        {"bidder": "b0", "bundle": ["A", "B"], "value": 12.0},
        {"bidder": "b3", "bundle": ["A"], "value": 2.618629881638823},
        {"bidder": "b4", "bundle": ["B"], "value": 11.988405292772267},
        {"bidder": "b6", "bundle": ["A", "C", "D"], "value": 7.784422713847334},
        {"bidder": "b2", "bundle": ["A"], "value": 3.0},
        {"bidder": "b4", "bundle": ["A", "B"], "value": 12.0},
        {"bidder": "b1", "bundle": ["A", "B", "D"], "value": 13.0},
        {"bidder": "b5", "bundle": ["A", "D"], "value": 15.927206477292252},
        {"bidder": "b4", "bundle": ["A", "B", "C"], "value": 0.0},
        {"bidder": "b0", "bundle": ["A"], "value": 13.0},
        {"bidder": "b6", "bundle": ["A", "B", "D"], "value": 0.0},
        {"bidder": "b2", "bundle": ["C"], "value": 9.0},
        {"bidder": "b5", "bundle": ["B"], "value": 11.988405292772267},
        {"bidder": "b4", "bundle": ["A", "D"], "value": 15.927206477292252},
        {"bidder": "b5", "bundle": ["A", "B", "C"], "value": 0.0},
        {"bidder": "b5", "bundle": ["A", "B"], "value": 12.0},
    ],
}

# found by the property test below (2026-12-01): HiGHS's QP solver, on the VCG-nearest QP in
# units of the largest bid, ended in a solve error (fixed by solving over the minimum-revenue
# face in its own units)
HIGHS_QP_SOLVE_ERROR = {
    "items": ["A", "B", "C", "D"],
    "bids": [
        {"bidder": "b0", "bundle": ["A"], "value": 0.0},
        {"bidder": "b1", "bundle": ["B"], "value": 18.0},
        {"bidder": "b2", "bundle": ["A"], "value": 0.001},
        {"bidder": "b2", "bundle": ["A", "B", "C"], "value": 0.0},
        {"bidder": "b2", "bundle": ["A", "B", "C", "D"], "value": 11.988405292772267},
        {"bidder": "b3", "bundle": ["A", "B", "C", "D"], "value": 18.0},
        {"bidder": "b3", "bundle": ["A"], "value": 11.228692784464206},
        {"bidder": "b3", "bundle": ["A", "B"], "value": 0.0},
        {"bidder": "b3", "bundle": ["A", "D"], "value": 0.0},
    ],
}


@st.composite
def tie_auctions(draw: st.DrawFn) -> Auction:
    """2-6 items, 2-7 bidders; values drawn from 0, small integers and a few shared floats (ties
    across bidders), bundles drawn from the items (duplicates across bidders), and some bidders
    exact copies of an earlier one (identical bidders)."""
    items = ITEMS[: draw(st.integers(2, 6))]
    values = st.one_of(
        st.just(0.0),
        st.integers(1, 20).map(float),
        st.sampled_from(SHARED),
        st.floats(1e-3, 20.0, allow_nan=False, allow_infinity=False),
    )
    bids_of: list[list[tuple[tuple[str, ...], float]]] = []
    for _ in range(draw(st.integers(2, 7))):
        if bids_of and draw(st.booleans()) and draw(st.booleans()):
            bids_of.append(list(bids_of[draw(st.integers(0, len(bids_of) - 1))]))
            continue
        bundles = draw(
            st.lists(
                st.frozensets(st.sampled_from(items), min_size=1),
                min_size=1,
                max_size=4,
                unique=True,
            )
        )
        bids_of.append([(tuple(sorted(b)), draw(values)) for b in bundles])
    triples = [(f"b{i}", list(b), v) for i, bids in enumerate(bids_of) for b, v in bids]
    return Auction.from_bids(items, triples)


def check_every_rule(auction: Auction) -> None:
    """The assertions of the module docstring for one auction."""
    base = vcg(auction)
    top = max((b.value for b in auction.bids), default=0.0) or 1.0
    tol = 1e-9 * top
    ref = brute_force_core(auction, {b: base.values[b] for b in base.allocation})
    assert base.welfare == pytest.approx(ref.welfare, rel=1e-12, abs=tol)
    vcg_pay = np.array([base.payments[b] for b in ref.winners])
    np.testing.assert_allclose(vcg_pay, ref.vcg, rtol=0, atol=tol)
    assert all(base.payments[b] == 0 for b in auction.bidders if b not in base.allocation)
    allocation = Allocation(tuple(sorted(base.winning_bids.values())), base.welfare, base.welfare)
    first_price = pay_as_bid(auction, allocation=allocation)
    assert dict(first_price.payments) == dict(base.values)
    for rule in (PaymentRule.CORE_BIDDER_OPTIMAL, PaymentRule.CORE_VCG_NEAREST):
        outcome = core_outcome(auction, base, rule)
        assert outcome.exact
        assert dict(outcome.winning_bids) == dict(base.winning_bids)
        pay = np.array([outcome.payments[b] for b in ref.winners])
        assert all(outcome.payments[b] == 0 for b in auction.bidders if b not in base.allocation)
        assert np.all(pay <= ref.values + tol), "individual rationality"
        assert np.all(pay >= ref.vcg - tol), "at least VCG"
        assert np.all(ref.rows @ pay >= ref.rhs - tol), "in the core (every coalition)"
        assert outcome.revenue == pytest.approx(ref.mrc, rel=0, abs=tol), "minimum core revenue"
        if rule is PaymentRule.CORE_VCG_NEAREST and ref.winners:
            point = nearest_point(ref.vcg, ref.rows, ref.rhs, ref.vcg, ref.values, ref.mrc)
            np.testing.assert_allclose(pay, point, rtol=0, atol=tol)


# 400 random tie auctions per run of the suite (about 35 s); issue 19's acceptance ran 2,000:
# PIVOTAL_THOROUGH=1 pytest tests/test_core_properties.py runs them again.
THOROUGH = os.environ.get("PIVOTAL_THOROUGH", "") not in ("", "0")


@settings(
    max_examples=2000 if THOROUGH else 400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(tie_auctions())
@example(auction_from_document(ISSUE_19_CRASH))
@example(auction_from_document(HIGHS_QP_SOLVE_ERROR))
def test_every_payment_rule_against_brute_force_core(auction: Auction) -> None:
    check_every_rule(auction)


def test_issue_19_crash_gives_the_core_point() -> None:
    # VCG pays b5 11.98840529277227, 3.6e-15 above its bid: clipped to the bid, the QP is valid
    auction = auction_from_document(json.loads(json.dumps(ISSUE_19_CRASH)))
    outcome = core_outcome(auction, vcg(auction), "core-vcg-nearest")
    assert outcome.payments["b5"] <= outcome.values["b5"]
    # the issue's numbers: core-bidder-optimal revenue 28.77, VCG 18.39
    assert outcome.revenue == pytest.approx(28.77, abs=0.005)
    check_every_rule(auction)
