"""What a report costs: `pivotal report` against reading and rendering alone, and `run --report`
against `run` (issue 16: reports read the result document and never solve).

Usage::

    .venv/bin/python benchmarks/report_time.py [--goods 40] [--bids 250] [--seed 7] [--runs 3]
        [--baseline OTHER/.venv/bin/pivotal]

Generates a CATS auction (``pivotal auction generate``), runs it with ``-o`` and measures, as
the median of ``--runs`` wall times:

* ``report``: ``pivotal report RESULT -o DIR`` (a fresh process, as a user runs it);
* ``read+render``: a fresh Python process that reads the JSON and draws the same figures and
  page with every solver call refused (HiGHS and OSQP raise): the floor of a report that does
  not solve (its imports of matplotlib and plotly included);
* ``run`` and ``run --report``: the extra cost of asking for a report at run time.

With ``--baseline`` the same commands run with another installation (e.g. main before the
change, in its own venv), interleaved so that both see the same load; the baseline writes its
own result file, since documents of other versions differ.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(sys.executable).parent / "pivotal"


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


_FLOOR = """
import json, sys, highspy, osqp
def refuse(*args, **kwargs):
    raise AssertionError("a solver was called while reporting")
highspy.Highs.run = osqp.OSQP.solve = osqp.OSQP.setup = refuse
from pivotal.report.figures import Figure
from pivotal.report.html import report_page
from pivotal.report.kinds import VIEWS
from pivotal.report.render import save_static
from pathlib import Path
doc = json.loads(Path(sys.argv[1]).read_text())
out = Path(sys.argv[2]); out.mkdir()
view = VIEWS[doc["kind"]]
figures = view.figures(doc)
for fig in figures:
    save_static(fig, out)
page = report_page(view.title(doc), "", view.summary(doc), tuple(figures), (), {})
(out / "index.html").write_text(page)
"""


def read_and_render(result: Path, out: Path) -> float:
    """A fresh process that reads the document and draws its figures and page, with every
    solver refused (HiGHS and OSQP raise): what a report costs when nothing is solved."""
    return wall([sys.executable, "-c", _FLOOR, str(result), str(out)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--goods", type=int, default=40)
    parser.add_argument("--bids", type=int, default=250)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None)
    args = parser.parse_args()
    exes = {"this checkout": str(HERE)}
    if args.baseline is not None:
        exes["baseline"] = str(args.baseline)
    work = Path(tempfile.mkdtemp(prefix="report-time-"))
    try:
        auction = work / "auction.txt"
        subprocess.run(
            [exes["this checkout"], "auction", "generate", "--goods", str(args.goods), "--bids",
             str(args.bids), "--seed", str(args.seed), "-o", str(auction)],
            check=True, capture_output=True,
        )  # fmt: skip
        times: dict[str, dict[str, list[float]]] = {n: {} for n in exes}
        for k in range(args.runs):
            for name, exe in exes.items():
                tag = name.replace(" ", "-")
                result = work / f"{tag}.json"
                t = times[name]
                t.setdefault("run", []).append(
                    wall([exe, "auction", "run", str(auction), "-o", str(result)])
                )
                t.setdefault("run --report", []).append(
                    wall([exe, "auction", "run", str(auction), "-o", str(work / f"{tag}-r.json"),
                          "--report", str(work / f"{tag}-run-report-{k}")])
                )  # fmt: skip
                t.setdefault("report", []).append(
                    wall([exe, "report", str(result), "-o", str(work / f"{tag}-report-{k}")])
                )
                t.setdefault("process start-up", []).append(wall([exe, "--version"]))
                if name == "this checkout":
                    t.setdefault("read+render", []).append(
                        read_and_render(result, work / f"inproc-{k}")
                    )
        print(f"auction: {args.goods} goods, {args.bids} bids, seed {args.seed}; "
              f"median of {args.runs} runs (s)")  # fmt: skip
        rows = ["run", "run --report", "report", "process start-up", "read+render"]
        print(f"{'':28}" + "".join(f"{n:>16}" for n in exes))
        for row in rows:
            cells = [
                f"{statistics.median(times[n][row]):16.2f}" if row in times[n] else f"{'-':>16}"
                for n in exes
            ]
            print(f"{row:28}" + "".join(cells))
        mine = {k: statistics.median(v) for k, v in times["this checkout"].items()}
        floor = mine["read+render"]
        print(f"\nreport / read+render = {mine['report'] / floor:.2f} (target <= 1.2)")
        print(f"run --report - run = {mine['run --report'] - mine['run']:.2f} s (no second solve)")
        if "baseline" in times:
            base = {k: statistics.median(v) for k, v in times["baseline"].items()}
            print(f"report: baseline / this checkout = {base['report'] / mine['report']:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
