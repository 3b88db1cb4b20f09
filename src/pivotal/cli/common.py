"""Shared pieces of the command line: consoles, error mapping, JSON output, common options."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar, cast

import typer

from pivotal.display import Rounding
from pivotal.errors import ConvergenceError, InputError, PivotalError, StateError, StoreError
from pivotal.fileio import (
    DocumentKind,
    check_output_file,
    check_output_folder,
    read_json,
    require_kind,
    write_text_atomic,
)

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_ROUNDING = Rounding()
P = ParamSpec("P")
R = TypeVar("R")


class _LazyConsole:
    """A rich console made on first use: importing rich is a tenth of a second that
    ``pivotal --help`` and the usage errors need not pay. Nothing printed through it is read as
    markup or emoji (bidder, item and party names are user data)."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, markup=False, emoji=False)
        return getattr(self._console, name)


out = cast("Console", _LazyConsole(stderr=False))
err = cast("Console", _LazyConsole(stderr=True))


def check_file_option(value: Path | None) -> Path | None:
    """Option callback: a file that can be written (its folder exists), checked before work."""
    if value is not None:
        try:
            check_output_file(value)
        except InputError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


def check_folder_option(value: Path | None) -> Path | None:
    """Option callback: a folder that exists or can be created (its parent exists)."""
    if value is not None:
        try:
            check_output_folder(value)
        except InputError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="Write the JSON document to FILE (its folder must exist).",
        callback=check_file_option,
    ),
]


def _option_hint(exc: InputError | StoreError | ConvergenceError) -> str:
    """`` (option --flag)`` when the error's ``field`` is an option of the running command:
    library messages name parameters, the command line names its flags."""
    from typer._click.globals import get_current_context

    field = getattr(exc, "field", None)
    ctx = get_current_context(silent=True)
    if not field or ctx is None:
        return ""
    for param in ctx.command.params:
        names = {param.name, *(o.lstrip("-").replace("-", "_") for o in param.opts)}
        if param.param_type_name == "option" and field.replace("-", "_") in names:
            flag = max(param.opts, key=len)
            return "" if flag in str(exc) else f" (option {flag})"
    return ""


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn pivotal errors into one line on stderr and an exit code: 2 for bad input or a
    damaged store, 4 for a request the current state does not allow, 1 otherwise."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (InputError, StoreError) as exc:
            err.print(f"error: {exc}{_option_hint(exc)}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except StateError as exc:
            err.print(f"error: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(4) from None
        except ConvergenceError as exc:
            err.print(f"error: {exc}{_option_hint(exc)}", markup=False, soft_wrap=True)
            raise typer.Exit(3) from None
        except PivotalError as exc:
            err.print(f"error: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except OSError as exc:  # e.g. an output folder that cannot be written
            err.print(
                f"error: {exc.strerror or exc}: {exc.filename or ''}", markup=False, soft_wrap=True
            )
            raise typer.Exit(1) from None

    return wrapper


def emit_json(doc: dict[str, Any], output: Path | None) -> None:
    """Write a JSON document to ``output`` (atomically) or to stdout."""
    text = json.dumps(doc, indent=2, allow_nan=False)
    if output is not None:
        write_text_atomic(output, text + "\n")
    else:
        sys.stdout.write(text + "\n")


def deliver_json(doc: dict[str, Any], json_out: bool, output: Path | None) -> None:
    """``--json`` prints the document; ``-o FILE`` writes it (atomically); both do both."""
    if output is not None:
        emit_json(doc, output)
    if json_out:
        emit_json(doc, None)
    elif output is not None:
        out.print(f"wrote {output}")


def num(x: float, rounding: Rounding | None = None) -> str:
    """An amount for tables: thousands separators, no digit finer than the result's tolerance
    (pivotal's default tolerance unless ``rounding`` is given), ``0`` within it of zero."""
    if abs(x) >= 1e15:
        return f"{x:.6e}"
    return (rounding or DEFAULT_ROUNDING).format(x)


def positive_int(value: int, option: str, minimum: int = 1) -> int:
    """Check a count option."""
    if value < minimum:
        raise InputError(f"{option} must be at least {minimum}, got {value}")
    return value


def stamp_source(doc: dict[str, Any], source: str) -> None:
    """Record where a result came from for its report: the input (a file name or a built-in
    scenario) and when it was computed (UTC). Not part of the recomputed numbers."""
    doc["source"] = source_stamp(source)


def source_stamp(source: str) -> dict[str, str]:
    """The ``source`` block of :func:`stamp_source`."""
    from datetime import UTC, datetime

    return {"input": source, "computed": datetime.now(UTC).isoformat(timespec="seconds")}


def read_document(path: Path, *kinds: DocumentKind) -> Any:
    """Read a JSON input (``-``: standard input) and check that it is of one of ``kinds``: a
    file of another kind is named as such, with the command that takes it."""
    doc = read_json(path)
    require_kind(doc, kinds, path)
    return doc
