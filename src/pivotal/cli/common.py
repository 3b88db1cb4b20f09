"""Shared pieces of the command line: consoles, error mapping, JSON output, common options."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from pivotal.errors import InputError, PivotalError
from pivotal.fileio import write_text_atomic

P = ParamSpec("P")
R = TypeVar("R")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the JSON document to this file.")
]


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn pivotal errors into one line on stderr and an exit code (2 for bad input)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            err.print(f"error: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
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


def num(x: float) -> str:
    """A number for tables: 6 significant digits with thousands separators."""
    return f"{x:,.6g}" if abs(x) < 1e15 else f"{x:.6e}"


def positive_int(value: int, option: str, minimum: int = 1) -> int:
    """Check a count option."""
    if value < minimum:
        raise InputError(f"{option} must be at least {minimum}, got {value}")
    return value
