"""``pivotal negotiate``: consensus planning between a retailer and its vendors, with VCG."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.live import Live
from rich.table import Table

from pivotal.cli.common import (
    JsonOpt,
    OutputOpt,
    check_file_option,
    check_folder_option,
    deliver_json,
    err,
    handle_errors,
    num,
    out,
    read_document,
    stamp_source,
)
from pivotal.cli.report import ReportOpt, emit_report
from pivotal.display import Rounding, rounding_of
from pivotal.errors import InputError
from pivotal.fileio import display_name, make_output_folder, write_text_atomic
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.coordinator import RoundRecord
from pivotal.negotiation.deployment import config_from_document, split_scenario
from pivotal.negotiation.scenario import (
    Scenario,
    built_in,
    generate_scenario,
    scenario_from_document,
)
from pivotal.negotiation.session import MAX_WARM_PLAIN_ROUNDS, WARM_PLAIN_ROUNDS
from pivotal.negotiation.simulation import compare_money, simulate

negotiate_app = typer.Typer(
    help="Private retailer-vendor negotiation: consensus ADMM with VCG transfers.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


def _status(record: RoundRecord | None, rounds: int) -> Table:
    table = Table(title="consensus planning (joint run)")
    for col in ("round", "primal residual", "tolerance", "dual residual", "tolerance", "rho"):
        table.add_column(col, justify="right")
    if record is not None:
        table.add_row(
            str(rounds),
            f"{record.primal_residual:.3g}",
            f"{record.eps_primal:.3g}",
            f"{record.dual_residual:.3g}",
            f"{record.eps_dual:.3g}",
            f"{record.rho:.3g}",
        )
    return table


def certified(value: float, bound: float, r: Rounding) -> str:
    """An amount with its certified bound: ``0 ± b`` when the value is within its bound of 0
    (the exact value may be 0), else ``value ± b``; no ``±`` when the bound rounds to 0."""
    if r.is_zero(bound):
        return num(value, r)
    shown = 0.0 if abs(value) <= bound else value
    return f"{num(shown, r)} ± {num(bound, r)}"


def _warn_activity_fee(doc: dict[str, Any], r: Rounding) -> None:
    """Say when the activity fee leaves a party worse off than its status quo (the fee does not
    depend on reports, so truthfulness stands, but the party would rather not take part)."""
    fee = float(doc.get("activity_fee") or 0.0)
    if fee <= 0:
        return
    bounds = doc.get("gain_bounds") or {}
    for party, gain in doc["gains"].items():
        if gain < -(r.step + bounds.get(party, 0.0)):
            err.print(
                f"warning: the activity fee {num(fee, r)} leaves {party} {num(-gain, r)} worse off "
                f"than its status quo (its gain before the fee is "
                f"{num(doc['gains_without_fee'][party], r)}): it would not take part "
                "voluntarily; lower --activity-fee",
                soft_wrap=True,
            )


ScenarioFileArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="FILE",
        help="Scenario file (.json, see docs/scenario-format.md); - reads standard input.",
        show_default=False,
    ),
]
ScenarioNameOpt = Annotated[
    str | None,
    typer.Option("--scenario", metavar="NAME", help="A built-in scenario: truck-example."),
]
ActivityFeeOpt = Annotated[
    float,
    typer.Option(
        "--activity-fee", metavar="AMOUNT", help="Lump sum each vendor pays the retailer."
    ),
]
MaxRoundsOpt = Annotated[
    int, typer.Option("--max-rounds", metavar="N", help="Rounds per protocol run.")
]
EpsOpt = Annotated[
    float,
    typer.Option("--eps", metavar="TOL", help="eps_abs = eps_rel of the ADMM stopping rule."),
]
ColdOpt = Annotated[
    bool,
    typer.Option(
        "--cold-counterfactuals",
        help="Start the runs without each vendor from the status quo and zero prices, beside "
        "the joint run, instead of from the joint run's final plan and prices after it (the "
        "default: about half the rounds, about as many exchanges; the money's certified bounds "
        "hold either way).",
    ),
]

PlainOpt = Annotated[
    int,
    typer.Option(
        "--warm-plain-rounds",
        metavar="N",
        help="Rounds of plain ADMM a warm-started run without a vendor tries first, before the "
        "default acceleration takes over from the same start (0: none). Near the joint run's "
        "end it converges in a few rounds; where it stalls, the next stage takes over.",
    ),
]


def _check_plain(rounds: int) -> None:
    if not 0 <= rounds <= MAX_WARM_PLAIN_ROUNDS:
        raise InputError(
            f"--warm-plain-rounds must be between 0 and {MAX_WARM_PLAIN_ROUNDS}, got {rounds}"
        )


def _scenario(file: Path | None, name: str | None) -> Scenario:
    """The scenario a command names: a file or a built-in one (exactly one of them)."""
    if (file is None) == (name is None):
        raise InputError("give either a scenario FILE or --scenario NAME (not both)")
    if name is not None:
        return built_in(name)
    assert file is not None  # for mypy: exactly one of them is given
    return scenario_from_document(
        read_document(file, "scenario"),
        source=display_name(file),
        base=None if str(file) == "-" else file.parent,  # a distances CSV is beside the file
    )


@negotiate_app.command("run")
@handle_errors
def negotiate_run(
    file: ScenarioFileArg = None,
    scenario: ScenarioNameOpt = None,
    json_out: JsonOpt = False,
    output: OutputOpt = None,
    activity_fee: ActivityFeeOpt = 0.0,
    max_rounds: MaxRoundsOpt = 500,
    eps: EpsOpt = 1e-6,
    cold_counterfactuals: ColdOpt = False,
    warm_plain_rounds: PlainOpt = WARM_PLAIN_ROUNDS,
    check: Annotated[
        bool,
        typer.Option("--check/--no-check", help="Compare with the centralized LP (simulation)."),
    ] = True,
    report: ReportOpt = None,
) -> None:
    """Negotiate a scenario in-process and print the plan, costs, transfers and gains."""
    if not np.isfinite(activity_fee) or activity_fee < 0:
        raise InputError(f"--activity-fee must be a finite number >= 0, got {activity_fee}")
    _check_plain(warm_plain_rounds)
    sc = _scenario(file, scenario)
    settings = AdmmSettings(max_rounds=max_rounds, eps_abs=eps, eps_rel=eps)
    live_enabled = err.is_terminal and not json_out
    live = Live(_status(None, 0), console=err, transient=True) if live_enabled else None
    with live if live is not None else contextlib.nullcontext():

        def on_round(record: RoundRecord) -> None:
            if live is not None:
                live.update(_status(record, record.round + 1))

        sim = simulate(
            sc,
            settings,
            activity_fee=activity_fee,
            check=check,
            on_round=on_round,
            warm_start_counterfactuals=not cold_counterfactuals,
            warm_plain_rounds=warm_plain_rounds,
        )
    doc = sim.to_dict()
    stamp_source(doc, f"built-in scenario {scenario}" if scenario else display_name(file or "-"))
    o = sim.outcome
    r = rounding_of(doc, doc["costs"])
    _warn_activity_fee(doc, r)
    if report is not None:
        emit_report(doc, report)
    if json_out or output is not None:
        deliver_json(doc, json_out, output)
        return
    table = Table(title=f"{sc.name}: joint plan after {o.rounds} rounds")
    for col in ("party", "cost (status quo)", "cost (joint)", "transfer", "gain", "gain w/o fee"):
        table.add_column(col, justify="left" if col == "party" else "right")
    for party in o.parties:
        bound = o.gain_bounds[party]
        table.add_row(
            party,
            num(o.costs[party]["status_quo"], r),
            num(o.costs[party]["joint"], r),
            certified(o.transfers[party], bound, r),
            certified(o.gains[party], bound, r),
            certified(o.gains_without_fee[party], bound, r),
        )
    out.print(table)
    out.print(r.note(), soft_wrap=True)
    if any(not r.is_zero(b) for b in o.gain_bounds.values()):
        out.print(
            "± is each amount's certified error bound (from the final residuals and the parties' "
            "value queries): the exact VCG amount is within it; an amount within its bound of 0 "
            "is shown as 0",
            soft_wrap=True,
        )
    if o.kept_status_quo:
        out.print(
            f"the joint plan saves less than its certified error "
            f"({num(o.run_bounds.get('joint', 0.0), r)}): the outcome is the status quo, and "
            "no money moves",
            soft_wrap=True,
        )
    saving = o.status_quo_cost - o.total_cost
    line = (
        f"total cost {num(o.status_quo_cost, r)} -> {num(o.total_cost, r)} "
        f"(saving {num(saving, r)})"
    )
    if sim.centralized is not None:
        line += (
            f"; centralized optimum {num(sim.centralized.total_cost, r)}, relative gap "
            f"{sim.centralized.relative_gap:.1e}"
        )
    out.print(line)
    if sim.centralized is not None:
        for m in compare_money(o, sim.centralized):
            if m.excess > r.step:
                verdict = f"{m.worst} is {num(m.excess, r)} beyond its bound"
            elif m.shift > r.step:
                verdict = (
                    "all within their bounds once each party's cost at the agreed plan is set "
                    "against its cost at the centralized plan: the optimum is not unique, the "
                    f"two plans split the same total differently ({m.shifted}'s cost by "
                    f"{num(m.shift, r)}), and a transfer follows the split (a gain does not)"
                )
            else:
                verdict = "all within their bounds"
            out.print(f"{m.what} against the centralized VCG {m.what}: {verdict}", soft_wrap=True)
    for block, flat in zip(sim.blocks, o.plan, strict=True):
        arr = block.as_array(flat)
        units = rounding_of(doc, arr.sum())  # plan units: the same tolerances at their scale
        moved = [
            f"{p}->{s}: {num(float(arr[k, f].sum()), units)}"
            for k, p in enumerate(block.products)
            for f, s in enumerate(block.sites)
            if not units.is_zero(float(arr[k, f].sum()))
        ]
        out.print(
            f"{block.owner} ships " + ", ".join(moved[:12]) + (" ..." if len(moved) > 12 else "")
        )


@negotiate_app.command("generate")
@handle_errors
def negotiate_generate(
    products: Annotated[
        int, typer.Option("--products", metavar="N", help="Number of products.")
    ] = 4,
    sites: Annotated[
        int, typer.Option("--sites", metavar="N", help="Retailer sites (distribution centers).")
    ] = 3,
    regions: Annotated[
        int, typer.Option("--regions", metavar="N", help="Customer regions with demand.")
    ] = 3,
    weeks: Annotated[int, typer.Option("--weeks", metavar="N", help="Weeks in the plan.")] = 2,
    vendors: Annotated[int, typer.Option("--vendors", metavar="N", help="Number of vendors.")] = 2,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Random seed.")] = 1,
    interacting: Annotated[
        bool,
        typer.Option(
            "--interacting",
            help="Vendors compete for storage at one hub site (needs --weeks >= 2), so the "
            "retailer's VCG gain can be positive.",
        ),
    ] = False,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Scenario file to write (its folder must exist).",
            callback=check_file_option,
        ),
    ] = Path("scenario.json"),
) -> None:
    """Generate a random scenario on the bundled US metros."""
    sc = generate_scenario(
        products,
        sites,
        regions,
        weeks,
        vendors,
        np.random.default_rng(seed),
        interacting=interacting,
    )
    write_text_atomic(output, json.dumps(sc.to_dict(), indent=2) + "\n")
    out.print(f"wrote {output}: {sc.name}")


@negotiate_app.command("split")
@handle_errors
def negotiate_split(
    file: ScenarioFileArg = None,
    scenario: ScenarioNameOpt = None,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            help="Folder to write (created; its parent must exist).",
            callback=check_folder_option,
        ),
    ] = Path("negotiation"),
    activity_fee: ActivityFeeOpt = 0.0,
    max_rounds: MaxRoundsOpt = 500,
    eps: EpsOpt = 1e-6,
    cold_counterfactuals: ColdOpt = False,
    warm_plain_rounds: PlainOpt = WARM_PLAIN_ROUNDS,
    round_deadline: Annotated[
        float,
        typer.Option(
            "--round-deadline",
            metavar="SECONDS",
            help="Seconds before a silent party pauses the negotiation.",
        ),
    ] = 60.0,
) -> None:
    """Split a scenario into public terms (DIR/negotiation.json) and each party's private data
    (DIR/private/PARTY.json), for the coordinator service and the agents."""
    _check_plain(warm_plain_rounds)
    sc = _scenario(file, scenario)
    settings = AdmmSettings(max_rounds=max_rounds, eps_abs=eps, eps_rel=eps)
    config, private = split_scenario(
        sc,
        activity_fee=activity_fee,
        settings=settings,
        round_deadline_seconds=round_deadline,
        warm_start_counterfactuals=not cold_counterfactuals,
        warm_plain_rounds=warm_plain_rounds,
    )
    config_from_document(config)  # validates the flags
    make_output_folder(output)
    make_output_folder(output / "private")
    write_text_atomic(output / "negotiation.json", json.dumps(config, indent=2) + "\n")
    for party, doc in private.items():
        write_text_atomic(output / "private" / f"{party}.json", json.dumps(doc, indent=2) + "\n")
    out.print(f"wrote {output / 'negotiation.json'} and {output / 'private'}/PARTY.json")
