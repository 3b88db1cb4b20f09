"""``pivotal report`` and ``pivotal verify``: pictures and a re-check of a result file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pivotal.cli.common import check_folder_option, err, handle_errors, out, read_document
from pivotal.fileio import DocumentKind

# pivotal.report (matplotlib, plotly) is imported only by the commands that draw or verify, so
# that every other command, the coordinator service among them, starts without it

RESULT_KINDS: tuple[DocumentKind, ...] = ("auction result", "market result", "negotiation result")

ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        metavar="DIR",
        help="Also write an HTML report with figures into DIR (created; its parent must exist).",
        callback=check_folder_option,
    ),
]


def emit_report(doc: dict[str, Any], folder: Path) -> None:
    """Write a report and say where (used by the run commands' ``--report``)."""
    from pivotal.report import write_report

    files = write_report(doc, folder)
    err.print(f"report: {files.index} ({len(files.images)} figures)", markup=False)


def report_command(
    result: Annotated[
        Path,
        typer.Argument(
            metavar="RESULT", help="A result JSON (from run --json or -o); - reads standard input."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            help="Folder to write (created; its parent must exist).",
            callback=check_folder_option,
        ),
    ] = Path("report"),
) -> None:
    """Write DIR/index.html (summary, interactive figures, input digest, provenance) and one
    PNG and SVG per figure."""
    from pivotal.report import write_report

    files = write_report(read_document(result, *RESULT_KINDS), output)
    out.print(
        f"{files.index} ({len(files.images)} figures): {files.report.finding}",
        markup=False,
        soft_wrap=True,
    )


def verify_command(
    result: Annotated[
        Path,
        typer.Argument(
            metavar="RESULT", help="A result JSON (from run --json or -o); - reads standard input."
        ),
    ],
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input",
            metavar="FILE",
            help="The input file (default: the input recorded in RESULT).",
        ),
    ] = None,
) -> None:
    """Recompute RESULT from its input (hash checked) and compare within the recorded
    tolerances (never looser than the mechanism's own). Exit 0 when everything matches, 1 on a
    mismatch."""
    from pivotal.verify import verify

    check = verify(read_document(result, *RESULT_KINDS), input_file)
    if check.ok:
        out.print(
            f"verified: {check.kind} result matches its recomputation ({check.checked} checks)"
        )
        return
    out.print(f"MISMATCH: {len(check.mismatches)} of {check.checked} checks differ", markup=False)
    for line in check.mismatches:
        out.print(f"  {line}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


report_cmd = handle_errors(report_command)
verify_cmd = handle_errors(verify_command)

report_app = typer.Typer(rich_markup_mode=None, add_completion=False)
report_app.command("report")(report_cmd)
verify_app = typer.Typer(rich_markup_mode=None, add_completion=False)
verify_app.command("verify")(verify_cmd)
