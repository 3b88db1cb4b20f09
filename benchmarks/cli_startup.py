"""How long the command line takes to answer before it does any work.

Usage::

    .venv/bin/python benchmarks/cli_startup.py [--runs 15] [--baseline OTHER/.venv/bin/pivotal]

Runs ``pivotal --help``, ``pivotal auction --help`` and a usage error (``pivotal auction run``
without its FILE) ``--runs`` times each, interleaving this checkout's ``pivotal`` with the
``--baseline`` executable (e.g. the same command installed from main before a change, in its
own venv) so that both see the same machine load. Prints the median and the fastest wall time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "pivotal --help": ["--help"],
    "pivotal auction --help": ["auction", "--help"],
    "usage error": ["auction", "run"],
}


def once(exe: str, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([exe, *args], capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--baseline", help="another pivotal executable to compare with")
    args = parser.parse_args()
    here = str(Path(sys.executable).with_name("pivotal"))
    exes = {"this checkout": here}
    if args.baseline:
        exes["baseline"] = args.baseline
    times: dict[tuple[str, str], list[float]] = {(c, e): [] for c in CASES for e in exes}
    for _ in range(args.runs):
        for case, cli_args in CASES.items():
            for label, exe in exes.items():
                times[case, label].append(once(exe, cli_args))
    print("| command | executable | median s | fastest s | runs |")
    print("|---|---|---:|---:|---:|")
    for (case, label), ts in times.items():
        print(f"| `{case}` | {label} | {statistics.median(ts):.3f} | {min(ts):.3f} | {len(ts)} |")


if __name__ == "__main__":
    main()
