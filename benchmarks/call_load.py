"""Load on an open call: thousands of participants submitting in the last minute, then the close.

    python benchmarks/call_load.py [--participants 10000] [--window 50] [--points 20] [--dir DIR]
                                   [--kills 0] [--auction-goods 100 --auction-bids 500]
                                   [--auction-engines inprocess,processes:2]

1. Starts the real server (``pivotal serve call``, one process, access log off) for a market
   call with ``--participants`` invited participants (half producers, half buyers).
2. Each participant submits one ``--points``-point piecewise-linear curve; arrivals are spread
   uniformly over ``--window`` seconds (10,000 in 50 s is 200 per second) by ``--clients``
   asyncio client processes with pools of keep-alive connections (a minimal HTTP/1.1 client on
   asyncio streams, :class:`RawClient`: httpx used more CPU per request than the server).
   Latency is measured per request from send to receipt. With ``--kills K`` the server is
   SIGKILLed K times during the burst and restarted on the same database and port; clients retry
   until they hold a receipt. The server's CPU time per submission is reported too: it does not
   depend on what else the machine runs. A receipt means the report is on disk, so every
   submission waits for a disk sync: the first rows give the sync latency of the database's
   folder (``--dir``), a floor under the tail latency (on this machine's virtual disk a sync
   takes 3 ms at the median and up to ~1 s at the 99th percentile; ``--dir /dev/shm`` shows the
   server without the disk).
3. Checks: every participant holds a receipt, the operator's count equals the number of
   participants (zero lost), receipts' sequence numbers are distinct and every receipt is in the
   event log (zero duplicated, zero lost after kills).
4. After the deadline: the time from ``POST /v1/operator/close`` to the published record
   (``POST /v1/operator/publish`` returned), next to ``pivotal market run --no-withholding`` on
   the assembled file in the same run (the same computation from a file, the reference).
5. The same for a CATS auction (``--auction-goods`` x ``--auction-bids``, arbitrary
   distribution), each generated bidder a participant: one call per engine of
   ``--auction-engines`` (``pivotal serve call --engine E``), next to ``pivotal auction run
   --no-core`` on the assembled file (the reference: the document the close computes, serially).
   While the close computes, the public status is polled every 0.5 s: its slowest answer shows
   whether the server still answers (the close runs in a worker thread). The rows give the
   counterfactual solves (how many, how many the LP bound proved) and whether the close's
   allocation and payments equal the reference's.

Prints a table; the server's peak resident memory (VmHWM) is read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydantic_core import from_json, to_json

from pivotal.markets.clarke import vcg_market
from pivotal.markets.market import market_from_document

CLI = [sys.executable, "-m", "pivotal"]


def cpu_seconds(server: Server) -> float:
    """User + system CPU time of the server process."""
    assert server.proc is not None
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, root: Path, terms: dict[str, Any], extra: tuple[str, ...] = ()) -> None:
        self.root, self.terms, self.extra = root, terms, extra
        self.db = root / "call.sqlite"
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.port = 0  # picked at the first start, kept across restarts
        self.peak_rss = 0.0

    def start(self) -> str:
        args = [*CLI, "serve", "call", "--db", str(self.db), "--port", str(self.port)]
        args += ["--no-access-log", *self.extra]
        if not self.db.exists():
            (self.root / "call.json").write_text(json.dumps(self.terms))
            args += ["--config", str(self.root / "call.json")]
            args += ["--tokens-dir", str(self.root / "tokens")]
        log = (self.root / "server.log").open("a")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("listening on "):
                self.url = line.split()[-1]
                self.port = int(self.url.rsplit(":", 1)[1])
                return self.url
        raise RuntimeError((self.root / "server.log").read_text())

    def sample(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.peak_rss = max(self.peak_rss, peak_rss_mib(self.proc.pid))

    def kill(self) -> None:
        assert self.proc is not None
        self.sample()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.sample()
            self.proc.terminate()
            self.proc.wait(30)

    def token(self, name: str) -> str:
        return (self.root / "tokens" / f"{name}.token").read_text().strip()


def curve(rng: random.Random, producer: bool, points: int) -> dict[str, Any]:
    q, v, slope, pts = 0.0, 0.0, rng.uniform(1, 5), [[0.0, 0.0]]
    for _ in range(points - 1):
        dq = round(rng.uniform(0.1, 2), 4)
        q, v = q + dq, v + slope * dq
        pts.append([round(q, 4), round(v, 6)])
        slope = (
            slope + rng.uniform(0.01, 0.5) if producer else max(slope - rng.uniform(0.01, 0.2), 0)
        )
    return {"cost" if producer else "benefit": {"kind": "piecewise_linear", "points": pts}}


def deadline_in(seconds: float) -> str:
    t = datetime.now(UTC) + timedelta(seconds=seconds)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: requests written as prepared
    bytes, responses read by their Content-Length. The load generator's own CPU per request is
    a fraction of httpx's (which spent more CPU per submission than the server, on the same two
    cores), so the latencies measure the server more than the clients."""

    def __init__(self, url: str, size: int) -> None:
        host_port = url.split("://", 1)[1].rstrip("/")
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.size = size
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, token: str, body: bytes) -> tuple[int, bytes]:
        """Status and body; ``OSError`` (or ``asyncio.IncompleteReadError``) when the server
        went away (the connection is dropped, the caller retries)."""
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            writer.write(head + body)
            await writer.drain()
            header = await reader.readuntil(b"\r\n\r\n")
            lines = header.split(b"\r\n")
            status = int(lines[0].split()[1])
            length = 0
            keep = True
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    keep = False
            content = await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            writer.close()
            raise OSError("connection lost") from None
        if keep and len(self.idle) < self.size:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return status, content

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _client(
    url: str,
    items: list[tuple[int, str, str, dict[str, Any]]],
    n_total: int,
    start_at: float,
    window: float,
    concurrency: int,
) -> tuple[list[float], dict[str, dict[str, Any]]]:
    latencies: list[float] = []
    receipts: dict[str, dict[str, Any]] = {}
    gate = asyncio.Semaphore(concurrency)
    client = RawClient(url, concurrency)

    async def one(i: int, name: str, token: str, body: dict[str, Any]) -> None:
        payload = to_json(body)
        await asyncio.sleep(max(0.0, start_at + window * i / n_total - time.time()))
        async with gate:
            while True:
                t0 = time.perf_counter()
                try:
                    status, content = await client.request(
                        "PUT", f"/v1/participants/{name}/report", token, payload
                    )
                except OSError:  # the server is being restarted: retry
                    await asyncio.sleep(0.2)
                    continue
                if status == 200:
                    latencies.append(time.perf_counter() - t0)
                    receipts[name] = from_json(content)
                    return
                if status != 503:
                    raise RuntimeError(f"{name}: {status} {content.decode(errors='replace')}")
                await asyncio.sleep(0.1)

    try:
        await asyncio.gather(*(one(*item) for item in items))
    finally:
        client.close()
    return latencies, receipts


