"""File input and output at the boundary: clear errors on read, ``-`` for standard input,
checked and atomic writes, what kind of pivotal document a file holds, and credential files
(0600, created exclusively, never through a symlink)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pivotal.errors import InputError, InputFileError

STDIN = "-"
"""The file name that means standard input."""

DocumentKind = Literal[
    "auction", "market", "scenario", "terms", "private", "auction result", "market result",
    "negotiation result",
]  # fmt: skip


def is_stdin(path: str | Path) -> bool:
    """Whether ``path`` is ``-`` (standard input)."""
    return str(path) == STDIN


def display_name(path: str | Path) -> str:
    """How messages name a file (``standard input`` for ``-``)."""
    return "standard input" if is_stdin(path) else str(path)


@contextlib.contextmanager
def _reading(p: Path) -> Iterator[None]:
    """Reading ``p``: a missing, unreadable or undecodable file is an :class:`InputFileError`
    naming it."""
    try:
        yield
    except FileNotFoundError:
        raise InputFileError(f"file not found: {p}", path=str(p)) from None
    except IsADirectoryError:
        raise InputFileError(f"{p} is a folder, not a file", path=str(p)) from None
    except UnicodeDecodeError:
        raise InputFileError(f"{p} is not a UTF-8 text file", path=str(p)) from None
    except OSError as err:
        raise InputFileError(f"cannot read {p}: {err.strerror or err}", path=str(p)) from None


def read_text(path: str | Path) -> str:
    """A file's UTF-8 text (``-`` reads standard input); a missing or unreadable file raises
    :class:`InputFileError`."""
    if is_stdin(path):
        try:
            return sys.stdin.read()
        except (OSError, UnicodeDecodeError) as err:
            raise InputFileError(f"cannot read standard input: {err}", path=STDIN) from None
    p = Path(path)
    with _reading(p):
        return p.read_text(encoding="utf-8")


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes, not decoded (for a parser of UTF-8 bytes); standard input (``-``) and
    errors as in :func:`read_text`."""
    if is_stdin(path):
        return read_text(path).encode("utf-8", "surrogatepass")
    p = Path(path)
    with _reading(p):
        return p.read_bytes()


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} is not allowed")


def parse_json(text: str, path: str | Path) -> Any:
    """Parse JSON text; ``NaN``/``Infinity`` and malformed text raise :class:`InputFileError`."""
    name = display_name(path)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise InputFileError(
            f"{name}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}",
            path=str(path),
        ) from None
    except ValueError as err:
        raise InputFileError(f"{name}: {err}", path=str(path)) from None


def read_json(path: str | Path) -> Any:
    """Read and parse a JSON file (see :func:`read_text` and :func:`parse_json`)."""
    return parse_json(read_text(path), path)


def document_kind(doc: Any) -> DocumentKind | None:
    """Which pivotal document a parsed JSON value is, judged by its top-level fields."""
    if not isinstance(doc, dict):
        return None
    if "status_quo_plan" in doc and "plan" in doc:
        return "negotiation result"
    if "uniform_price" in doc and "quantities" in doc:
        return "market result"
    if "allocation" in doc and "payments" in doc:
        return "auction result"
    if "party" in doc and ("retailer" in doc or "vendor" in doc):
        return "private"
    if "hub" in doc and "admm" in doc:
        return "terms"
    if "retailer" in doc or "vendors" in doc:
        return "scenario"
    if "producers" in doc or "buyers" in doc:
        return "market"
    if "bids" in doc or "valuations" in doc:
        return "auction"
    return None


_WHAT: dict[DocumentKind, str] = {
    "auction": "an auction file",
    "market": "a market file",
    "scenario": "a negotiation scenario",
    "terms": "the public terms of a negotiation",
    "private": "a party's private negotiation data",
    "auction result": "an auction result",
    "market result": "a market result",
    "negotiation result": "a negotiation result",
}
_RUN: dict[DocumentKind, str] = {
    "auction": "pivotal auction run {f}",
    "market": "pivotal market run {f}",
    "scenario": "pivotal negotiate run {f}",
    "terms": "pivotal serve coordinator --config {f} --db FILE",
    "private": "pivotal agent run --private {f} ...",
    "auction result": "pivotal report {f}",
    "market result": "pivotal report {f}",
    "negotiation result": "pivotal report {f}",
}
_RESULTS = ("auction result", "market result", "negotiation result")


def require_kind(doc: Any, expected: tuple[DocumentKind, ...], path: str | Path) -> None:
    """Raise a one-line :class:`InputError` when ``doc`` is a pivotal document of another kind
    ("... is a market file, not an auction file: run `pivotal market run FILE`"). Unknown
    documents pass: the validator of the expected kind names their problem."""
    kind = document_kind(doc)
    if kind is None or kind in expected:
        return
    f = "FILE" if is_stdin(path) else str(path)
    run = _RUN[kind].format(f=f)
    if all(k in _RESULTS for k in expected):
        wanted = "a result"
        if kind in ("auction", "market", "scenario"):
            run += " -o RESULT.json"
            advice = f"run `{run}` first"
        else:
            advice = f"it is used by `{run}`"
    else:
        wanted = " or ".join(_WHAT[k] for k in expected)
        advice = f"run `{run}`" if kind not in ("terms", "private") else f"it is used by `{run}`"
    raise InputError(f"{display_name(path)} is {_WHAT[kind]}, not {wanted}: {advice}", field="file")


