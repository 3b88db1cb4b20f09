"""``pivotal market``: VCG procurement markets next to the uniform-price market."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
    positive_int,
    read_document,
    stamp_source,
)
from pivotal.cli.report import ReportOpt, emit_report
from pivotal.fileio import display_name, write_text_atomic
from pivotal.markets import (
    Role,
    audit_market,
    best_withholding,
    generate_market,
    vcg_market,
)
from pivotal.markets.market import Market, market_from_document
from pivotal.markets.misreports import largest_producer
from pivotal.markets.result import market_result


def _load(file: Path) -> Market:
    """The market in FILE (``-``: standard input); another kind of pivotal file is named."""
    return market_from_document(read_document(file, "market"), source=display_name(file))


market_app = typer.Typer(
    help="Procurement markets with divisible quantities (VCG transfers).",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

FileArg = Annotated[
    Path, typer.Argument(metavar="FILE", help="Market file (.json); - reads standard input.")
]


@market_app.command("run")
@handle_errors
def market_run(
    file: FileArg,
    json_out: JsonOpt = False,
    output: OutputOpt = None,
    withholding: Annotated[
        bool,
        typer.Option(
            "--withholding/--no-withholding",
            help="Search the largest producer's best withholding in the uniform-price market.",
        ),
    ] = True,
    report: ReportOpt = None,
) -> None:
    """Clear the market, charge VCG transfers, compare with the uniform price."""
    market = _load(file)
    outcome = vcg_market(market)
    w = best_withholding(market, largest_producer(market)) if withholding else None
    if report is not None or json_out or output is not None:
        doc = market_result(market, outcome, w)
        stamp_source(doc, display_name(file))
        if report is not None:
            emit_report(doc, report)
        if json_out or output is not None:
            deliver_json(doc, json_out, output)
            return
    table = Table(title=f"VCG procurement: p* = {num(outcome.price)}, traded {num(outcome.traded)}")
    for col in (
        "agent",
        "role",
        "quantity",
        "value",
        "VCG transfer",
        "VCG utility",
        "uniform transfer",
        "uniform profit",
    ):
        table.add_column(col, justify="left" if col in {"agent", "role"} else "right")
    uni = outcome.uniform_price
    for agent in market.agents:
        n = agent.name
        table.add_row(
            n,
            agent.role.value,
            num(outcome.quantities[n]),
            num(outcome.values[n]),
            num(outcome.transfers[n]),
            num(outcome.utilities[n]),
            num(uni.payments[n]),
            num(uni.profits[n]),
        )
    out.print(table)
    out.print(
        f"welfare {num(outcome.welfare)}   VCG budget (paid out - collected) "
        f"{num(outcome.budget)}   uniform-price budget {num(-uni.revenue)}"
    )
    if w is not None:
        out.print(
            f"withholding: {w.name} offering {w.best_fraction:.1%} of its capacity moves the price "
            f"from {num(w.truthful.price)} to {num(w.best.price)} and its uniform-price profit "
            f"from {num(w.truthful.uniform_profit)} to {num(w.best.uniform_profit)} "
            f"(gain {num(w.profit_gain)}, welfare lost {num(w.welfare_loss)}); under VCG its "
            f"utility would go from {num(w.truthful.vcg_utility)} to {num(w.best.vcg_utility)}"
        )


@market_app.command("audit")
@handle_errors
def market_audit(file: FileArg, json_out: JsonOpt = False) -> None:
    """Certificates and the misreport/withholding grid for every agent; exit 1 on a failure."""
    market = _load(file)
    with Progress(
        TextColumn("misreport grid"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=json_out or not err.is_terminal,
    ) as progress:
        task = progress.add_task("", total=len(market.agents))
        report = audit_market(market, on_agent=lambda _: progress.advance(task))
    if json_out:
        emit_json(report.to_dict(), None)
    else:
        checks = Table(title="Audit of the VCG procurement mechanism")
        for col in ("check", "result", "detail"):
            checks.add_column(col)
        for c in report.checks:
            checks.add_row(c.name, "pass" if c.passed else "FAIL", c.detail)
        out.print(checks)
        table = Table(title="Best misreport per agent (scored with the true curve)")
        for col in (
            "agent",
            "VCG gain",
            "VCG best deviation",
            "uniform gain",
            "uniform best deviation",
        ):
            table.add_column(col, justify="right" if "gain" in col else "left")
        for a in report.agents:
            table.add_row(
                a.name,
                num(a.vcg_gain),
                a.vcg_best_deviation,
                num(a.uniform_gain),
                a.uniform_best_deviation,
            )
        out.print(table)
    if not report.passed:
        raise typer.Exit(1)


@market_app.command("generate")
@handle_errors
def market_generate(
    producers: Annotated[
        int, typer.Option("--producers", metavar="N", help="Number of producers.")
    ] = 10,
    buyers: Annotated[int, typer.Option("--buyers", metavar="N", help="Number of buyers.")] = 10,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Random seed.")] = 1,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="JSON file to write (its folder must exist).",
            callback=check_file_option,
        ),
    ] = Path("market.json"),
) -> None:
    """Generate a random market with mixed curve kinds (linear, quadratic, piecewise-linear)."""
    positive_int(producers, "--producers")
    positive_int(buyers, "--buyers")
    market = generate_market(producers, buyers, np.random.default_rng(seed))
    write_text_atomic(output, json.dumps(market.to_dict(), indent=2) + "\n")
    n_p = sum(1 for a in market.agents if a.role is Role.PRODUCER)
    out.print(f"wrote {output}: {n_p} producers, {len(market.agents) - n_p} buyers")
