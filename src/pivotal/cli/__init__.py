"""Command-line interface: parse, call the library, render, map errors to exit codes.

Exit codes: 0 success; 1 a check failed or a solver could not prove its answer; 2 bad input or
usage (one line on stderr naming the problem, nothing written); 3 a negotiation did not converge.
Only this package prints.

The commands are imported when they run: ``pivotal --help`` and a usage error load neither the
solvers nor numpy, scipy or rich (measured in the closing note of issue 15).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperArgument, TyperGroup

# name: (module, attribute, one-line help), in the order a user needs them
COMMANDS: dict[str, tuple[str, str, str]] = {
    "auction": (
        "pivotal.cli.auction",
        "auction_app",
        "Combinatorial auctions with XOR bundle bids.",
    ),
    "market": (
        "pivotal.cli.market",
        "market_app",
        "Procurement markets with divisible quantities (VCG transfers).",
    ),
    "negotiate": (
        "pivotal.cli.negotiate",
        "negotiate_app",
        "Private retailer-vendor negotiation: consensus ADMM with VCG transfers.",
    ),
    "report": ("pivotal.cli.report", "report_app", "Write an HTML report of a result file."),
    "verify": ("pivotal.cli.report", "verify_app", "Recompute a result file and compare."),
    "serve": (
        "pivotal.cli.serve",
        "serve_app",
        "Run a service: the negotiation coordinator or an open call.",
    ),
    "agent": ("pivotal.cli.serve", "agent_app", "Run a party's negotiation agent."),
    "call": (
        "pivotal.cli.call",
        "call_app",
        "Open calls: submit sealed reports, follow, close and verify.",
    ),
}


def _argument_usage_name(self: TyperArgument) -> str:
    name = self.display_name_raw
    name = name if self.required else f"[{name}]"
    return name if self.nargs == 1 else f"{name}..."


def _argument_type(self: TyperArgument, ctx: Any) -> str | None:
    return None if self.metavar is not None else str(self.display_type(ctx))


# typer 0.2x shows a required argument as {FILE} in the usage line and adds its type (<path>)
# in the help, where gh, uv and ruff print FILE: arguments with a metavar print it alone
TyperArgument._usage_display_name = _argument_usage_name  # type: ignore[method-assign]
TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign,assignment]


def _usage_error_line(exc: Any) -> str:
    """A click usage error in one line: the problem, and where the help is."""
    from typer._click.exceptions import BadParameter, MissingParameter

    param = getattr(exc, "param", None)
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, BadParameter) and not isinstance(exc, MissingParameter) and param:
        opts = [o for o in getattr(param, "opts", []) if o.startswith("-")]
        name = max(opts, key=len) if opts else param.human_readable_name
        message, hint = f"{name}: {exc.message}", ""
    else:
        message = str(exc.format_message())
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = message.replace("Value error, ", "").rstrip(".")
    return f"error: {message[:1].lower()}{message[1:]}{hint}"


class _PivotalGroup(TyperGroup):
    """The root command: subcommands loaded on use, usage errors in one line (exit 2)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        sub_app = getattr(import_module(module), attribute)
        # a Typer with several commands (or a group of one, like serve) is a group; report and
        # verify are single commands
        single = cmd_name in {"report", "verify"}
        command = typer.main.get_command(sub_app) if single else typer.main.get_group(sub_app)
        command.name = cmd_name
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, _, short) in COMMANDS.items()])

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        # typer vendors click: its exception classes live in typer._click (typer < 1 pinned)
        from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

        def finish(code: int) -> NoReturn:
            sys.exit(code)

        try:
            rv = super().main(
                args, prog_name or "pivotal", complete_var, standalone_mode=False, **extra
            )
        except NoArgsIsHelpError as exc:
            exc.show()  # the command's help
            finish(exc.exit_code)
        except UsageError as exc:
            sys.stderr.write(_usage_error_line(exc) + "\n")
            finish(2)
        except ClickException as exc:
            sys.stderr.write(f"error: {exc.format_message()}\n")
            finish(exc.exit_code)
        except typer.Abort:
            sys.stderr.write("aborted\n")
            finish(1)
        if not standalone_mode:
            return rv
        finish(rv if isinstance(rv, int) else 0)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"pivotal {version('pivotal')}\n")
        raise typer.Exit()


app = typer.Typer(
    cls=_PivotalGroup,
    help="pivotal: truthful, efficient and private allocation (VCG mechanisms).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """pivotal: truthful, efficient and private allocation (VCG mechanisms)."""


def main() -> None:
    """Console entry point."""
    app()


__all__ = ["COMMANDS", "app", "main"]
