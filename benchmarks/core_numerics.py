"""Core payments at every magnitude: success rate and accuracy against independent references.

Usage::

    .venv/bin/python benchmarks/core_numerics.py [--auctions 400] [--seed 0]
        [--scales 1e-9,1e-6,1e-3,1,1e3,1e6,1e9,1e12,1e15] [--cats DIR]

Runs on whatever ``pivotal`` the interpreter imports, so the same script measures a baseline
checkout (run it with the baseline's venv) in the same session.

1. Random auctions (2-6 items, 2-7 bidders, with ties, zero values, duplicate bundles and
   identical bidders; drawn once per seed, then every value multiplied by each scale): for
   each payment rule, how many runs raise, how many have a welfare other than brute force's
   (relative 1e-9), and, for VCG-nearest, the largest distance to the independent reference
   point (all coalitions by brute force, minimum core revenue by SciPy's ``linprog``, the
   nearest point by NNLS; see ``tests/core_reference.py``), relative to the largest bid.
2. The CATS files in ``--cats`` (default ``../shared/cases/cats``): VCG-nearest's time and its
   distance to the NNLS projection onto the constraints it generated, and SciPy ``milp``'s most
   blocking offer at the returned payments minus their revenue (<= 0: in the core).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from core_reference import brute_force_core, nearest_point, separation_value  # noqa: E402
from pivotal.auctions import Auction, PaymentRule, load_auction, run_auction, vcg  # noqa: E402
from pivotal.auctions.core_payments import core_payments  # noqa: E402

ITEMS = ["A", "B", "C", "D", "E", "F"]
RULES = (PaymentRule.VCG, PaymentRule.CORE_BIDDER_OPTIMAL, PaymentRule.CORE_VCG_NEAREST)


def random_auction(rng: np.random.Generator) -> list[tuple[str, list[str], float]]:
    """Bids of one random auction with ties, zero values, duplicate bundles, identical bidders."""
    items = ITEMS[: int(rng.integers(2, 7))]
    n_bidders = int(rng.integers(2, 8))
    shared = [float(rng.uniform(0, 20)) for _ in range(3)]
    triples: list[tuple[str, list[str], float]] = []
    bidders: list[list[tuple[list[str], float]]] = []
    for i in range(n_bidders):
        if bidders and rng.random() < 0.25:  # an identical bidder
            bids = list(bidders[int(rng.integers(len(bidders)))])
        else:
            bids = []
            seen: set[frozenset[str]] = set()
            for _ in range(int(rng.integers(1, 5))):
                size = int(rng.integers(1, len(items) + 1))
                bundle = sorted(str(g) for g in rng.choice(items, size, replace=False))
                if frozenset(bundle) in seen:
                    continue
                seen.add(frozenset(bundle))
                kind = rng.random()
                if kind < 0.2:
                    value = 0.0
                elif kind < 0.5:
                    value = float(shared[int(rng.integers(3))])  # ties across bidders
                elif kind < 0.8:
                    value = float(rng.integers(1, 21))
                else:
                    value = float(rng.uniform(0, 20))
                bids.append((bundle, value))
        bidders.append(bids)
        triples += [(f"b{i}", bundle, value) for bundle, value in bids]
    return triples


def scaled(triples: list[tuple[str, list[str], float]], factor: float) -> Auction:
    items = sorted({g for _, bundle, _ in triples for g in bundle})
    return Auction.from_bids(items, [(b, bundle, v * factor) for b, bundle, v in triples])


def random_sweep(n: int, seed: int, scales: list[float]) -> None:
    rng = np.random.default_rng(seed)
    draws = [random_auction(rng) for _ in range(n)]
    print(f"random auctions: {n} per scale, seed {seed}")
    print(
        f"{'scale':>7} {'rule':>20} {'errors':>7} {'wrong W':>8} {'not core':>9} "
        f"{'rev!=MRC':>9} {'max|p-ref|/v':>13} {'seconds':>8}"
    )
    for factor in scales:
        for rule in RULES:
            errors = wrong = outside = off_mrc = 0
            worst = 0.0
            began = time.perf_counter()
            for triples in draws:
                auction = scaled(triples, factor)
                top = max((b.value for b in auction.bids), default=0.0) or 1.0
                try:
                    outcome = run_auction(auction, rule)
                except Exception:
                    errors += 1
                    continue
                ref = brute_force_core(auction, {b: outcome.values[b] for b in outcome.allocation})
                if abs(outcome.welfare - ref.welfare) > 1e-9 * top:
                    wrong += 1
                    continue
                pay = np.array([outcome.payments[b] for b in ref.winners])
                tol = 1e-9 * top
                if rule is PaymentRule.VCG:
                    worst = max(worst, float(np.max(np.abs(pay - ref.vcg), initial=0.0)) / top)
                    continue
                if np.any(ref.rows @ pay < ref.rhs - tol):
                    outside += 1
                if abs(pay.sum() - ref.mrc) > tol:
                    off_mrc += 1
                if rule is PaymentRule.CORE_VCG_NEAREST and ref.winners:
                    try:
                        point = nearest_point(
                            ref.vcg, ref.rows, ref.rhs, ref.vcg, ref.values, ref.mrc
                        )
                    except ValueError:
                        worst = float("nan")  # the reference failed: shown as nan
                        continue
                    worst = max(worst, float(np.max(np.abs(pay - point))) / top)
            seconds = time.perf_counter() - began
            print(
                f"{factor:>7.0e} {rule.value:>20} {errors:>7} {wrong:>8} {outside:>9} "
                f"{off_mrc:>9} {worst:>13.2e} {seconds:>8.2f}"
            )


def cats_check(folder: Path) -> None:
    print(f"\nCATS files in {folder}: VCG-nearest")
    print(
        f"{'file':>28} {'winners':>7} {'cons':>5} {'seconds':>8} {'max|p-NNLS|/v':>14} "
        f"{'milp offer-rev':>15} {'status':>8}"
    )
    for path in sorted(folder.glob("*.txt")):
        auction = load_auction(path)
        base = vcg(auction)
        began = time.perf_counter()
        try:
            result = core_payments(auction, base, rule="vcg-nearest")
        except Exception as exc:
            print(
                f"{path.name:>28} {'':>7} {'':>5} {time.perf_counter() - began:>8.2f} "
                f"{'':>14} {'':>15} {type(exc).__name__:>8}"
            )
            continue
        seconds = time.perf_counter() - began
        winners = list(base.allocation)
        top = max(b.value for b in auction.bids)
        index = {b: i for i, b in enumerate(winners)}
        rows = np.zeros((len(result.constraints), len(winners)))
        for r, con in enumerate(result.constraints):
            for b in con.payers:
                rows[r, index[b]] = 1.0
        rhs = np.array([c.rhs for c in result.constraints])
        lower = np.array([base.payments[b] for b in winners])
        upper = np.array([base.values[b] for b in winners])
        pay = np.array([result.payments[b] for b in winners])
        point = nearest_point(lower, rows, rhs, lower, upper, float(pay.sum()))
        offer = separation_value(auction, result.payments, {b: base.values[b] for b in winners})
        print(
            f"{path.name:>28} {len(winners):>7} {len(rhs):>5} {seconds:>8.2f} "
            f"{float(np.max(np.abs(pay - point))) / top:>14.2e} "
            f"{offer - float(pay.sum()):>15.2e} {'ok':>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auctions", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scales", default="1e-9,1e-6,1e-3,1,1e3,1e6,1e9,1e12,1e15")
    default_cats = Path(__file__).resolve().parents[1].parent / "shared" / "cases" / "cats"
    parser.add_argument("--cats", type=Path, default=default_cats)
    args = parser.parse_args()
    random_sweep(args.auctions, args.seed, [float(s) for s in args.scales.split(",") if s])
    if args.cats.is_dir():
        cats_check(args.cats)


if __name__ == "__main__":
    main()
