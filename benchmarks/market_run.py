"""``pivotal market run`` end to end (read, solve, write JSON) on a generated market file.

Usage::

    .venv/bin/python benchmarks/market_run.py [--agents 1000000] [--seed 1] [--no-withholding]
        [--baseline OTHER/.venv/bin/pivotal] [--file market.json] [--repeat 1]

Generates ``--agents`` agents (half producers, half buyers) with ``pivotal market generate`` (or
uses ``--file``), then times ``pivotal market run FILE -o OUT`` as a user runs it: a new process
that parses the file, solves, searches the largest producer's withholding (unless
``--no-withholding``) and writes the result. Wall time, the process's CPU time (user + system,
which depends less on what else the machine runs) and peak resident memory, for this checkout's
``pivotal`` and, with ``--baseline``, another installation's (for example a worktree of the
previous commit) on the same file in the same run; ``--repeat`` runs each that many times,
alternating, with the load average before each run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(sys.executable).parent / "pivotal"


def timed(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command[0]} exited with {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-withholding", action="store_true")
    parser.add_argument("--baseline", help="another pivotal executable to compare with")
    parser.add_argument("--file", type=Path, help="an existing market file (skips generating)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each executable")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        market = args.file or Path(tmp) / "market.json"
        if args.file is None:
            producers = args.agents // 2
            buyers = args.agents - producers
            subprocess.run(
                [str(HERE), "market", "generate", "--producers", str(producers)]
                + ["--buyers", str(buyers), "--seed", str(args.seed), "-o", str(market)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        size = market.stat().st_size / 2**20
        print(f"market file {market.name}: {size:,.0f} MiB; load average {os.getloadavg()[0]:.1f}")
        print(f"{'pivotal':<48} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} {'load':>5}")
        for _ in range(args.repeat):
            for exe in [str(HERE)] + ([args.baseline] if args.baseline else []):
                command = [exe, "market", "run", str(market), "-o", str(Path(tmp) / "out.json")]
                if args.no_withholding:
                    command.append("--no-withholding")
                load = os.getloadavg()[0]
                wall, cpu, rss = timed(command)
                print(f"{exe:<48} {wall:>8.1f} {cpu:>8.1f} {rss:>9,.0f} {load:>5.1f}", flush=True)
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end)")


if __name__ == "__main__":
    main()
