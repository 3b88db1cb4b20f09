"""``pivotal market``: VCG procurement markets next to the uniform-price market."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from pydantic_core import from_json, to_json
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pivotal.arrays import FloatArray
from pivotal.cli.common import (
    JsonOpt,
    OutputOpt,
    check_file_option,
    emit_json,
    err,
    handle_errors,
    num,
    out,
    positive_int,
    source_stamp,
    stamp_source,
)
from pivotal.cli.report import ReportOpt, emit_report
from pivotal.fileio import (
    display_name,
    is_stdin,
    parse_json,
    read_bytes,
    read_text,
    require_kind,
    write_bytes_atomic,
    write_text_atomic,
)
from pivotal.markets import (
    Role,
    audit_market,
    best_withholding,
    generate_market,
    vcg_market,
)
from pivotal.markets.amounts import AmountColumn
from pivotal.markets.clarke import MarketOutcome
from pivotal.markets.encode import InputTexts, market_result_json
from pivotal.markets.market import Market, market_from_document
from pivotal.markets.misreports import largest_producer
from pivotal.markets.result import market_result
from pivotal.markets.table import keep_freed_memory, no_cycle_collection


def _load(file: Path) -> Market:
    """The market in FILE (``-``: standard input); another kind of pivotal file is named.

    The text is parsed by pydantic-core's JSON parser (the same numbers as the standard
    library's, in about two thirds of the time on a 240 MB file); text it refuses goes through
    :func:`pivotal.fileio.parse_json`, which names the problem.
    """
    data = read_text(file) if is_stdin(file) else read_bytes(file)  # the parser reads UTF-8
    try:
        doc = from_json(data, allow_inf_nan=False)
    except ValueError:
        doc = parse_json(data if isinstance(data, str) else read_text(file), file)
    require_kind(doc, ("market",), file)
    return market_from_document(doc, source=display_name(file))


def _deliver(doc: dict[str, Any], json_out: bool, output: Path | None, agents: int) -> None:
    """As :func:`pivotal.cli.common.deliver_json`, encoded by pydantic-core (10 times faster
    than the standard library's indented encoder on a 10^6-agent result; the same values).
    Above :data:`COMPACT_ABOVE` agents the document is written without
    indentation (a 10^6-agent result: 270 MB instead of 500 MB)."""
    indent = None if agents > COMPACT_ABOVE else 2
    _write(to_json(doc, indent=indent), json_out, output)


def _write(data: bytes, json_out: bool, output: Path | None) -> None:
    """Write an encoded result document and a newline to ``output`` and/or standard output."""
    if output is not None:
        write_bytes_atomic(output, data, b"\n")
    if json_out:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()
    elif output is not None:
        out.print(f"wrote {output}")


LIST_LIMIT = 30
"""Markets with more agents print a summary by role instead of one row per agent."""
COMPACT_ABOVE = 10_000
"""Results of markets with more agents are written as compact JSON (no indentation)."""


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
    every_agent: Annotated[
        bool,
        typer.Option(
            "--all",
            help=f"List every agent in the table (above {LIST_LIMIT} agents the table sums "
            "them by role).",
        ),
    ] = False,
) -> None:
    """Clear the market, charge VCG transfers, compare with the uniform price."""
    keep_freed_memory()
    with no_cycle_collection():
        _run(file, json_out, output, withholding, report, every_agent)


def _run(
    file: Path,
    json_out: bool,
    output: Path | None,
    withholding: bool,
    report: Path | None,
    every_agent: bool,
) -> None:
    market = _load(file)
    fast = report is None and (json_out or output is not None) and len(market) > COMPACT_ABOVE
    # compact JSON from the columns, the input's hash and text formatted on the other core
    texts = InputTexts(market) if fast and market.closed_form else None
    try:
        outcome = vcg_market(market)
        w = best_withholding(market, largest_producer(market)) if withholding else None
        if fast:  # the same bytes as _deliver writes
            source = source_stamp(display_name(file))
            data = market_result_json(market, outcome, w, source=source, texts=texts)
            _write(data, json_out, output)
            return
    finally:
        if texts is not None:
            texts.cancel()
    if report is not None or json_out or output is not None:
        doc = market_result(market, outcome, w)
        stamp_source(doc, display_name(file))
        if report is not None:
            emit_report(doc, report)
        if json_out or output is not None:
            _deliver(doc, json_out, output, len(market))
            return
    if every_agent or len(market) <= LIST_LIMIT:
        _agent_table(market, outcome)
    else:
        _summary_table(market, outcome)
    uni = outcome.uniform_price
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


def _agent_table(market: Market, outcome: MarketOutcome) -> None:
    """One row per agent."""
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


def _summary_table(market: Market, outcome: MarketOutcome) -> None:
    """Sums by role, and the agents with the largest VCG utilities."""
    uni = outcome.uniform_price
    n = len(market)

    def column(values: Mapping[str, float]) -> FloatArray:
        if isinstance(values, AmountColumn):
            return values.amounts
        return np.fromiter(values.values(), dtype=np.float64, count=n)

    quantity = column(outcome.quantities)
    producer = np.fromiter(
        (r is Role.PRODUCER for r in outcome.roles.values()), dtype=np.bool_, count=n
    )
    amounts = [
        ("quantity", quantity),
        ("value", column(outcome.values)),
        ("VCG transfer", column(outcome.transfers)),
        ("VCG utility", column(outcome.utilities)),
        ("uniform transfer", column(uni.payments)),
        ("uniform profit", column(uni.profits)),
    ]
    table = Table(
        title=f"VCG procurement: p* = {num(outcome.price)}, traded {num(outcome.traded)} "
        f"({n:,} agents, sums by role)"
    )
    for col in ("role", "agents", "trading", *(name for name, _ in amounts)):
        table.add_column(col, justify="left" if col == "role" else "right")
    for label, side in (("producers", producer), ("buyers", ~producer)):
        trading = int((quantity[side] > 0).sum())
        table.add_row(
            label,
            f"{int(side.sum()):,}",
            f"{trading:,}",
            *(num(float(x[side].sum())) for _, x in amounts),
        )
    out.print(table)
    utility = amounts[3][1]
    top = np.argsort(-utility, kind="stable")[:5]
    names = market.names
    best = Table(title="Largest VCG utilities")
    for col in ("agent", "role", "quantity", "VCG transfer", "VCG utility"):
        best.add_column(col, justify="left" if col in {"agent", "role"} else "right")
    for i in top.tolist():
        best.add_row(
            names[i],
            "producer" if producer[i] else "buyer",
            num(float(quantity[i])),
            num(float(amounts[2][1][i])),
            num(float(utility[i])),
        )
    out.print(best)
    out.print("every agent's numbers: --all (this table), --json or -o FILE")


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
