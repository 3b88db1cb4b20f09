"""Tutorial 2: the seed procurement market (one producer, one buyer), then a generated one.

Run: python docs/tutorial_market.py [OUTPUT_FOLDER]

``examples/market_seed.json``: the producer ``maker`` has cost ``C(q) = 2 q + q^2 / 2`` (marginal
``2 + q``), the buyer ``government`` benefit ``B(q) = 10 q - q^2 / 2`` (marginal ``10 - q``).
Closed form: marginal cost meets marginal benefit at ``q* = 4``, price ``p* = 6``, welfare
``B(4) - C(4) = 32 - 16 = 16``. Without either agent nothing is traded, so each one's VCG utility
is the whole welfare 16: the maker receives ``C(4) + 16 = 32``, the government pays
``B(4) - 16 = 16``, a deficit of 16 (VCG is not budget-balanced). At the uniform price 6 both pay
and receive 24 and the budget balances, but the maker gains by withholding supply.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pivotal.markets.clarke import vcg_market
from pivotal.markets.generators import draw_market
from pivotal.markets.market import load_market
from pivotal.markets.misreports import best_withholding, largest_producer
from pivotal.markets.result import market_result
from pivotal.report import write_report

ROOT = Path(__file__).resolve().parents[1]
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tutorial-market")
out.mkdir(parents=True, exist_ok=True)  # write_report creates a report's folder, not its parents

market = load_market(ROOT / "examples" / "market_seed.json")
outcome = vcg_market(market)
print(f"price {outcome.price:g}, traded {outcome.traded:g}, welfare {outcome.welfare:g}")
print("VCG transfers (positive = paid to the agent):", dict(outcome.transfers))
print("uniform-price transfers:", dict(outcome.uniform_price.payments))
assert abs(outcome.price - 6) < 1e-9 and abs(outcome.traded - 4) < 1e-9  # the closed form
assert abs(outcome.transfers["maker"] - 32) < 1e-9
assert abs(outcome.transfers["government"] + 16) < 1e-9

doc = market_result(market, outcome, best_withholding(market, largest_producer(market)))
w = doc["withholding"]
print(
    f"{w['producer']} gains {w['profit_gain']:.3f} by withholding at the uniform price; "
    f"under VCG its utility goes from {w['vcg_utility_truthful']:.3f} "
    f"to {w['vcg_utility_at_best_withholding']:.3f}"
)
assert w["profit_gain"] > 0 and w["vcg_utility_at_best_withholding"] <= w["vcg_utility_truthful"]
print("report:", write_report(doc, out / "seed").index)

generated = draw_market(6, 5, np.random.default_rng(1)).market()
g = vcg_market(generated)
print(f"generated market: price {g.price:.4g}, traded {g.traded:.4g}, VCG deficit {g.budget:.4g}")
print(
    "report:",
    write_report(
        market_result(generated, g, best_withholding(generated, largest_producer(generated))),
        out / "generated",
    ).index,
)
