"""The coordinator's own ADMM step at many parties (no transport, no persistence).

Usage::

    .venv/bin/python benchmarks/coordinator_step.py [--vendors 9,49,199] [--block 16] [--rounds 50]

A hub holding every block and one vendor per block (the service load benchmark's shape: 16
entries per block), random answers each round, an unreachable stopping tolerance, plans kept
only for the last round. Prints milliseconds per round for ``step`` (the update plus every
party's broadcast) and ``advance`` followed by ``broadcast`` per party (the service's path).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.coordinator import Coordinator, PartyView


def per_round_ms(vendors: int, block: int, rounds: int, *, lazy: bool) -> float:
    views = [PartyView("hub", tuple(range(vendors)))]
    views += [PartyView(f"v{i}", (i,)) for i in range(vendors)]
    settings = AdmmSettings(eps_abs=1e-300, eps_rel=0.0, max_rounds=10**6)
    c = Coordinator([block] * vendors, views, settings, keep_plans=False)
    rng = np.random.default_rng(0)
    sizes = {v.name: block * len(v.blocks) for v in views}
    answers = [{n: rng.random(s) for n, s in sizes.items()} for _ in range(rounds)]
    c.start()
    start = time.perf_counter()
    for r in range(rounds):
        if lazy:
            c.advance(answers[r])
            for name in sizes:
                c.broadcast(name)
        else:
            c.step(answers[r])
    return (time.perf_counter() - start) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendors", default="9,49,199")
    parser.add_argument("--block", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    print("| parties | step ms/round | advance + broadcasts ms/round |")
    print("|---|---|---|")
    for n in (int(x) for x in args.vendors.split(",")):
        step = per_round_ms(n, args.block, args.rounds, lazy=False)
        lazy = per_round_ms(n, args.block, args.rounds, lazy=True)
        print(f"| {n + 1} | {step:.2f} | {lazy:.2f} |", flush=True)


if __name__ == "__main__":
    main()