def client_process(
    url: str,
    items: list[tuple[int, str, str, dict[str, Any]]],
    n_total: int,
    start_at: float,
    window: float,
    concurrency: int,
) -> tuple[list[float], dict[str, dict[str, Any]]]:
    """One client process: its share of the participants, as asyncio tasks."""
    return asyncio.run(_client(url, items, n_total, start_at, window, concurrency))


def burst(
    server: Server,
    bodies: dict[str, dict[str, Any]],
    tokens: dict[str, str],
    window: float,
    kills: int,
    concurrency: int,
    clients: int,
) -> tuple[list[float], dict[str, dict[str, Any]], float]:
    """Arrivals spread over ``window`` seconds from ``clients`` processes; ``kills`` SIGKILLs
    of the server during the window (restarted on the same port and database)."""
    items = [(i, n, tokens[n], bodies[n]) for i, n in enumerate(bodies)]
    start_at = time.time() + 2.0  # the client processes start first
    latencies: list[float] = []
    receipts: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(clients) as pool:
        futures = [
            pool.submit(
                client_process,
                server.url,
                items[k::clients],
                len(items),
                start_at,
                window,
                max(1, concurrency // clients),
            )
            for k in range(clients)
        ]
        for k in range(kills):
            while time.time() < start_at + window * (k + 1) / (kills + 1):
                keep_open(server)
                time.sleep(0.5)
            server.kill()
            server.start()
        while not all(f.done() for f in futures):
            server.sample()
            keep_open(server)
            time.sleep(0.5)
        for f in futures:
            lat, rec = f.result()
            latencies += lat
            receipts.update(rec)
    return latencies, receipts, time.time() - start_at


def keep_open(server: Server) -> None:
    """When the burst runs late (a loaded machine), the operator extends the deadline before it
    passes, as the terms allow; the report says how long the burst took."""
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            status = c.get("/v1/call").json()
            if status["seconds_left"] < 15:
                later = datetime.fromisoformat(status["deadline"].replace("Z", "+00:00"))
                c.post(
                    "/v1/operator/deadline",
                    json={"deadline": (later + timedelta(seconds=30)).isoformat()},
                    headers={"Authorization": f"Bearer {server.token('operator')}"},
                )
    except httpx.HTTPError:  # restarting
        pass


def close_and_publish(server: Server) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Seconds from the close to the published record, the record, and what the public status
    answered while the close computed (its slowest answer, the phases seen, the server's CPU)."""
    ops = {"Authorization": f"Bearer {server.token('operator')}"}
    polled: dict[str, Any] = {"slowest": 0.0, "phases": set(), "answers": 0}
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=server.url, timeout=3600) as p:
            while not done.wait(0.5):
                t = time.perf_counter()
                phase = p.get("/v1/call").json()["phase"]
                polled["slowest"] = max(polled["slowest"], time.perf_counter() - t)
                polled["phases"].add(phase)
                polled["answers"] += 1

    with httpx.Client(base_url=server.url, timeout=3600) as c:
        left = c.get("/v1/call").json()["seconds_left"]
        time.sleep(left + 0.5)
        watcher = threading.Thread(target=poll)
        cpu0 = cpu_seconds(server)
        t0 = time.perf_counter()
        watcher.start()
        try:
            r = c.post("/v1/operator/close", headers=ops)
        finally:
            done.set()
            watcher.join()
        r.raise_for_status()
        record = c.post("/v1/operator/publish", headers=ops)
        record.raise_for_status()
        seconds = time.perf_counter() - t0
        polled["cpu"] = cpu_seconds(server) - cpu0
    return seconds, record.json(), polled


def cli_run(kind: str, document: dict[str, Any], root: Path) -> tuple[float, dict[str, Any]]:
    """Seconds of the CLI's run on the assembled file, and its JSON document."""
    path = root / f"assembled-{kind}.json"
    path.write_text(json.dumps(document))
    args = [*CLI, kind, "run", str(path), "--json"]
    args.append("--no-withholding" if kind == "market" else "--no-core")
    t0 = time.perf_counter()
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0, json.loads(done.stdout)


def market_run(args: argparse.Namespace, root: Path) -> list[tuple[str, str]]:
    n = args.participants
    names = [f"p{i:05d}" for i in range(n)]
    invited = [{"name": x, "role": "producer" if i % 2 else "buyer"} for i, x in enumerate(names)]
    terms = {
        "name": "load",
        "kind": "market",
        "good": "kits",
        "unit": "kit",
        "deadline": deadline_in(args.window + 20 + n / 1000 + 20 * args.kills),
        "approval": "automatic",
        "publish_reports": True,
        "invited": invited,
    }
    server = Server(root, terms)
    t0 = time.perf_counter()
    server.start()
    created = time.perf_counter() - t0
    tokens = {x: server.token(x) for x in names}
    rng = random.Random(args.seed)
    bodies = {x: curve(rng, i % 2 == 1, args.points) for i, x in enumerate(names)}
    cpu0 = cpu_seconds(server)
    latencies, receipts, elapsed = burst(
        server, bodies, tokens, args.window, args.kills, args.concurrency, args.clients
    )
    cpu = cpu_seconds(server) - cpu0
    ops = {"Authorization": f"Bearer {server.token('operator')}"}
    with httpx.Client(base_url=server.url, timeout=60) as c:
        counted = c.get("/v1/operator", headers=ops).json()["submissions"]
    seqs = [r["seq"] for r in receipts.values()]
    lost = n - len(receipts) + (n - counted)
    duplicated = len(seqs) - len(set(seqs))
    seconds, record, _ = close_and_publish(server)
    listed = {r["participant"]: r for r in record["reports"]}
    mismatched = sum(
        1
        for x, r in receipts.items()
        if listed.get(x, {}).get("sha256") != r["report_sha256"] or listed[x]["seq"] != r["seq"]
    )
    reference, _ = cli_run("market", record["outcome"]["input"], root)
    server.stop()
    # the outcome of an undisturbed run: the mechanism on the reports the clients hold receipts
    # for, assembled here without the server
    undisturbed = vcg_market(
        market_from_document(
            {
                "producers": [
                    {"name": x, **bodies[x]} for x in sorted(bodies) if "cost" in bodies[x]
                ],
                "buyers": [
                    {"name": x, **bodies[x]} for x in sorted(bodies) if "benefit" in bodies[x]
                ],
            }
        )
    )
    recorded = record["outcome"]["transfers"]
    differs = sum(
        1 for x, t in undisturbed.transfers.items() if abs(recorded.get(x, 1e300) - t) > 1e-6
    )
    lat = np.array(latencies) * 1000
    return [
        ("participants", f"{n:,}"),
        ("curve points", str(args.points)),
        ("server kills during the burst", str(args.kills)),
        ("call creation (credentials issued)", f"{created:.1f} s"),
        ("burst duration (target: within 60 s)", f"{elapsed:.1f} s"),
        ("submissions per second", f"{n / elapsed:,.0f}"),
        ("latency p50", f"{np.percentile(lat, 50):.1f} ms"),
        ("latency p99 (target < 250 ms)", f"{np.percentile(lat, 99):.1f} ms"),
        ("latency max", f"{lat.max():.1f} ms"),
        (
            "server CPU per submission" + (" (last process)" if args.kills else ""),
            f"{cpu / n * 1000:.2f} ms",
        ),
        ("lost submissions", str(lost)),
        ("duplicated submissions", str(duplicated)),
        ("receipts not matching the record", str(mismatched)),
        ("transfers differing from an undisturbed run", str(differs)),
        ("server peak RSS (VmHWM)", f"{server.peak_rss:.0f} MiB"),
        ("market close -> published (target < 5 s)", f"{seconds:.2f} s"),
        ("reference: pivotal market run on the assembled file", f"{reference:.2f} s"),
    ]


def auction_run(args: argparse.Namespace, root: Path) -> list[tuple[str, str]]:
    from pivotal.auctions.generators import generate_auction

    auction = generate_auction(
        "arbitrary", args.auction_goods, args.auction_bids, np.random.default_rng(args.seed)
    )
    names = {b: f"b{i:04d}" for i, b in enumerate(auction.bidders)}
    bodies: dict[str, dict[str, Any]] = {names[b]: {"bids": []} for b in auction.bidders}
    for bid in auction.bids:
        bodies[names[bid.bidder]]["bids"].append(
            {"bundle": sorted(bid.bundle), "value": float(bid.value)}
        )
    terms = {
        "name": "cats",
        "kind": "auction",
        "items": list(auction.items),
        "deadline": deadline_in(20),
        "approval": "automatic",
        "publish_reports": True,
        "max_bundles": max(len(b["bids"]) for b in bodies.values()),
        "invited": [{"name": x, "role": "bidder"} for x in bodies],
    }
    rows = [
        (
            "auction",
            f"CATS arbitrary {args.auction_goods} goods x {args.auction_bids} bids, "
            f"{len(bodies)} bidders",
        )
    ]
    document: dict[str, Any] | None = None
    closes: list[dict[str, Any]] = []
    for engine in args.auction_engines.split(","):
        folder = root / engine.replace(":", "-").replace("/", "-")
        folder.mkdir()
        server = Server(folder, {**terms, "deadline": deadline_in(20)}, ("--engine", engine))
        server.start()
        tokens = {x: server.token(x) for x in bodies}
        burst(server, bodies, tokens, 2.0, 0, 64, 1)
        seconds, record, polled = close_and_publish(server)
        server.stop()
        outcome = record["outcome"]
        closes.append(outcome)
        document = outcome["input"]
        rows += [
            (f"auction close -> published, --engine {engine}", f"{seconds:.2f} s"),
            ("  server CPU (its own process) during the close", f"{polled['cpu']:.1f} s"),
            (
                "  public status during the close: slowest answer",
                f"{polled['slowest'] * 1000:.0f} ms ({polled['answers']} answers, "
                f"phases {sorted(polled['phases'])})",
            ),
        ]
    assert document is not None
    reference, doc = cli_run("auction", document, root)
    parameters = doc["provenance"]["parameters"]
    same = all(
        o["allocation"] == doc["allocation"]
        and all(abs(o["payments"][b] - p) <= 1e-6 for b, p in doc["payments"].items())
        for o in closes
    )
    rows += [
        ("reference: pivotal auction run --no-core (inprocess)", f"{reference:.2f} s"),
        ("  its VCG seconds (provenance)", f"{doc['provenance']['seconds']:.2f} s"),
        (
            "  counterfactuals (proved by the LP bound)",
            f"{parameters['counterfactuals']} ({parameters['counterfactuals_proved_by_lp']})",
        ),
        ("  MIP solves (main + counterfactuals)", str(parameters["mip_solves"])),
        ("closes' allocation and payments equal the reference's", str(same)),
        ("welfare", f"{doc['welfare']:.4f}"),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=50.0)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--kills", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--clients", type=int, default=4, help="Client processes.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--auction-goods", type=int, default=100)
    parser.add_argument("--auction-bids", type=int, default=500)
    parser.add_argument("--no-auction", action="store_true")
    parser.add_argument(
        "--auction-engines",
        default="inprocess",
        help="Comma-separated engines the auction call is closed on, one call each "
        "(pivotal serve call --engine), e.g. inprocess,processes:2.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="Folder for the call's database (default: the system's temporary folder); "
        "`--dir /dev/shm` takes the disk's sync time out of the latencies.",
    )
    args = parser.parse_args()
    print(f"{'measure':<54}  value", flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        show(disk_sync(Path(tmp)))
        (Path(tmp) / "market").mkdir()
        show(market_run(args, Path(tmp) / "market"))
        if not args.no_auction:
            (Path(tmp) / "auction").mkdir()
            show(auction_run(args, Path(tmp) / "auction"))
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end)")


def disk_sync(folder: Path, syncs: int = 300) -> list[tuple[str, str]]:
    """The sync latency of the folder's disk: every accepted submission waits for one sync
    (``synchronous=FULL``: a receipt means the report is on disk), so the disk's own slow syncs
    are a floor under the submissions' tail latency."""
    path = folder / "sync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(syncs):
            os.write(fd, b"x" * 4096)
            t = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    p50, p99 = np.percentile(times, [50, 99]) * 1000
    return [
        ("database folder", str(folder.parent)),
        (
            f"disk sync of 4 KiB, p50 / p99 / max ({syncs} syncs)",
            f"{p50:.1f} / {p99:.1f} / {max(times) * 1000:.1f} ms",
        ),
    ]


def show(rows: list[tuple[str, str]]) -> None:
    """Print rows as soon as they are measured (the auction close can take long)."""
    for k, v in rows:
        print(f"{k:<54}  {v}", flush=True)


if __name__ == "__main__":
    main()
