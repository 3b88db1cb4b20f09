"""Tutorial 3: the truck negotiation between a retailer and its vendor.

Run: python docs/tutorial_negotiation.py [OUTPUT_FOLDER]

The retailer needs 5,000 cases in Phoenix and, alone, orders them shipped to its Phoenix site
(the just-in-time status quo). The vendor, near Cincinnati, already runs a weekly truck to the
retailer's Dallas site half empty. Consensus planning finds the cheaper joint plan: ship to
Dallas on the scheduled truck and let the retailer move the goods on. VCG transfers relative to
the status quo make the vendor compensate the retailer exactly for its extra cost; the vendor
keeps the whole saving, and truthful reporting is each party's best strategy.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pivotal.negotiation.scenario import truck_example
from pivotal.negotiation.simulation import simulate
from pivotal.report import write_report

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tutorial-negotiation")

sim = simulate(truck_example())  # every party in this process, plus the centralized check
o = sim.outcome
print(f"joint plan after {o.rounds} rounds (converged: {o.converged})")
for party in o.parties:
    c = o.costs[party]
    print(
        f"  {party}: cost {c['status_quo']:,.2f} -> {c['joint']:,.2f}, "
        f"transfer {o.transfers[party]:,.2f}, gain {o.gains[party]:,.2f}"
    )
assert sim.centralized is not None and abs(sim.centralized.relative_gap) < 1e-4
dallas = float(sim.blocks[0].as_array(o.plan[0])[0, 1].sum())  # product 'cases', site DAL
print(f"units shipped to Dallas: {dallas:,.0f}")
assert dallas > 4_999
retailer_extra = o.costs["retailer"]["joint"] - o.costs["retailer"]["status_quo"]
assert abs(o.transfers["retailer"] - retailer_extra) < 1e-3  # compensated exactly
assert abs(o.gains["retailer"]) < 1e-3
print("report:", write_report(sim.to_dict(), out).index)
