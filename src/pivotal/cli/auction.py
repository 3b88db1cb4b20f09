"""``pivotal auction``: run, compare, audit and generate combinatorial auctions."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from pivotal.auctions import (
    Auction,
    PaymentRule,
    audit_auction,
    load_auction,
    run_auction,
    sequential_second_price,
)
from pivotal.auctions.cats import write_cats
from pivotal.auctions.clarke import ProgressCallback
from pivotal.auctions.comparison import run_and_document
from pivotal.auctions.generators import generate_auction
from pivotal.cli.common import (
    JsonOpt,
    OutputOpt,
    check_file_option,
    deliver_json,
    emit_json,
    err,
    handle_errors,
    num,
    out,
    stamp_source,
)
from pivotal.cli.report import ReportOpt, emit_report
from pivotal.engine import engine_from_spec
from pivotal.errors import InputError
from pivotal.fileio import display_name
from pivotal.solvers import SolverOptions

auction_app = typer.Typer(
    help="Combinatorial auctions with XOR bundle bids.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


class PaymentsOption(StrEnum):
    """Payment rules selectable on the command line."""

    vcg = "vcg"
    core_vcg_nearest = "core-vcg-nearest"
    core_bidder_optimal = "core-bidder-optimal"
    pay_as_bid = "pay-as-bid"


class DistributionOption(StrEnum):
    """Bid distributions of ``pivotal auction generate``."""

    arbitrary = "arbitrary"
    regions = "regions"


def _parse_order(order: str | None) -> list[str] | None:
    return None if order is None else [s.strip() for s in order.split(",") if s.strip()]


def _solver_options(time_limit: float | None) -> SolverOptions:
    if time_limit is not None and time_limit <= 0:
        raise InputError(f"--time-limit must be positive, got {time_limit}")
    return SolverOptions(time_limit=time_limit)


FileArg = Annotated[
    Path,
    typer.Argument(
        metavar="FILE",
        help="Auction file: .json (bids or valuations), .csv, CATS .txt; - reads standard input.",
    ),
]
OrderOpt = Annotated[
    str | None,
    typer.Option(
        "--order", metavar="ITEMS", help="Sale order of the sequential auction, e.g. A,B,C."
    ),
]
TimeLimitOpt = Annotated[
    float | None,
    typer.Option(
        "--time-limit", metavar="SECONDS", help="Seconds per MIP solve (default: no limit)."
    ),
]
ApproxOpt = Annotated[
    bool,
    typer.Option(
        "--approximate", help="Accept time-limited solves; the outcome is marked approximate."
    ),
]
PaymentsOpt = Annotated[
    PaymentsOption,
    typer.Option(
        "--payments",
        metavar="RULE",
        help="Payment rule: vcg, core-vcg-nearest, core-bidder-optimal or pay-as-bid.",
        case_sensitive=False,
    ),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        metavar="ENGINE",
        help="Where counterfactual solves run: inprocess, processes[:N] or dask://HOST:PORT.",
    ),
]


@contextlib.contextmanager
def solve_progress(enabled: bool) -> Iterator[ProgressCallback]:
    """A rich progress bar over the counterfactual solves (on stderr, only on a terminal)."""
    with Progress(
        TextColumn("counterfactual solves"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not enabled,
    ) as progress:
        task = progress.add_task("", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _outcome_table(auction: Auction, title: str, doc: dict[str, Any]) -> Table:
    table = Table(title=title)
    for col in ("bidder", "wins", "value", "payment", "utility"):
        table.add_column(col, justify="left" if col in {"bidder", "wins"} else "right")
    for bidder in auction.bidders:
        items = doc["allocation"].get(bidder)
        table.add_row(
            bidder,
            "{" + ", ".join(items) + "}" if items else "-",
            num(doc["values"][bidder]),
            num(doc["payments"][bidder]),
            num(doc["utilities"][bidder]),
        )
    return table


@auction_app.command("run")
@handle_errors
def auction_run(
    file: FileArg,
    json_out: JsonOpt = False,
    order: OrderOpt = None,
    payments: PaymentsOpt = PaymentsOption.vcg,
    time_limit: TimeLimitOpt = None,
    approximate: ApproxOpt = False,
    output: OutputOpt = None,
    engine: EngineOpt = "inprocess",
    report: ReportOpt = None,
    core: Annotated[
        bool,
        typer.Option(
            "--core/--no-core",
            help="Compare with the VCG-nearest core payments (more solves; reports show it).",
        ),
    ] = True,
) -> None:
    """Solve winner determination and charge payments (VCG by default), compared with the
    VCG-nearest core payments and the sequential second-price auction."""
    auction = load_auction(file)
    opts = _solver_options(time_limit)
    sale_order = _parse_order(order)
    with engine_from_spec(engine) as runner, solve_progress(err.is_terminal) as progress:
        outcome, doc = run_and_document(
            auction,
            PaymentRule(payments.value),
            opts,
            approximate=approximate,
            order=sale_order,
            core=core,
            engine=runner,
            on_progress=progress,
        )
    stamp_source(doc, display_name(file))
    if report is not None:
        emit_report(doc, report)
    if json_out or output is not None:
        deliver_json(doc, json_out, output)
        return
    out.print(_outcome_table(auction, f"{outcome.provenance.mechanism.upper()} outcome", doc))
    out.print(
        f"welfare {num(outcome.welfare)}   revenue {num(outcome.revenue)}   "
        f"solves {outcome.provenance.n_solves}   "
        f"{'exact' if outcome.exact else 'APPROXIMATE (time limit reached)'}"
    )


@auction_app.command("compare")
@handle_errors
def auction_compare(
    file: FileArg,
    order: OrderOpt = None,
    json_out: JsonOpt = False,
    time_limit: TimeLimitOpt = None,
) -> None:
    """VCG next to the sequential second-price auction."""
    auction = load_auction(file)
    vcg_outcome = run_auction(auction, PaymentRule.VCG, _solver_options(time_limit))
    seq = sequential_second_price(auction, _parse_order(order))
    loss = vcg_outcome.welfare - seq.welfare
    rel = loss / vcg_outcome.welfare if vcg_outcome.welfare else 0.0
    if json_out:
        emit_json(
            {
                "vcg": vcg_outcome.to_dict(),
                "sequential_second_price": seq.to_dict(),
                "efficiency_loss": loss,
                "efficiency_loss_relative": rel,
            },
            None,
        )
        return
    table = Table(title=f"VCG vs sequential second-price (order {', '.join(seq.order)})")
    table.add_column("bidder")
    for col in ("VCG wins", "VCG pays", "sequential wins", "sequential pays"):
        table.add_column(col, justify="right")
    for bidder in auction.bidders:
        v_items = vcg_outcome.allocation.get(bidder)
        s_items = seq.allocation.get(bidder)
        table.add_row(
            bidder,
            "{" + ", ".join(v_items) + "}" if v_items else "-",
            num(vcg_outcome.payments[bidder]),
            "{" + ", ".join(s_items) + "}" if s_items else "-",
            num(seq.payments[bidder]),
        )
    table.add_section()
    table.add_row("welfare", num(vcg_outcome.welfare), "", num(seq.welfare), "")
    table.add_row("revenue", "", num(vcg_outcome.revenue), "", num(seq.revenue))
    out.print(table)
    out.print(f"efficiency loss of the sequential auction: {num(loss)} ({rel:.1%} of welfare)")


@auction_app.command("audit")
@handle_errors
def auction_audit(
    file: FileArg,
    payments: PaymentsOpt = PaymentsOption.vcg,
    seed: Annotated[
        int, typer.Option("--seed", metavar="N", help="Seed of the random perturbations.")
    ] = 0,
    n_random: Annotated[
        int,
        typer.Option("--random", metavar="N", help="Random perturbations per bidder.", min=0),
    ] = 20,
    json_out: JsonOpt = False,
    time_limit: TimeLimitOpt = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            metavar="ENGINE",
            help="Where the deviations and counterfactual solves run: inprocess, "
            "processes[:N] or dask://HOST:PORT.",
        ),
    ] = "inprocess",
) -> None:
    """Certificates (IR, losers pay 0, no deficit) and a misreport search per bidder.

    Exit code 1 when a check fails (under VCG that is a bug; under pay-as-bid it is expected).
    """
    auction = load_auction(file)
    opts = _solver_options(time_limit)
    rule = PaymentRule(payments.value)
    show = not json_out and err.is_terminal
    with (
        engine_from_spec(engine) as runner,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not show,
        ) as progress,
    ):
        task = progress.add_task(f"{rule.value} outcome, core check and W*_-i per bidder")
        started = time.perf_counter()

        def on_progress(done: int, total: int) -> None:
            if done == 0:
                what = f"misreport search, {len(auction.bidders)} bidders: {total:,} solves"
                progress.reset(task, total=total, description=what)
                if not show and not json_out:  # piped: one line to say what is running
                    err.print(f"{what} on {runner.name} ...")
            progress.update(task, completed=done)

        report = audit_auction(
            auction,
            rule,
            opts,
            seed=seed,
            n_random=n_random,
            engine=runner,
            on_progress=on_progress,
        )
    if not show and not json_out:
        err.print(f"audit done in {time.perf_counter() - started:.1f} s")
    if json_out:
        emit_json(report.to_dict(), None)
    else:
        checks = Table(title=f"Audit of {report.mechanism}")
        checks.add_column("check")
        checks.add_column("result")
        checks.add_column("detail")
        for c in report.checks:
            checks.add_row(c.name, "pass" if c.passed else "FAIL", c.detail)
        out.print(checks)
        table = Table(title="Best misreport found per bidder")
        for col in ("bidder", "truthful utility", "best utility", "gain", "deviation", "tried"):
            table.add_column(col, justify="left" if col in {"bidder", "deviation"} else "right")
        for m in report.misreports:
            table.add_row(
                m.bidder,
                num(m.truthful_utility),
                num(m.best_utility),
                num(m.gain),
                m.best_deviation,
                str(m.n_deviations),
            )
        out.print(table)
        core = report.core
        members = ", ".join(core.coalition.bidders) or "none"
        out.print(
            f"core: {'in the core' if core.in_core else 'NOT in the core'}; most blocking "
            f"coalition {{{members}}} offers {num(core.coalition.offer)} "
            f"(welfare {num(core.coalition.value)}) against revenue {num(core.coalition.revenue)}"
        )
    if not report.passed:
        raise typer.Exit(1)


@auction_app.command("generate")
@handle_errors
def auction_generate(
    dist: Annotated[
        DistributionOption,
        typer.Option("--dist", metavar="DIST", help="CATS bid distribution: arbitrary or regions."),
    ] = DistributionOption.arbitrary,
    goods: Annotated[int, typer.Option("--goods", metavar="N", help="Number of goods.")] = 100,
    bids: Annotated[int, typer.Option("--bids", metavar="N", help="Number of bids.")] = 500,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Random seed.")] = 1,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="CATS file to write (its folder must exist).",
            callback=check_file_option,
        ),
    ] = Path("auction.txt"),
) -> None:
    """Generate a CATS-style auction (arbitrary or regions) that keeps bidder identity."""
    auction = generate_auction(dist.value, goods, bids, np.random.default_rng(seed))
    comment = f"generated by pivotal: dist={dist.value} goods={goods} bids={bids} seed={seed}"
    write_cats(auction, output, comment=comment)
    out.print(
        f"wrote {output}: {len(auction.items)} goods, {len(auction.bids)} bids, "
        f"{len(auction.bidders)} bidders"
    )
