"""Load on the coordinator service: many simulated agents on loopback, per-round overhead.

    python benchmarks/service_load.py [--agents 10,50,200] [--rounds 50] [--transport ws,http]

Starts the real coordinator (``pivotal serve coordinator``, one process, access log off) and
runs N simulated agents as asyncio tasks in this process, each with its own connection: one
WebSocket per agent (``ws``, the agents' default transport) or a long-polling HTTP client per
agent (``http``); the simulated agents share one uvloop event loop (asyncio's own when uvloop is
not installed), as the coordinator runs on uvloop too; they read and write JSON with
pydantic-core, as the coordinator does, so that the one client process stands in for 200
machines as cheaply as it can. Agents have private quadratic costs ``C(x) = a/2 ||x - t||^2``
with the closed-form best response, so their own compute is tiny and is measured and subtracted
anyway. The stopping tolerance is unreachable, so the joint run lasts exactly ``--rounds``
rounds.

Per round ``r``: ``wall = open(r+1) - open(r)`` where ``open`` is the first moment any agent
holds the round's task, and ``overhead = wall - max agent compute in r``. The overhead therefore
includes everything that is not the agents' own work: N answers and N replies carrying the next
task (WebSocket frames or HTTP requests, client and server side), validation, the ADMM step, the
SQLite commit and the broadcast. Reported: p50 and p99 over rounds, errors (non-2xx replies or
error frames), the coordinator's resident memory after round 10 and at the end, and its CPU time
per round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydantic_core import from_json, to_json
from websockets.asyncio.client import connect

from pivotal.negotiation.deployment import AdmmTerms, NegotiationConfig, SiteRef, VendorRef

WEEKS, SITES = 4, (("A", "Dallas"), ("B", "Phoenix"))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(root: Path, n_agents: int, rounds: int) -> tuple[subprocess.Popen[str], str]:
    config = NegotiationConfig(
        name=f"load-{n_agents}",
        hub="hub",
        weeks=WEEKS,
        sites=[SiteRef(name=n, metro=m) for n, m in SITES],
        vendors=[VendorRef(name=f"v{i}", products=[f"p{i}"]) for i in range(n_agents - 1)],
        admm=AdmmTerms(eps_abs=1e-300, eps_rel=0.0, max_rounds=rounds),
        round_deadline_seconds=600,
    )
    (root / "config.json").write_text(json.dumps(config.model_dump(mode="json")))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pivotal", "serve", "coordinator", "--config",
         str(root / "config.json"), "--db", str(root / "db.sqlite"), "--port", "0",
         "--tokens-dir", str(root / "tokens"), "--no-access-log"],
        stdout=subprocess.PIPE, stderr=(root / "coordinator.log").open("w"), text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("listening on "):
            return proc, line.split()[-1]
    raise RuntimeError((root / "coordinator.log").read_text())


async def agent(
    url: str,
    name: str,
    token: str,
    size: int,
    rng: np.random.Generator,
    log: dict[str, Any],
    transport: str,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    a, target = float(rng.uniform(0.5, 2.0)), rng.uniform(0, 100, size)
    if transport == "ws":
        stream = url.replace("http://", "ws://") + f"/v1/parties/{name}/stream"
        async with connect(stream, additional_headers=headers, max_size=None) as ws:

            async def exchange(body: dict[str, Any] | None) -> dict[str, Any] | None:
                if body is not None:
                    await ws.send(to_json(body).decode())
                frame: dict[str, Any] = from_json(await ws.recv())
                if "error" in frame:
                    log["errors"].append(frame["error"])
                    return None
                return frame if "kind" in frame else frame["next_task"]

            await _loop(exchange, a, target, log)
        return
    # one client (one keep-alive connection) per agent, as separate companies would have
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:

        async def exchange_http(body: dict[str, Any] | None) -> dict[str, Any] | None:
            if body is None:
                r = await client.get(f"/v1/parties/{name}/task", params={"wait": 20})
            else:
                r = await client.post(f"/v1/parties/{name}/answers", json=body, params={"wait": 20})
            if r.status_code != 200:
                log["errors"].append(r.status_code)
                return None
            reply: dict[str, Any] = r.json()
            return reply if body is None else reply["next_task"]

        await _loop(exchange_http, a, target, log)


async def _loop(exchange: Any, a: float, target: np.ndarray, log: dict[str, Any]) -> None:
    task = await exchange(None)
    while task is not None:
        got = time.perf_counter()
        if task["kind"] in ("done", "failed"):
            return
        if task["kind"] == "wait":
            task = await exchange(None)
            continue
        c0 = time.perf_counter()
        if task["kind"] == "status_quo":
            plan = np.maximum(target, 0.0)
        else:  # argmin a/2||x - t||^2 + prices'x + rho/2||x - z||^2
            z, prices, rho = np.array(task["z"]), np.array(task["prices"]), task["rho"]
            plan = (a * target - prices + rho * z) / (a + rho)
        body = {"schema_version": 1, "phase": task["phase"], "round": task["round"]}
        body["plan"] = plan.tolist()
        compute = time.perf_counter() - c0
        if task["phase"] == "joint":
            log["open"][task["round"]].append(got)
            log["compute"][task["round"]].append(compute)
        task = await exchange(body)


async def run(n_agents: int, rounds: int, transport: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        proc, url = start(root, n_agents, rounds)
        try:
            log: dict[str, Any] = {
                "open": defaultdict(list),
                "compute": defaultdict(list),
                "errors": [],
            }
            rng = np.random.default_rng(0)
            memory: dict[str, float] = {}

            async def sample_memory() -> None:
                while 1 not in log["open"]:
                    await asyncio.sleep(0.001)
                memory["cpu1"] = cpu_seconds(proc.pid)
                memory["client1"] = time.process_time()
                while min(10, rounds - 1) not in log["open"]:  # round 10, or the last one
                    await asyncio.sleep(0.01)
                memory["round10"] = rss_mib(proc.pid)
                while max(log["open"]) < rounds - 1:
                    await asyncio.sleep(0.001)
                memory["cpu_last"] = cpu_seconds(proc.pid)
                memory["client_last"] = time.process_time()

            names = ["hub"] + [f"v{i}" for i in range(n_agents - 1)]
            block = WEEKS * len(SITES)
            sizes = [block * (n_agents - 1)] + [block] * (n_agents - 1)
            tokens = [(root / "tokens" / f"{n}.token").read_text().strip() for n in names]
            await asyncio.gather(
                sample_memory(),
                *(
                    agent(url, n, t, s, rng, log, transport)
                    for n, t, s in zip(names, tokens, sizes, strict=True)
                ),
            )
            memory["end"] = rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
    opened = sorted(log["open"])
    overhead = []
    for r in opened[:-1]:
        wall = min(log["open"][r + 1]) - min(log["open"][r])
        overhead.append(wall - max(log["compute"][r]))
    ms = np.array(overhead) * 1000
    return {
        "transport": transport,
        "agents": n_agents,
        "rounds": len(opened),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_compute_ms": 1000 * max(max(v) for v in log["compute"].values()),
        "errors": len(log["errors"]),
        "server_cpu_ms": 1000 * (memory["cpu_last"] - memory["cpu1"]) / (rounds - 2),
        "client_cpu_ms": 1000 * (memory["client_last"] - memory["client1"]) / (rounds - 2),
        "client_wall_ms": 1000
        * (min(log["open"][rounds - 1]) - min(log["open"][1]))
        / (rounds - 2),
        "rss_round10_mib": memory["round10"],
        "rss_end_mib": memory["end"],
    }


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop when it is installed (uvicorn[standard] brings it on most platforms,
    and the coordinator then runs on it too), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        print("(uvloop is not installed: the simulated agents run on asyncio's event loop)")
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="10,50,200")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--transport", default="ws,http")
    args = parser.parse_args()
    print(f"coordinator per-round overhead, {args.rounds} rounds, loopback, pid {os.getpid()}")
    print(
        "| transport | agents | rounds | overhead p50 ms | overhead p99 ms | agent compute max ms "
        "| errors | RSS round 10 MiB | RSS end MiB | coordinator CPU ms/round "
        "| agents' process CPU ms/round |"
    )
    print("|" + "---|" * 11)
    for transport in args.transport.split(","):
        for n in (int(x) for x in args.agents.split(",")):
            with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                report(runner.run(run(n, args.rounds, transport)))


def report(r: dict[str, Any]) -> None:
    """One table row."""
    print(
        f"| {r['transport']} | {r['agents']} | {r['rounds']} | {r['p50_ms']:.1f} | "
        f"{r['p99_ms']:.1f} | {r['max_compute_ms']:.2f} | {r['errors']} | "
        f"{r['rss_round10_mib']:.1f} | {r['rss_end_mib']:.1f} | {r['server_cpu_ms']:.1f} | "
        f"{r['client_cpu_ms']:.1f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
