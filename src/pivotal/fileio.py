"""File input and output at the boundary: clear errors on read, atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pivotal.errors import InputFileError


def read_text(path: Path) -> str:
    """A file's UTF-8 text; a missing or unreadable file raises :class:`InputFileError`."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"file not found: {path}", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(f"cannot read {path}: {err}", path=str(path)) from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} is not allowed")


def parse_json(text: str, path: Path) -> Any:
    """Parse JSON text; ``NaN``/``Infinity`` and malformed text raise :class:`InputFileError`."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise InputFileError(
            f"{path}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}",
            path=str(path),
        ) from None
    except ValueError as err:
        raise InputFileError(f"{path}: {err}", path=str(path)) from None


def read_json(path: Path) -> Any:
    """Read and parse a JSON file (see :func:`read_text` and :func:`parse_json`)."""
    return parse_json(read_text(path), path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
