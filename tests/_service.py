"""Starting and stopping the real coordinator and agent processes for the service tests.

Every process listens on 127.0.0.1 only, on a port the coordinator picks itself (``--port 0``)
and announces; every process is stopped when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pivotal.negotiation.deployment import split_scenario
from pivotal.negotiation.scenario import Scenario

CLI = [sys.executable, "-m", "pivotal"]


@dataclass
class Deployment:
    """A scenario split into public terms and private files, with a database path."""

    root: Path
    parties: tuple[str, ...]
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    url: str = ""
    coordinator: subprocess.Popen[str] | None = None
    verify: bool | ssl.SSLContext = True
    agent_args: tuple[str, ...] = ()

    @property
    def config(self) -> Path:
        return self.root / "negotiation.json"

    @property
    def db(self) -> Path:
        return self.root / "negotiation.sqlite"

    def private(self, party: str) -> Path:
        return self.root / "private" / f"{party}.json"

    def token(self, party: str) -> str:
        return (self.root / "tokens" / f"{party}.token").read_text().strip()

    def headers(self, party: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(party)}"}

    # ------------------------------------------------------------------ processes
    def start_coordinator(self, port: int = 0, *extra: str) -> str:
        """Start (or restart, with the same database) the coordinator; return its URL."""
        args = [*CLI, "serve", "coordinator", "--db", str(self.db), "--host", "127.0.0.1"]
        args += ["--port", str(port), "-o", str(self.root / "outcome.json"), "--no-access-log"]
        if not self.db.exists():
            args += ["--config", str(self.config), "--tokens-dir", str(self.root / "tokens")]
        log = (self.root / "coordinator.log").open("a")
        proc = subprocess.Popen(
            [*args, *extra], stdout=subprocess.PIPE, stderr=log, text=True, env=_env()
        )
        self.processes.append(proc)
        self.coordinator = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"coordinator exited early: {self.log_text()}")
            with (self.root / "coordinator.out").open("a") as fh:
                fh.write(line)
            if line.startswith("listening on "):
                self.url = line.split()[-1]
                break
        wait_until(
            lambda: httpx.get(f"{self.url}/health", verify=self.verify).status_code == 200, 30
        )
        return self.url

    def start_agent(self, party: str) -> subprocess.Popen[str]:
        """Start one party's agent process."""
        out = (self.root / f"agent-{party}.log").open("a")
        proc = subprocess.Popen(
            [
                *CLI,
                "agent",
                "run",
                "--coordinator",
                self.url,
                "--party",
                party,
                "--token-file",
                str(self.root / "tokens" / f"{party}.token"),
                "--private",
                str(self.private(party)),
                "--json",
                *self.agent_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(),
        )
        self.processes.append(proc)
        return proc

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = httpx.get(f"{self.url}/status", timeout=10, verify=self.verify).json()
        return doc

    def outcome(self) -> dict[str, Any]:
        r = httpx.get(
            f"{self.url}/v1/outcome",
            headers=self.headers("operator"),
            timeout=10,
            verify=self.verify,
        )
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        return doc

    def log_text(self) -> str:
        path = self.root / "coordinator.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def deploy(root: Path, scenario: Scenario, **kwargs: Any) -> Deployment:
    """Write the public terms and the private files of a scenario under ``root``."""
    config, private = split_scenario(scenario, **kwargs)
    root.mkdir(parents=True, exist_ok=True)
    (root / "negotiation.json").write_text(json.dumps(config))
    (root / "private").mkdir(exist_ok=True)
    for party, doc in private.items():
        (root / "private" / f"{party}.json").write_text(json.dumps(doc))
    return Deployment(root, tuple(private))


def follow_until(d: Deployment, phase: str, at_round: int) -> None:
    """Follow the rounds as they complete (long poll on ``/status``) until ``phase`` (the
    current phase, or one of the protocol runs under way) is at round ``at_round`` or later;
    fails if the negotiation ends first. Interval polling would
    miss a phase: over the WebSocket transport a round takes milliseconds."""
    seen = 0
    while True:
        status = httpx.get(f"{d.url}/status", params={"since": seen, "wait": 30}, timeout=40).json()
        assert status["status"] in ("running", "waiting"), status
        seen = len(status["residuals"])
        # the protocol runs go on together: a short run can have finished (and left "runs")
        # while the others go on, so its completed rounds count too
        done = max((r["round"] for r in status["residuals"] if r["phase"] == phase), default=-1)
        runs = status.get("runs") or {}
        at = runs.get(phase, status["round"] if status["phase"] == phase else -1)
        if max(at, done) >= at_round:
            return


def wait_until(predicate: Any, seconds: float, what: str = "condition") -> None:
    """Poll ``predicate`` (ignoring connection errors) until it holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env
