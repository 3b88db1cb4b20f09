"""Mechanism invariants on small random auctions, against the brute-force oracle."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivotal.auctions import Auction, vcg
from pivotal.auctions.brute_force import brute_force_vcg, brute_force_wdp
from pivotal.auctions.winner_determination import solve_wdp

ITEMS = ["A", "B", "C", "D"]


@st.composite
def auctions(draw: st.DrawFn) -> Auction:
    n_items = draw(st.integers(1, 4))
    items = ITEMS[:n_items]
    n_bidders = draw(st.integers(1, 4))
    triples = []
    for i in range(n_bidders):
        bundles = draw(
            st.lists(
                st.frozensets(st.sampled_from(items), min_size=1),
                min_size=0,
                max_size=3,
                unique=True,
            )
        )
        for bundle in bundles:
            value = draw(st.integers(0, 30))
            triples.append((f"b{i}", sorted(bundle), float(value)))
    return Auction.from_bids(items, triples)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(auctions())
def test_welfare_equals_brute_force(auction: Auction) -> None:
    welfare, _ = brute_force_wdp(auction)
    assert solve_wdp(auction).welfare == welfare


@SETTINGS
@given(auctions())
def test_vcg_invariants(auction: Auction) -> None:
    outcome = vcg(auction)
    oracle = brute_force_vcg(auction)
    welfare, _ = brute_force_wdp(auction)
    assert outcome.welfare == welfare
    for bidder in auction.bidders:
        # utilities do not depend on tie-breaking: u_i = W* - W*_{-i}
        w_minus, _ = brute_force_wdp(auction.without(bidder))
        assert outcome.utilities[bidder] == welfare - w_minus
        assert outcome.utilities[bidder] >= 0  # individual rationality
        if bidder not in outcome.allocation:
            assert outcome.payments[bidder] == 0  # losers pay 0
        assert outcome.payments[bidder] <= outcome.values[bidder]
        assert outcome.payments[bidder] >= 0
        # removing a bidder never raises optimal welfare
        assert w_minus <= welfare
    assert outcome.revenue <= outcome.welfare
    assert set(oracle) == set(outcome.payments)


@SETTINGS
@given(auctions())
def test_payments_match_oracle_when_allocation_matches(auction: Auction) -> None:
    outcome = vcg(auction)
    _, chosen = brute_force_wdp(auction)
    if tuple(sorted(outcome.winning_bids.values())) == chosen:
        assert dict(outcome.payments) == brute_force_vcg(auction)
