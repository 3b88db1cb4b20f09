"""Tutorial 1: the seed combinatorial auction (3 items, 4 bidders).

Run: python docs/tutorial_auction.py [OUTPUT_FOLDER]

Four bidders value bundles of A, B and C (XOR bids; the table is
``examples/seed_vcg_3x4.json``). We find the welfare-maximizing allocation, charge Clarke pivot
payments, compare with a sequential second-price auction and with core-selecting payments, and
write a report with figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pivotal.auctions import sequential_second_price, vcg
from pivotal.auctions.comparison import auction_comparison
from pivotal.auctions.core_payments import is_in_core
from pivotal.auctions.formats import load_auction
from pivotal.auctions.payment_rules import PaymentRule, run_auction
from pivotal.auctions.result import auction_result
from pivotal.report import write_report

ROOT = Path(__file__).resolve().parents[1]
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tutorial-auction")

auction = load_auction(ROOT / "examples" / "seed_vcg_3x4.json")

# 1. VCG: the allocation that maximizes reported welfare, and Clarke pivot payments
outcome = vcg(auction)
print("winners:", dict(outcome.allocation), "welfare:", outcome.welfare)
print("VCG payments:", dict(outcome.payments), "revenue:", outcome.revenue)
assert outcome.welfare == 26 and outcome.revenue == 14  # published: welfare 26, revenue 14

# 2. The sequential second-price auction sells A, then B, then C
sequential = sequential_second_price(auction, ["A", "B", "C"])
print("sequential revenue:", sequential.revenue, "welfare:", sequential.welfare)

# 3. Is VCG in the core? Bidders 1 and 4 together offer 19 > 14: they block.
in_core, coalition = is_in_core(auction, outcome)
print(
    "VCG in the core:",
    in_core,
    "- blocking coalition",
    coalition.bidders,
    "offers",
    coalition.offer,
)
core = run_auction(auction, PaymentRule.CORE_VCG_NEAREST)
print("VCG-nearest core payments:", dict(core.payments), "revenue:", core.revenue)
assert abs(core.payments["2"] - 11.5) < 1e-6 and abs(core.payments["3"] - 7.5) < 1e-6

# 4. The result document: the outcome with every comparison above, computed once; the report
#    (summary, figures: value and payment per bidder, the core polytope) only reads it
doc = auction_result(auction, outcome, auction_comparison(auction, outcome, order=["A", "B", "C"]))
print(
    "document:",
    doc["kind"],
    "schema",
    doc["schema_version"],
    "- VCG in core:",
    doc["comparison"]["vcg_in_core"],
)
files = write_report(json.loads(json.dumps(doc)), out)
print("report:", files.index)
