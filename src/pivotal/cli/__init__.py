"""Command-line interface: parse, call the library, render, map errors to exit codes.

Exit codes: 0 success; 1 a check failed or a solver could not prove its answer; 2 bad input
(one line on stderr naming the problem, nothing written). Only this package prints.
"""

from __future__ import annotations

import typer

from pivotal.cli.auction import auction_app
from pivotal.cli.call import call_app, serve_call_cmd
from pivotal.cli.market import market_app
from pivotal.cli.negotiate import negotiate_app
from pivotal.cli.report import report_cmd, verify_cmd
from pivotal.cli.serve import agent_app, serve_app

app = typer.Typer(
    help="pivotal: truthful, efficient and private allocation (VCG mechanisms).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(auction_app, name="auction")
app.add_typer(market_app, name="market")
app.add_typer(negotiate_app, name="negotiate")
app.add_typer(serve_app, name="serve")
app.add_typer(agent_app, name="agent")
app.add_typer(call_app, name="call")
serve_app.command("call")(serve_call_cmd)
app.command("report")(report_cmd)
app.command("verify")(verify_cmd)


def main() -> None:
    """Console entry point."""
    app()


__all__ = ["app", "main"]
