"""Fast exact VCG: decomposition, LP-bound skipping and engines give identical payments."""

from __future__ import annotations

import numpy as np
import pytest

from pivotal.auctions import Auction, vcg
from pivotal.auctions.brute_force import brute_force_vcg
from pivotal.auctions.decomposition import components
from pivotal.auctions.generators import generate_auction
from pivotal.engine import InProcessEngine, ProcessPoolEngine, engine_from_spec
from pivotal.errors import InputError


def _variants(auction: Auction) -> list[dict[str, float]]:
    results = []
    for decompose in (True, False):
        for lp_skip in (True, False):
            outcome = vcg(auction, decompose=decompose, lp_skip=lp_skip)
            results.append(dict(outcome.payments))
    return results


@pytest.mark.parametrize("dist", ["arbitrary", "regions"])
@pytest.mark.parametrize("seed", [1, 2])
def test_speedups_do_not_change_payments(dist: str, seed: int) -> None:
    auction = generate_auction(dist, 12, 30, np.random.default_rng(seed))
    reference = brute_force_vcg(auction)
    for payments in _variants(auction):
        assert payments == pytest.approx(reference, abs=1e-9)


def test_decomposition_splits_independent_markets() -> None:
    # Two markets with disjoint items and bidders, plus a bidder linking nothing.
    auction = Auction.from_bids(
        ["A", "B", "C", "D", "E"],
        [
            ("1", ["A"], 5), ("2", ["A", "B"], 7), ("3", ["B"], 4),
            ("4", ["C"], 3), ("5", ["C", "D"], 6), ("4", ["D"], 2),
            ("6", ["E"], 1),
        ],
    )  # fmt: skip
    parts = components(auction)
    assert [p.bids for p in parts] == [(0, 1, 2), (3, 4, 5), (6,)]
    assert parts[1].auction.items == ("C", "D")
    outcome = vcg(auction)
    assert outcome.provenance.parameters["components"] == 3
    assert dict(outcome.payments) == brute_force_vcg(auction)


def test_lp_bound_skips_counterfactual_mips() -> None:
    # Single-item auctions side by side: each counterfactual's LP relaxation is integral and the
    # greedy completion (next-highest bid) is optimal, so no counterfactual needs a MIP.
    bids = [(f"b{g}{j}", [f"g{g}"], float(10 * j + g)) for g in range(5) for j in range(1, 4)]
    auction = Auction.from_bids([f"g{g}" for g in range(5)], bids)
    outcome = vcg(auction, decompose=False)
    params = outcome.provenance.parameters
    assert params["counterfactuals"] == 5
    assert params["counterfactuals_proved_by_lp"] == 5
    assert params["mip_solves"] == 1
    assert dict(outcome.payments) == brute_force_vcg(auction)


def test_process_pool_engine_same_payments() -> None:
    auction = generate_auction("regions", 20, 60, np.random.default_rng(3))
    expected = dict(vcg(auction).payments)
    seen: list[tuple[int, int]] = []
    with ProcessPoolEngine(2) as engine:
        outcome = vcg(auction, engine=engine, on_progress=lambda d, t: seen.append((d, t)))
    assert dict(outcome.payments) == expected
    assert outcome.provenance.parameters["engine"] == "processes:2"
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] == len(outcome.allocation)


def test_dask_engine_same_payments() -> None:
    distributed = pytest.importorskip("distributed")
    auction = generate_auction("arbitrary", 12, 40, np.random.default_rng(4))
    expected = dict(vcg(auction).payments)
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        with engine_from_spec(f"dask://{address}") as engine:
            outcome = vcg(auction, engine=engine)
    assert dict(outcome.payments) == expected
    assert outcome.provenance.parameters["engine"].startswith("dask://127.0.0.1")


def test_engine_specs() -> None:
    assert isinstance(engine_from_spec(None), InProcessEngine)
    pool = engine_from_spec("processes:3")
    assert isinstance(pool, ProcessPoolEngine) and pool.max_workers == 3
    for bad in ("processes:x", "gpu", "dask://"):
        with pytest.raises(InputError):
            engine_from_spec(bad)
