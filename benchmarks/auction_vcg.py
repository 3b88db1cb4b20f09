"""Exact VCG at scale: speed-ups on and off against the naive loop, on generated CATS instances.

Usage::

    .venv/bin/python benchmarks/auction_vcg.py [--sizes 50x250,100x500] [--seeds 1,2,3]
        [--dists arbitrary,regions] [--workers 2] [--naive-sample 8]

For every instance it measures, in the same run:

- ``wdp``: one winner determination solve of the whole auction;
- ``vcg``: full VCG with every speed-up on (decomposition, LP-bound skipping, warm starts),
  in-process; ``-dec`` with decomposition off; ``-lp`` with LP-bound skipping off;
  ``pool``: everything on, counterfactuals on a spawn process pool of ``--workers``;
- ``naive``: the naive loop, n+1 fresh solves of the whole auction (one per bidder, losers
  included, no skipping, no decomposition). When it would take long, the losers' solves are
  timed on a sample of ``--naive-sample`` losers and extrapolated (marked ``~``);
- ``brute``: brute-force enumeration where it finishes within a node budget.

It checks that every variant gives the same payments (largest difference printed) and prints
medians of VCG time / WDP time and naive time / VCG time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from pivotal.auctions import Auction, solve_wdp, vcg
from pivotal.auctions.brute_force import brute_force_wdp
from pivotal.auctions.generators import generate_auction
from pivotal.engine import ProcessPoolEngine
from pivotal.errors import InputError


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def naive_vcg(
    auction: Auction, sample: int, rng: np.random.Generator
) -> tuple[dict[str, float], float, bool]:
    """n+1 fresh solves; returns payments of winners, total (possibly extrapolated) time."""
    main, t_main = timed(solve_wdp, auction)
    winners = main.winners(auction)
    payments: dict[str, float] = {}
    total = t_main
    for bidder, k in winners.items():
        counterfactual, t = timed(solve_wdp, auction.without(bidder))
        total += t
        payments[bidder] = counterfactual.welfare - (main.welfare - auction.bids[k].value)
    losers = [b for b in auction.bidders if b not in winners]
    picked = losers if len(losers) <= sample else list(rng.choice(losers, sample, replace=False))
    t_losers = 0.0
    for bidder in picked:
        counterfactual, t = timed(solve_wdp, auction.without(bidder))
        t_losers += t
        assert abs(counterfactual.welfare - main.welfare) <= 1e-6  # a loser's removal: W* stays
    extrapolated = len(picked) < len(losers)
    total += t_losers * (len(losers) / len(picked) if picked else 0.0)
    return payments, total, extrapolated


def brute(auction: Auction) -> float | None:
    try:
        _, t = timed(brute_force_wdp, auction, max_nodes=2_000_000)
    except InputError:
        return None
    return t


def max_diff(a: dict[str, float], b: dict[str, float]) -> float:
    return max((abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b)), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50x250,100x500")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--dists", default="arbitrary,regions")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive-sample", type=int, default=8)
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    header = (
        f"{'dist':<9} {'size':>8} {'seed':>4} {'bidders':>7} {'winners':>7} {'wdp s':>8} "
        f"{'vcg s':>8} {'-dec s':>8} {'-lp s':>8} {'pool s':>8} {'naive s':>9} {'brute s':>8} "
        f"{'MIPs':>5} {'LP-skip':>7} {'naiveMIPs':>9} {'vcg/wdp':>7} {'naive/vcg':>9} "
        f"{'max|dp|':>8}"
    )
    print(header, flush=True)
    rows = []
    with ProcessPoolEngine(args.workers) as pool:
        for dist in args.dists.split(","):
            for goods, bids in sizes:
                for seed in seeds:
                    auction = generate_auction(dist, goods, bids, np.random.default_rng(seed))
                    _, t_wdp = timed(solve_wdp, auction)
                    full, t_full = timed(vcg, auction)
                    no_dec, t_no_dec = timed(vcg, auction, decompose=False)
                    no_lp, t_no_lp = timed(vcg, auction, lp_skip=False)
                    pooled, t_pool = timed(vcg, auction, engine=pool)
                    naive_pay, t_naive, extrapolated = naive_vcg(
                        auction, args.naive_sample, np.random.default_rng(seed)
                    )
                    t_brute = brute(auction) if bids <= 60 else None
                    ref = dict(full.payments)
                    diff = max(max_diff(ref, dict(o.payments)) for o in (no_dec, no_lp, pooled))
                    diff = max(diff, max_diff({b: ref[b] for b in naive_pay}, naive_pay))
                    params = full.provenance.parameters
                    row = {
                        "dist": dist,
                        "size": f"{goods}x{bids}",
                        "ratio": t_full / t_wdp,
                        "pool_ratio": t_pool / t_wdp,
                        "naive_ratio": t_naive / t_full,
                        "naive_pool_ratio": t_naive / t_pool,
                    }
                    rows.append(row)
                    naive_txt = f"{'~' if extrapolated else ''}{t_naive:.2f}"
                    brute_txt = "-" if t_brute is None else f"{t_brute:.2f}"
                    print(
                        f"{dist:<9} {goods}x{bids:<5} {seed:>4} {len(auction.bidders):>7} "
                        f"{len(full.allocation):>7} {t_wdp:>8.2f} {t_full:>8.2f} "
                        f"{t_no_dec:>8.2f} {t_no_lp:>8.2f} {t_pool:>8.2f} {naive_txt:>9} "
                        f"{brute_txt:>8} {params['mip_solves']:>5} "
                        f"{params['counterfactuals_proved_by_lp']:>7} "
                        f"{len(auction.bidders) + 1:>9} {t_full / t_wdp:>7.2f} "
                        f"{t_naive / t_full:>9.2f} {diff:>8.1e}",
                        flush=True,
                    )
    print()
    for size in sorted({r["size"] for r in rows}):
        sel = [r for r in rows if r["size"] == size]
        print(
            f"{size}: median vcg/wdp {statistics.median(r['ratio'] for r in sel):.2f} "
            f"(pool {statistics.median(r['pool_ratio'] for r in sel):.2f}), "
            f"median naive/vcg {statistics.median(r['naive_ratio'] for r in sel):.2f} "
            f"(pool {statistics.median(r['naive_pool_ratio'] for r in sel):.2f})"
        )
    print(
        f"all: median vcg/wdp {statistics.median(r['ratio'] for r in rows):.2f}, "
        f"pool {statistics.median(r['pool_ratio'] for r in rows):.2f}"
    )


if __name__ == "__main__":
    main()