def check_output_file(path: Path) -> None:
    """Fail early, in one line, if ``path`` cannot be written as a file: its folder must exist
    (it is never created) and be writable, and ``path`` must not be a folder."""
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; give a file name", field="output")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise InputError(
            f"cannot write {path}: the folder {parent} {what} (create it first)", field="output"
        )
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"cannot write {path}: permission denied", field="output")


def check_output_folder(path: Path) -> None:
    """Fail early if ``path`` cannot be used as an output folder: an existing folder, or a new
    one whose parent exists and is writable (only the folder itself is ever created)."""
    if path.exists() and not path.is_dir():
        raise InputError(f"cannot write into {path}: it is a file, not a folder", field="output")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"cannot write into {path}: permission denied", field="output")
        return
    parent = path.parent
    if not parent.is_dir():
        raise InputError(
            f"cannot create {path}: the folder {parent} does not exist (create it first)",
            field="output",
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot create {path}: permission denied", field="output")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8 (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, *chunks: bytes) -> None:
    """Write ``chunks`` to ``path`` through a temporary file in the same folder and a rename.

    The folder is never created (see :func:`check_output_file`); a failure names ``path``, never
    the temporary file, and leaves nothing behind.
    """
    check_output_file(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}", field="output") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {err.strerror or err}", field="output") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_output_folder(path: Path) -> None:
    """Create the output folder ``path`` (not its parents) if it does not exist."""
    check_output_folder(path)
    try:
        path.mkdir(exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create {path}: {err.strerror or err}", field="output") from None


# ---------------------------------------------------------------------------------- secrets
_NEW_PRIVATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def create_private_file(path: Path) -> int:
    """Create ``path`` empty, readable and writable by its owner only (0600 whatever the umask),
    and return its open descriptor. Never over an existing file, never through a symlink: an
    existing name (a file, a folder, a dangling link) raises :class:`FileExistsError`."""
    fd = os.open(path, _NEW_PRIVATE, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def prepare_secret_folder(path: Path) -> bool:
    """Make ``path`` a folder for credentials: created if missing, mode 0700 whatever the umask;
    refused if it is a symlink or already holds ``*.token`` files (credentials are issued once
    and never overwritten). Nothing is created when it is refused. Returns whether the folder
    was created (so that a failed creation can remove it)."""
    if path.is_symlink():
        raise InputError(f"{path} is a symbolic link; give a real folder", field="tokens-dir")
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is not a folder", field="tokens-dir")
    if path.is_dir() and any(p.name.endswith(".token") for p in path.iterdir()):
        raise InputError(
            f"{path} already holds credentials (*.token); give an empty folder", field="tokens-dir"
        )
    created = not path.exists()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700, follow_symlinks=False)
    except OSError as err:
        why = err.strerror or err
        raise InputError(f"cannot create {path}: {why}", field="tokens-dir") from None
    return created


def write_secrets(folder: Path, secrets: dict[str, str]) -> list[Path]:
    """Write each secret to a new file ``folder/NAME.token`` (see :func:`write_secret_files`)."""
    return write_secret_files(folder, {f"{name}.token": s for name, s in secrets.items()})


def write_secret(path: Path, secret: str) -> None:
    """Write one secret to a new file ``path`` (see :func:`write_secret_files`)."""
    write_secret_files(path.parent, {path.name: secret})


def write_secret_files(folder: Path, files: dict[str, str]) -> list[Path]:
    """Write each secret to a new file ``folder/FILE`` (0600 whatever the umask, created
    exclusively, never through a symlink, the folder opened without following a link either)
    and return the files. All or nothing: on any failure the files written so far are removed
    and one :class:`InputError` names the file."""
    written: list[Path] = []
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as err:
        why = err.strerror or err
        raise InputError(f"cannot open {folder}: {why}", field="tokens-dir") from None
    try:
        for name, secret in files.items():
            path = folder / name
            try:
                fd = os.open(name, _NEW_PRIVATE, 0o600, dir_fd=dir_fd)
            except FileExistsError:
                raise InputError(
                    f"{path} already exists (a file or a link); credentials are never "
                    "overwritten or written through a link",
                    field="tokens-dir",
                ) from None
            except OSError as err:
                raise InputError(
                    f"cannot write {path}: {err.strerror or err}", field="tokens-dir"
                ) from None
            written.append(path)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(secret + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        os.fsync(dir_fd)
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                os.unlink(path.name, dir_fd=dir_fd)
        raise
    finally:
        os.close(dir_fd)
    return written
