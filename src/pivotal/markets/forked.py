"""Work done on the machine's other core by a forked child process.

Formatting the text of 10^6 agents is Python code that holds the interpreter lock, so a thread
cannot run it beside the mechanism; a child forked after the market is read shares its columns
(copy-on-write) and can. :class:`Forked` starts ``work()`` in such a child, which writes the
returned texts to an anonymous temporary file and exits at once (``os._exit``: nothing of the
parent's state is flushed or finalized twice). Where ``fork`` is unavailable (not Linux) or the
child fails for any reason, ``work()`` runs in this process when the result is asked for: the
result is the same either way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys
import tempfile
from collections.abc import Callable
from typing import IO

_LENGTH = struct.Struct("<Q")


class Forked:
    """``work()`` started in a forked child; :meth:`result` waits for it (see the module)."""

    def __init__(self, work: Callable[[], list[bytes]], *, fork: bool = True) -> None:
        self._work = work
        self._pid: int | None = None
        self._file: IO[bytes] | None = None
        self._forked = False
        if not fork or sys.platform != "linux":
            return
        try:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed in result/cancel)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
        except OSError:
            self._close_file()
            return
        if pid == 0:  # the child: never returns
            code = 1
            try:
                fd = self._file.fileno()
                for part in work():
                    os.write(fd, _LENGTH.pack(len(part)))
                    _write_all(fd, part)
                code = 0
            finally:
                os._exit(code)
        self._pid = pid
        self._forked = True

    @property
    def forked(self) -> bool:
        """Whether a child is (or was) doing the work."""
        return self._forked

    def result(self) -> list[bytes]:
        """The texts ``work()`` returned (computed here if the child failed)."""
        if self._pid is not None:
            _, status = os.waitpid(self._pid, 0)
            self._pid = None
            if os.waitstatus_to_exitcode(status) == 0 and self._file is not None:
                parts = _read_parts(self._file)
                self._close_file()
                if parts is not None:
                    return parts
        self._close_file()
        return self._work()

    def cancel(self) -> None:
        """Stop the child if it is still running (the result is no longer wanted)."""
        if self._pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
            self._pid = None
        self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_parts(file: IO[bytes]) -> list[bytes] | None:
    """The length-prefixed parts written by the child (``None`` if the file is cut short)."""
    file.seek(0)
    data = file.read()
    parts: list[bytes] = []
    at = 0
    while at < len(data):
        if at + _LENGTH.size > len(data):
            return None
        (size,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        if at + size > len(data):
            return None
        parts.append(data[at : at + size])
        at += size
    return parts


__all__ = ["Forked"]
