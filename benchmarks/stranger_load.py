"""Strangers at the coordinator's port while a negotiation runs (issue 14, item 3).

    python benchmarks/stranger_load.py [--header-connections 20] [--header-mib 100]
                                       [--half-open 2000] [--transport ws|http]
                                       [--page-clients 0] [--coordinator-args "..."]

Starts the real coordinator (``pivotal serve coordinator``, one process, loopback, access log
off) on the truck example and loads its page once. Then, from this process, strangers without
a token:

- ``--header-connections`` connections each stream ``--header-mib`` MiB of one request's header
  lines, as fast as the server takes them (one connection each, not reopened when cut);
- ``--half-open`` connections each send the start of a request and then nothing (held open
  until the end; the ones the server closes are counted);
- ``--page-clients`` clients loop on ``GET /`` as a browser would (with the ETag) until the end.

Once the strangers are all connected and streaming, the two agents (``pivotal agent run``, real
processes) run the negotiation. Meanwhile ``/health`` is asked ten times a second on a fresh
connection, and the coordinator's resident memory (VmRSS) and open file descriptors are sampled
every 50 ms. Printed: RSS before, peak and after, max ``/health`` latency (and failures), whether
the negotiation finished and in how many rounds and seconds (next to an undisturbed run in the
same invocation), the header bytes sent before the coordinator cut each stream, and the
half-open connections it closed (``--hold`` seconds after the end). Everything stays on
127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pivotal.negotiation.deployment import split_scenario
from pivotal.negotiation.scenario import truck_example

CLI = [sys.executable, "-m", "pivotal"]
CHUNK = 64 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Run:
    root: Path
    extra: list[str]
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    parties: list[str] = field(default_factory=list)

    def start(self) -> None:
        config, private = split_scenario(truck_example())
        self.root.mkdir(parents=True)
        (self.root / "negotiation.json").write_text(json.dumps(config))
        (self.root / "private").mkdir()
        for party, doc in private.items():
            (self.root / "private" / f"{party}.json").write_text(json.dumps(doc))
        self.parties = list(private)
        args = [*CLI, "serve", "coordinator", "--db", str(self.root / "db.sqlite"), "--config"]
        args += [str(self.root / "negotiation.json"), "--tokens-dir", str(self.root / "tokens")]
        args += ["--host", "127.0.0.1", "--port", "0", "--no-access-log", *self.extra]
        log = (self.root / "coordinator.log").open("w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("listening on "):
                self.url = line.split()[-1]
                break
        else:
            raise RuntimeError((self.root / "coordinator.log").read_text())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the coordinator did not answer /health")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def agents(self, transport: str) -> list[subprocess.Popen[str]]:
        procs = []
        for party in self.parties:
            args = [*CLI, "agent", "run", "--coordinator", self.url, "--party", party]
            args += ["--token-file", str(self.root / "tokens" / f"{party}.token")]
            args += ["--private", str(self.root / "private" / f"{party}.json"), "--json"]
            args += ["--retry-for", "120", "--transport", transport]
            out = (self.root / f"agent-{party}.log").open("w")
            procs.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True))
        return procs

    def rounds(self) -> int | None:
        token = (self.root / "tokens" / "operator.token").read_text().strip()
        r = httpx.get(
            f"{self.url}/v1/outcome", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        return int(r.json()["rounds"]) if r.status_code == 200 else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def negotiate(run: Run, transport: str, seconds: float) -> tuple[bool, float]:
    """Run the agents to the end; (finished with exit 0 both, seconds)."""
    t0 = time.monotonic()
    procs = run.agents(transport)
    ok = True
    for p in procs:
        try:
            ok &= p.wait(timeout=max(1.0, seconds - (time.monotonic() - t0))) == 0
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            ok = False
    return ok, time.monotonic() - t0


def stream_headers(address: tuple[str, int], mib: int, accepted: list[int]) -> None:
    """One connection: a request line, then header lines until ``mib`` MiB or the server cuts."""
    sent = 0
    try:
        with socket.create_connection(address, timeout=30) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            line = b"X-Filler: " + b"a" * (CHUNK - 12) + b"\r\n"
            while sent < mib * 1024 * 1024:
                s.sendall(line)
                sent += len(line)
    except OSError:
        pass
    accepted.append(sent)


def half_open(address: tuple[str, int], n: int, held: list[socket.socket]) -> None:
    for _ in range(n):
        try:
            s = socket.create_connection(address, timeout=10)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait: ")
            held.append(s)
        except OSError:
            pass


def closed_by_server(held: list[socket.socket]) -> int:
    closed = 0
    for s in held:
        s.setblocking(False)
        try:
            if s.recv(1024) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--header-connections", type=int, default=20)
    parser.add_argument("--header-mib", type=int, default=100)
    parser.add_argument("--half-open", type=int, default=2000)
    parser.add_argument("--page-clients", type=int, default=0)
    parser.add_argument("--transport", choices=("ws", "http"), default="ws")
    parser.add_argument("--timeout", type=float, default=300.0, help="Seconds for the run.")
    parser.add_argument(
        "--hold",
        type=float,
        default=12.0,
        help="Seconds to keep the half-open connections after the negotiation ends, before "
        "counting those the server closed.",
    )
    parser.add_argument("--coordinator-args", default="", help="Extra coordinator options.")
    args = parser.parse_args()
    extra = shlex.split(args.coordinator_args)

    with tempfile.TemporaryDirectory() as tmp:
        calm = Run(Path(tmp) / "undisturbed", extra)
        calm.start()
        calm_ok, calm_seconds = negotiate(calm, args.transport, args.timeout)
        calm_rounds = calm.rounds()
        calm.stop()

        run = Run(Path(tmp) / "attacked", extra)
        run.start()
        assert run.proc is not None
        pid = run.proc.pid
        first = httpx.get(f"{run.url}/", timeout=60)  # the page and its asset, built once
        time.sleep(0.5)
        before = rss_mib(pid)
        stop = threading.Event()
        samples: list[tuple[float, int]] = []
        health: list[float] = []
        failures: list[str] = []

        def sample() -> None:
            while not stop.is_set():
                try:
                    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
                    samples.append((rss_mib(pid), fds))
                except OSError:
                    return
                time.sleep(0.05)

        def probe() -> None:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = httpx.get(f"{run.url}/health", timeout=10)
                    if r.status_code != 200:
                        failures.append(str(r.status_code))
                except httpx.HTTPError as exc:
                    failures.append(type(exc).__name__)
                health.append(time.monotonic() - t0)
                time.sleep(0.1)

        page_bytes: list[int] = []

        def browse() -> None:
            etag = first.headers.get("etag", "")
            with httpx.Client(timeout=30) as c:
                while not stop.is_set():
                    r = c.get(f"{run.url}/", headers={"If-None-Match": etag} if etag else {})
                    page_bytes.append(len(r.content))

        accepted: list[int] = []
        held: list[socket.socket] = []
        threads = [threading.Thread(target=sample), threading.Thread(target=probe)]
        threads += [threading.Thread(target=browse) for _ in range(args.page_clients)]
        streams = [
            threading.Thread(target=stream_headers, args=(run.address, args.header_mib, accepted))
            for _ in range(args.header_connections)
        ]
        for t in threads + streams:
            t.start()
        half_open(run.address, args.half_open, held)
        ok, seconds = negotiate(run, args.transport, args.timeout)
        rounds = run.rounds() if ok else None
        for t in streams:
            t.join(timeout=max(1.0, args.timeout))
        time.sleep(args.hold)
        closed = closed_by_server(held)
        after = rss_mib(pid)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        for s in held:
            s.close()
        run.stop()

    peak = max([before, *(r for r, _ in samples)])
    fds = max((f for _, f in samples), default=0)
    mib = 1024 * 1024
    print(
        f"strangers at the coordinator: {args.header_connections} x {args.header_mib} MiB of "
        f"headers, {args.half_open} half-open requests, {args.page_clients} page clients; "
        f"truck example over {args.transport}"
    )
    print(f"coordinator options: {' '.join(extra) or '(defaults)'}")
    print("| measure | value |\n|---|---|")
    rows = [
        ("RSS before (MiB)", f"{before:.0f}"),
        ("RSS peak during (MiB)", f"{peak:.0f}"),
        ("RSS after (MiB)", f"{after:.0f}"),
        ("RSS growth, peak - before (MiB)", f"{peak - before:.0f}"),
        ("open file descriptors, peak", f"{fds}"),
        (
            "header bytes sent before the cut, max per connection (MiB)",
            f"{max(accepted, default=0) / mib:.2f}",
        ),
        ("header bytes sent, total (MiB)", f"{sum(accepted) / mib:.1f}"),
        (
            "half-open connections closed by the server",
            f"{closed} of {len(held)} ({args.hold:.0f} s after)",
        ),
        ("/health probes (failed)", f"{len(health)} ({len(failures)})"),
        ("/health latency max (ms)", f"{1000 * max(health, default=float('nan')):.0f}"),
        ("first GET / (bytes)", f"{len(first.content)}"),
        ("later GET / (bytes, max)", f"{max(page_bytes, default=0)} x {len(page_bytes)}"),
        ("negotiation finished", "yes" if ok else "no"),
        ("rounds (undisturbed)", f"{rounds} ({calm_rounds if calm_ok else 'failed'})"),
        ("negotiation seconds (undisturbed)", f"{seconds:.1f} ({calm_seconds:.1f})"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    if failures:
        print("health failures:", ", ".join(sorted(set(failures))))


if __name__ == "__main__":
    main()
