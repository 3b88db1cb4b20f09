"""Negotiation at scale (issue 17 item 5): rounds, CPU, time, memory and the privacy premium.

Usage::

    .venv/bin/python benchmarks/negotiation_scale.py [--sizes 20.10.10.4.3,40.10.10.4.3]
        [--seed 7] [--service] [--json FILE] [--eps TOL] [--cf-eps TOL] [--cold]

Sizes are ``K.F.R.T.V`` (products, sites, regions, weeks, vendors) of ``pivotal negotiate
generate --seed 7``; the default (K20 and K40 at F10 R10 T4 V3) runs in a few minutes, and
``--sizes 100.10.10.4.3,200.20.20.8.5,1000.20.20.8.5`` goes further. Each size runs in a fresh
process (so that its peak memory is its own) and reports:

- **rounds on the wire** (``*``: a run stopped unconverged at 500 rounds; the money is still
  within its bounds, which then are wide): task/answer exchanges a party goes through (the session's
  ``wire_rounds`` when it has one: the joint and counterfactual runs share exchanges when they
  run concurrently; otherwise the joint rounds + every counterfactual's rounds + the costs
  exchange), with the joint and counterfactual rounds;
- **CPU per party**: process CPU spent inside each party's answers (best responses, cost and
  value queries), and the coordinator's (the rest of the run);
- **wall** time in process and **peak** resident memory of that process;
- **HiGHS**: CPU of the same LPs solved directly (status quo, joint, each counterfactual;
  :func:`~pivotal.negotiation.centralized.solve_centralized`), and the **privacy premium** =
  the private run's CPU / that;
- the relative gap of the joint cost to the centralized optimum, the largest gain bound, and
  whether every gain is within its bound of the centralized VCG gain (``-`` where the code
  measured has no bounds);
- with ``--service``: wall time with the coordinator and every party as separate processes on
  loopback (``pivotal serve coordinator`` and ``pivotal agent run``, WebSocket), and the CPU
  of the coordinator and of the busiest agent.

``--eps`` sets the ADMM stopping tolerance (eps_abs = eps_rel) of every run, ``--cf-eps`` that of
the counterfactual runs only, and ``--cold`` starts the counterfactual runs cold (the library's
``warm_start_counterfactuals=False``); by default the library's own defaults are measured (in
process only: ``--service`` runs the default terms).

The same file runs against an older checkout (its ``.venv/bin/python``): what that code lacks
(bounds, ``wire_rounds``, ``max_quantity``) is left out of its row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.centralized import solve_centralized
from pivotal.negotiation.cost_models import scenario_models
from pivotal.negotiation.scenario import generate_scenario
from pivotal.negotiation.session import party_views
from pivotal.negotiation.simulation import build_parties, split_blocks

DEFAULT_SIZES = "20.10.10.4.3,40.10.10.4.3"


class TimedParty:
    """A party whose answers are timed (process CPU)."""

    def __init__(self, party: Any) -> None:
        self.party = party
        self.name = party.name
        self.cpu = 0.0

    def _timed(self, method: str, *args: Any) -> Any:
        start = time.process_time()
        try:
            return getattr(self.party, method)(*args)
        finally:
            self.cpu += time.process_time() - start

    def best_response(self, z: Any, prices: Any, rho: float) -> Any:
        return self._timed("best_response", z, prices, rho)

    def cost_at(self, plan: Any) -> float:
        return float(self._timed("cost_at", plan))

    def value_at_prices(self, prices: Any, max_quantity: float) -> float:
        return float(self._timed("value_at_prices", prices, max_quantity))

    def preferred_plan(self) -> Any:
        return self._timed("preferred_plan")


def one(
    size: str,
    seed: int,
    eps: float | None = None,
    cf_eps: float | None = None,
    cold: bool = False,
) -> dict[str, Any]:
    """Measure one size in this process (``eps``, ``cf_eps``, ``cold``: see the module
    docstring)."""
    from pivotal.negotiation import transfers

    k, f, r, t, v = (int(x) for x in size.split("."))
    scenario = generate_scenario(k, f, r, t, v, np.random.default_rng(seed))
    hub, vendors, blocks = build_parties(scenario)
    sizes = [b.size for b in blocks]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    timed = [TimedParty(p) for p in (hub, *vendors)]
    sq = split_blocks(blocks, timed[0].preferred_plan())
    kwargs: dict[str, Any] = {}
    try:
        from pivotal.negotiation.simulation import public_max_quantity

        kwargs["max_quantity"] = public_max_quantity(scenario)
    except ImportError:  # an older checkout
        pass
    settings = AdmmSettings() if eps is None else AdmmSettings(eps_abs=eps, eps_rel=eps)
    if cf_eps is not None:
        kwargs["counterfactual_settings"] = AdmmSettings(eps_abs=cf_eps, eps_rel=cf_eps)
    if cold:
        kwargs["warm_start_counterfactuals"] = False
    wire: list[int] = []
    original = transfers.drive

    def counting_drive(session: Any, parties: Any, log: Any = None) -> None:
        original(session, parties, log)
        wire.append(int(getattr(session, "wire_rounds", -1)))

    transfers.drive = counting_drive  # type: ignore[assignment]
    try:
        outcome = transfers.negotiate(
            timed[0], timed[1:], sizes, sq, settings, require_convergence=False, **kwargs
        )
    finally:
        transfers.drive = original  # type: ignore[assignment]
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the same LPs, centrally: status quo (the hub's own LP), joint, each counterfactual
    models = scenario_models(scenario)
    names = [x.name for x in scenario.vendors]
    views = party_views(scenario.retailer.name, names)
    h0 = time.process_time()
    hub.preferred_plan()
    joint = solve_centralized(models, views, sizes)
    without: dict[str, dict[str, float]] = {}
    for b, name in enumerate(names):
        others = [x for x in views if x.name != name]
        cf = solve_centralized(
            {x.name: models[x.name] for x in others}, others, sizes, fixed={b: sq[b]}
        )
        without[name] = dict(cf.costs)
    highs = time.process_time() - h0
    cf_rounds = {name: res.rounds for name, res in outcome.counterfactuals.items()}
    rounds = wire[0] if wire and wire[0] >= 0 else outcome.rounds + sum(cf_rounds.values()) + 1
    row: dict[str, Any] = {
        "size": size,
        "products": k,
        "plan_entries": sum(sizes),
        "rounds_on_wire": rounds,
        "joint_rounds": outcome.rounds,
        "converged": bool(outcome.converged),
        "counterfactual_rounds": cf_rounds,
        "cpu": cpu,
        "party_cpu": {p.name: p.cpu for p in timed},
        "coordinator_cpu": cpu - sum(p.cpu for p in timed),
        "wall": wall,
        "peak_mib": peak_mib,
        "highs_cpu": highs,
        "premium": cpu / highs,
        "relative_gap": (outcome.total_cost - joint.total_cost) / max(1.0, abs(joint.total_cost)),
        "eps": eps,
        "cf_eps": cf_eps,
        "cold": cold,
    }
    bounds = getattr(outcome, "gain_bounds", None)
    if bounds is not None:
        from pivotal.negotiation.clarke import clarke_transfers

        fee = outcome.activity_fee
        exact = clarke_transfers(scenario.retailer.name, names, joint.costs, without, fee)
        sq_cost = {p: c["status_quo"] for p, c in outcome.costs.items()}
        gains = {p: sq_cost[p] - joint.costs[p] + exact[p] for p in outcome.parties}
        row["max_gain_bound"] = max(bounds.values())
        row["gains_within_bounds"] = all(
            abs(outcome.gains[p] - gains[p]) <= bounds[p] for p in outcome.parties
        )
        row["transfers_within_bounds"] = all(
            abs(outcome.transfers[p] - exact[p]) <= bounds[p] for p in outcome.parties
        )
        row["max_transfer_error"] = max(
            abs(outcome.transfers[p] - exact[p]) for p in outcome.parties
        )
        row["max_gain_error"] = max(abs(outcome.gains[p] - gains[p]) for p in outcome.parties)
        row["joint_cost"] = joint.total_cost
        row["max_bound_relative"] = max(bounds.values()) / max(1.0, abs(joint.total_cost))
    return row


def _cpu(rusage: Any) -> float:
    return float(rusage.ru_utime + rusage.ru_stime)


def service(size: str, seed: int) -> dict[str, Any]:
    """Wall time and CPU with the coordinator and every party as separate processes."""
    from pivotal.negotiation.deployment import split_scenario

    k, f, r, t, v = (int(x) for x in size.split("."))
    scenario = generate_scenario(k, f, r, t, v, np.random.default_rng(seed))
    cli = [sys.executable, "-m", "pivotal"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config, private = split_scenario(scenario)
        (root / "negotiation.json").write_text(json.dumps(config))
        for party, doc in private.items():
            (root / f"{party}.json").write_text(json.dumps(doc))
        start = time.perf_counter()
        coordinator = subprocess.Popen(
            [
                *cli,
                "serve",
                "coordinator",
                "--db",
                str(root / "db.sqlite"),
                "--config",
                str(root / "negotiation.json"),
                "--tokens-dir",
                str(root / "tokens"),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "-o",
                str(root / "outcome.json"),
                "--no-access-log",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert coordinator.stdout is not None
        url = ""
        for line in coordinator.stdout:
            if line.startswith("listening on "):
                url = line.split()[-1]
                break
        agents = {
            party: subprocess.Popen(
                [
                    *cli,
                    "agent",
                    "run",
                    "--coordinator",
                    url,
                    "--party",
                    party,
                    "--token-file",
                    str(root / "tokens" / f"{party}.token"),
                    "--private",
                    str(root / f"{party}.json"),
                    "--json",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for party in private
        }
        agent_cpu = {}
        for party, proc in agents.items():
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                raise RuntimeError(f"agent {party} exited with {proc.returncode}")
            agent_cpu[party] = _cpu(usage)
        wall = time.perf_counter() - start
        coordinator.terminate()
        _, _, usage = os.wait4(coordinator.pid, 0)
        coordinator.returncode = 0
    return {
        "service_wall": wall,
        "service_coordinator_cpu": _cpu(usage),
        "service_agent_cpu": agent_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="K.F.R.T.V, comma-separated")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--service", action="store_true", help="also run on the service")
    parser.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    parser.add_argument("--eps", type=float, help="ADMM eps_abs = eps_rel of every run")
    parser.add_argument("--cf-eps", type=float, help="ADMM eps of the counterfactual runs")
    parser.add_argument("--cold", action="store_true", help="cold counterfactual runs")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        row = one(args.one, args.seed, args.eps, args.cf_eps, args.cold)
        if args.service:
            try:
                row.update(service(args.one, args.seed))
            except RuntimeError as exc:  # e.g. a run that does not converge exits 3
                row["service_error"] = str(exc)
        print(json.dumps(row))
        return
    rows = []
    head = (
        f"{'size':>16} {'entries':>7} {'wire':>5} {'joint':>5} {'cf rounds':>12} "
        f"{'CPU s':>7} {'hub s':>6} {'vendor s':>8} {'coord s':>7} {'wall s':>7} "
        f"{'peak MiB':>8} {'HiGHS s':>7} {'premium':>7} {'gap':>8} {'bound':>8} ok"
    )
    print(head, flush=True)
    for size in args.sizes.split(","):
        cmd = [sys.executable, __file__, "--one", size, "--seed", str(args.seed)]
        if args.service:
            cmd.append("--service")
        for flag, value in (("--eps", args.eps), ("--cf-eps", args.cf_eps)):
            if value is not None:
                cmd += [flag, str(value)]
        if args.cold:
            cmd.append("--cold")
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{size:>16} failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        vendor_cpu = max(c for p, c in row["party_cpu"].items() if p != "retailer")
        cf = "/".join(str(x) for x in row["counterfactual_rounds"].values())
        if not row.get("converged", True):
            cf += "*"
        ok = row.get("gains_within_bounds")
        print(
            f"{size:>16} {row['plan_entries']:>7} {row['rounds_on_wire']:>5} "
            f"{row['joint_rounds']:>5} {cf:>12} {row['cpu']:>7.1f} "
            f"{row['party_cpu'].get('retailer', 0.0):>6.1f} {vendor_cpu:>8.1f} "
            f"{row['coordinator_cpu']:>7.1f} {row['wall']:>7.1f} {row['peak_mib']:>8.0f} "
            f"{row['highs_cpu']:>7.2f} {row['premium']:>6.1f}x {row['relative_gap']:>8.1e} "
            f"{row.get('max_gain_bound', float('nan')):>8.3g} {'-' if ok is None else ok}",
            flush=True,
        )
        if "service_error" in row:
            print(f"{'':>16} service: {row['service_error']}", flush=True)
        if "service_wall" in row:
            agents = row["service_agent_cpu"]
            print(
                f"{'':>16} service: wall {row['service_wall']:.1f} s, coordinator CPU "
                f"{row['service_coordinator_cpu']:.1f} s, busiest agent CPU "
                f"{max(agents.values()):.1f} s ({max(agents, key=agents.__getitem__)})",
                flush=True,
            )
    if any(not row.get("converged", True) for row in rows):
        print(
            "* a run stopped at --max-rounds (500) unconverged: its numbers are those of 500 rounds"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
