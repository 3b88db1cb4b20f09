"""Starting and stopping a real call server (``pivotal serve call``) for the call tests, and
calls in the library (no server) on a settable clock.

The server listens on 127.0.0.1 on a port it picks itself (``--port 0``) and announces; it is
stopped when the test ends. Participants are separate processes (``pivotal call submit``) or
HTTP clients, as each test needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from pivotal.calls import Call, terms_from_document

CLI = [sys.executable, "-m", "pivotal"]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


START = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
DEADLINE = START + timedelta(hours=1)


class Clock:
    """A library call's clock: it starts at ``START`` and moves when a test sets ``now``."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def market_terms(**extra: Any) -> dict[str, Any]:
    """A market call's terms, due at ``DEADLINE``, approving registrations automatically."""
    return {
        "name": "kits",
        "kind": "market",
        "good": "test kits",
        "unit": "kit",
        "deadline": DEADLINE.isoformat(),
        "approval": "automatic",
        "publish_reports": True,
        **extra,
    }


def auction_terms(**extra: Any) -> dict[str, Any]:
    """An auction call's terms on items A, B and C, due at ``DEADLINE``."""
    return {
        "name": "lots",
        "kind": "auction",
        "items": ["A", "B", "C"],
        "deadline": DEADLINE.isoformat(),
        "approval": "automatic",
        "publish_reports": True,
        **extra,
    }


def new_call(tmp_path: Path, doc: dict[str, Any]) -> tuple[Call, dict[str, str], Clock]:
    """A call in the library, created in ``tmp_path`` on a fresh :class:`Clock`."""
    clock = Clock()
    call, tokens = Call.create(tmp_path / "call.sqlite", terms_from_document(doc), clock=clock)
    return call, tokens, clock


def auction_call(tmp_path: Path, **extra: Any) -> tuple[Call, dict[str, str], Clock]:
    """An auction call on A and B with bidders b1, b2 and b3 invited (unless ``invited``
    says otherwise)."""
    extra.setdefault("invited", [{"name": n, "role": "bidder"} for n in ("b1", "b2", "b3")])
    return new_call(tmp_path, auction_terms(items=["A", "B"], **extra))


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONUNBUFFERED"] = "1"
    e.setdefault("COLUMNS", "200")
    return e


def deadline_in(seconds: float) -> str:
    t = datetime.now(UTC) + timedelta(seconds=seconds)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seed_bids(bidder: str) -> dict[str, Any]:
    seed = json.loads((EXAMPLES / "seed_vcg_3x4.json").read_text())
    return {
        "bids": [
            {"bundle": b["bundle"], "value": b["value"]}
            for b in seed["bids"]
            if b["bidder"] == bidder
        ]
    }


@dataclass
class CallServer:
    """A call's files and its server process."""

    root: Path
    terms: dict[str, Any]
    url: str = ""
    process: subprocess.Popen[str] | None = None
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    extra: tuple[str, ...] = ()

    @property
    def config(self) -> Path:
        return self.root / "call.json"

    @property
    def db(self) -> Path:
        return self.root / "call.sqlite"

    @property
    def tokens(self) -> Path:
        return self.root / "tokens"

    def token(self, name: str) -> str:
        return (self.tokens / f"{name}.token").read_text().strip()

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}"}

    def start(self) -> str:
        """Start (or restart on the same database) the server; return its URL."""
        args = [*CLI, "serve", "call", "--db", str(self.db), "--port", "0", "--no-access-log"]
        if not self.db.exists():
            self.config.write_text(json.dumps(self.terms))
            args += ["--config", str(self.config), "--tokens-dir", str(self.tokens)]
        args += self.extra
        log = (self.root / "server.log").open("a")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env())
        self.processes.append(proc)
        self.process = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError((self.root / "server.log").read_text())
            if line.startswith("listening on "):
                self.url = line.split()[-1]
                return self.url
        raise RuntimeError("the call server did not announce its URL")

    def kill(self) -> None:
        """SIGKILL the server (a crash)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    @contextlib.contextmanager
    def kept_open(self, margin: float = 6.0) -> Iterator[None]:
        """While the block runs, the operator extends the deadline whenever fewer than
        ``margin`` seconds are left (as the terms allow, before it passes): tests can use short
        deadlines and still finish their work before them on a loaded machine."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.3):
                try:
                    with httpx.Client(base_url=self.url, timeout=10) as c:
                        status = c.get("/v1/call").json()
                        if status["seconds_left"] < margin:
                            later = datetime.fromisoformat(
                                status["deadline"].replace("Z", "+00:00")
                            )
                            c.post(
                                "/v1/operator/deadline",
                                json={
                                    "deadline": (later + timedelta(seconds=2 * margin)).isoformat()
                                },
                                headers=self.headers("operator"),
                            )
                except httpx.HTTPError:  # restarting
                    continue

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def wait_for_deadline(self) -> None:
        with self.client() as c:
            left = c.get("/v1/call").json()["seconds_left"]
        time.sleep(left + 0.2)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], capture_output=True, text=True, env=env(), check=check, timeout=120
        )
