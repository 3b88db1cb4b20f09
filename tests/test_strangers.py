"""Strangers at the coordinator's port (issue 14, item 3): the real coordinator on 127.0.0.1,
and the shared layer (:mod:`pivotal.service.http`) under uvicorn in a thread for the deadlines.

The full-size load (20 x 100 MiB of headers, 2,000 half-open requests) is
``benchmarks/stranger_load.py``; here the same properties at a smaller size: memory bounded,
``/health`` answers throughout, the negotiation finishes with the undisturbed outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from _service import CLI, Deployment, deploy, wait_until
from pivotal.negotiation.scenario import truck_example
from pivotal.negotiation.simulation import simulate
from pivotal.service.http import (
    Limits,
    SecurityHeaders,
    bind,
    hardened_config,
    warn_without_tls,
)

MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def closed(s: socket.socket, seconds: float = 10.0) -> bool:
    """Whether the server closed the connection (waiting up to ``seconds`` for it; 0: now)."""
    s.settimeout(seconds if seconds > 0 else None)
    s.setblocking(seconds > 0)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (TimeoutError, BlockingIOError):
        return False
    except OSError:
        return True


def response_head(s: socket.socket) -> bytes:
    s.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


# ---------------------------------------------------------------------------------- load
def test_strangers_do_not_stop_a_negotiation(tmp_path: Path) -> None:
    """Header floods and half-open requests while the truck example runs: the coordinator's
    memory grows by less than the headers sent, its connections stay under the cap (half-open
    ones beyond it are closed), ``/health`` answers every probe, and the negotiation ends with
    the in-process reference's plan and transfers."""
    streams, mib_each, half, cap = 4, 32, 150, 64
    d = deploy(tmp_path, truck_example())
    try:
        d.start_coordinator(0, "--max-connections", str(cap))
        assert d.coordinator is not None
        pid = d.coordinator.pid
        assert httpx.get(f"{d.url}/", timeout=60).status_code == 200  # the page, built once
        before = rss_mib(pid)
        stop = threading.Event()
        peak = [before, 0.0]
        probes: list[int | str] = []

        def watch() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mib(pid))
                peak[1] = max(peak[1], len(list(Path(f"/proc/{pid}/fd").iterdir())))
                time.sleep(0.02)

        def probe() -> None:
            while not stop.is_set():
                try:
                    probes.append(httpx.get(f"{d.url}/health", timeout=10).status_code)
                except httpx.HTTPError as exc:
                    probes.append(type(exc).__name__)
                time.sleep(0.1)

        sent: list[int] = []

        def flood() -> None:
            total = 0
            try:
                with socket.create_connection(address(d.url), timeout=30) as s:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    line = b"X-Filler: " + b"a" * (64 * 1024 - 12) + b"\r\n"
                    while total < mib_each * MIB:
                        s.sendall(line)
                        total += len(line)
            except OSError:
                pass
            sent.append(total)

        helpers = [threading.Thread(target=watch), threading.Thread(target=probe)]
        floods = [threading.Thread(target=flood) for _ in range(streams)]
        for t in helpers + floods:
            t.start()
        held = []
        for _ in range(half):
            s = socket.create_connection(address(d.url), timeout=10)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait: ")
            held.append(s)
        agents = [d.start_agent(p) for p in d.parties]
        codes = [a.wait(timeout=240) for a in agents]
        for t in floods:
            t.join(timeout=60)
        stop.set()
        for t in helpers:
            t.join(timeout=30)
        gone = sum(closed(s, 0.0) for s in held)
        for s in held:
            s.close()
        outcome = d.outcome()
    finally:
        d.stop()
    assert codes == [0] * len(agents), d.log_text()[-3000:]
    reference = simulate(truck_example(), check=False).to_dict()
    for party, money in reference["transfers"].items():
        assert abs(outcome["transfers"][party] - money) <= 1e-9 * max(1.0, abs(money)), party
    assert probes and all(p == 200 for p in probes), probes
    # every flood was cut long before its end; the memory grew by far less than was sent
    assert max(sent) < mib_each * MIB / 4, sent
    assert peak[0] - before < streams * mib_each / 4, (before, peak)
    # at the cap, a newcomer closes the oldest connection still waiting for its headers
    assert gone >= half - cap, gone
    assert peak[1] <= cap + 40, peak  # the database, the listening socket, pipes: a few more


# ---------------------------------------------------------------------------------- deadlines
async def _echo(scope: Any, receive: Any, send: Any) -> None:
    """A small ASGI app: reads the body, waits on ``/slow``, echoes the client and the size."""
    assert scope["type"] == "http"
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    if scope["path"] == "/slow":
        await asyncio.sleep(1.0)
    body = json.dumps({"client": scope["client"][0], "scheme": scope["scheme"], "bytes": size})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


@contextmanager
def serving(app: Any, limits: Limits, **options: Any) -> Iterator[tuple[str, int]]:
    sock = bind("127.0.0.1", 0)
    config = hardened_config(
        app, tls_cert=None, tls_key=None, access_log=False, limits=limits, ws="none",
        lifespan="off", **options,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield sock.getsockname()[:2]
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def test_read_deadlines_and_the_connection_cap() -> None:
    limits = Limits(max_connections=8, header_seconds=0.3, body_seconds=0.3)
    with serving(_echo, limits) as addr:
        url = f"http://{addr[0]}:{addr[1]}"
        # headers that never end, and a body that never ends: both connections closed
        half = socket.create_connection(addr)
        half.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        body = socket.create_connection(addr)
        body.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n12345")
        silent = socket.create_connection(addr)  # connects and says nothing
        assert closed(half) and closed(body) and closed(silent)
        # a request being answered is not cut: the deadlines are for reading only
        assert httpx.get(f"{url}/slow", timeout=10).json()["bytes"] == 0
    with serving(_echo, Limits(max_connections=8)) as addr:
        url = f"http://{addr[0]}:{addr[1]}"
        # at the cap, newcomers close the oldest connections still waiting for headers (before
        # an idle keep-alive connection, such as an agent's between two requests)
        kept = socket.create_connection(addr)
        kept.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert response_head(kept).startswith(b"HTTP/1.1 200 ")
        waiting = []
        for _ in range(12):
            s = socket.create_connection(addr)
            s.sendall(b"GET / HTTP/1.1\r\n")
            waiting.append(s)
            time.sleep(0.02)
        assert httpx.get(url, timeout=10).status_code == 200
        assert [closed(s, 0.5) for s in waiting[:4]] == [True] * 4
        assert not any(closed(s, 0.0) for s in waiting[-4:])
        assert not closed(kept, 0.0)
        for s in [*waiting, kept]:
            s.close()
        # headers too large, too many: 431
        big = socket.create_connection(addr)
        big.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * (64 * 1024))
        assert response_head(big).startswith(b"HTTP/1.1 431 ")
        many = {f"x-h{i}": "1" for i in range(101)}
        assert httpx.get(url, headers=many, timeout=10).status_code == 200  # no Gate here


def test_forwarded_headers_only_from_configured_proxies() -> None:
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with serving(_echo, Limits()) as addr:
        seen = httpx.get(f"http://{addr[0]}:{addr[1]}/", headers=forged, timeout=10).json()
    assert seen["client"] == "127.0.0.1" and seen["scheme"] == "http"
    with serving(_echo, Limits(), forwarded_allow_ips=["127.0.0.1"]) as addr:
        seen = httpx.get(f"http://{addr[0]}:{addr[1]}/", headers=forged, timeout=10).json()
    assert seen["client"] == "203.0.113.9" and seen["scheme"] == "https"  # the control


def test_hsts_only_under_tls() -> None:
    for tls in (False, True):
        with serving(SecurityHeaders(_echo, tls=tls), Limits()) as addr:
            r = httpx.get(f"http://{addr[0]}:{addr[1]}/", timeout=10)
        assert ("strict-transport-security" in r.headers) == tls


def test_warning_beyond_loopback_without_tls(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("pivotal.test")
    for host, tls in [("127.0.0.1", False), ("::1", False), ("localhost", False)]:
        warn_without_tls(log, "x", host, tls)
    warn_without_tls(log, "x", "0.0.0.0", True)
    assert caplog.records == []
    with caplog.at_level(logging.WARNING):
        warn_without_tls(log, "negotiation x", "0.0.0.0", False)
        warn_without_tls(log, "negotiation x", "192.0.2.7", False)
    assert len(caplog.records) == 2
    assert all(
        "without TLS" in r.getMessage() and "\n" not in r.getMessage() for r in caplog.records
    )


# ---------------------------------------------------------------------------------- the coordinator
def start_logged(d: Deployment, *extra: str) -> str:
    """Start the coordinator with its access log on (``Deployment.start_coordinator`` turns it
    off); return its URL."""
    args = [*CLI, "serve", "coordinator", "--db", str(d.db), "--config", str(d.config)]
    args += ["--tokens-dir", str(d.root / "tokens"), "--host", "127.0.0.1", "--port", "0"]
    log = (d.root / "coordinator.log").open("a")
    proc = subprocess.Popen([*args, *extra], stdout=subprocess.PIPE, stderr=log, text=True)
    d.processes.append(proc)
    d.coordinator = proc
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("listening on "):
            d.url = line.split()[-1]
            break
    wait_until(lambda: httpx.get(f"{d.url}/health").status_code == 200, 30)
    return d.url


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = deploy(tmp_path_factory.mktemp("strangers"), truck_example())
    start_logged(d, "--forwarded-allow-ips", "192.0.2.1")
    yield d
    d.stop()


def logged_client(d: Deployment, probe: str) -> str:
    """The access log's line for a request to ``/health?probe=PROBE``."""
    forged = {"X-Forwarded-For": "203.0.113.9"}
    assert httpx.get(f"{d.url}/health?probe={probe}", headers=forged).status_code == 200
    wait_until(lambda: f"probe={probe}" in d.log_text(), 10)
    return next(x for x in d.log_text().splitlines() if f"probe={probe}" in x)


def test_page_is_small_after_the_first_load(served: Deployment) -> None:
    from plotly.offline import get_plotlyjs

    url = served.url
    with httpx.Client(timeout=60) as browser:
        first = browser.get(f"{url}/")
        assert first.status_code == 200 and len(first.content) < 200_000
        again = browser.get(f"{url}/")
        assert len(again.content) < 200_000
        assert (
            browser.get(f"{url}/", headers={"If-None-Match": first.headers["etag"]}).status_code
            == 304
        )
        src = re.findall(r'<script src="([^"]+)"></script>', first.text)
        assert len(src) == 1 and src[0].startswith("/assets/plotly-")
        raw = browser.get(f"{url}{src[0]}", headers={"Accept-Encoding": "gzip"})
    plotly = get_plotlyjs().encode()
    assert raw.headers["content-encoding"] == "gzip" and raw.content == plotly
    assert raw.num_bytes_downloaded < len(plotly) / 2
    assert (
        "immutable" in raw.headers["cache-control"]
        and "max-age=31536000" in raw.headers["cache-control"]
    )
    assert hashlib.sha256(plotly).hexdigest()[:16] in src[0]  # the name changes with the content
    assert httpx.get(f"{url}/assets/plotly-0000000000000000.js").status_code == 404


def test_security_headers_and_no_redirect(served: Deployment) -> None:
    url = served.url
    for path in ("/", "/health", "/status", "/v1/terms", "/openapi.json", "/nowhere"):
        r = httpx.get(f"{url}{path}", timeout=60)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "http" not in csp, path
        assert "strict-transport-security" not in r.headers  # no TLS here
    page_csp = httpx.get(f"{url}/").headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in page_csp and "unsafe-eval" not in page_csp
    for path in ("/docs/", "/docs", "/redoc", "/v1/terms/", "/health/"):
        r = httpx.get(f"{url}{path}", headers={"Host": "evil.example"}, follow_redirects=False)
        assert r.status_code == 404 and "location" not in r.headers, path
    assert "/v1/parties/{party}/answers" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_forwarded_for_is_trusted_only_from_the_proxies_given(
    served: Deployment, tmp_path: Path
) -> None:
    # the coordinator trusts the proxy 192.0.2.1 only (the test's own client is 127.0.0.1; the
    # control, a trusted client, is test_forwarded_headers_only_from_configured_proxies)
    line = logged_client(served, "default")
    assert "127.0.0.1:" in line and "203.0.113.9" not in line
    bad = subprocess.run(
        [*CLI, "serve", "coordinator", "--db", str(tmp_path / "x.sqlite"), "--forwarded-allow-ips",
         "proxy.example"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "not an IP address" in bad.stderr
    assert not (tmp_path / "x.sqlite").exists()


def test_token_before_body_and_body_limit(served: Deployment) -> None:
    path = "/v1/parties/vendor/answers"
    for auth in (b"", b"Authorization: Bearer nope\r\n", b"Authorization: Basic eDp5\r\n"):
        with socket.create_connection(address(served.url)) as s:
            s.sendall(
                b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth
                + b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
            )  # fmt: skip
            head = response_head(s)  # answered with no byte of the body sent
            assert head.startswith(b"HTTP/1.1 401 "), head
            assert b"www-authenticate: bearer" in head.lower()
            assert closed(s)  # and the body will never be read
    token = served.headers("vendor")["Authorization"].encode()
    with socket.create_connection(address(served.url)) as s:
        s.sendall(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + token
            + b"\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
        )  # fmt: skip
        assert response_head(s).startswith(b"HTTP/1.1 413 ")
    streamed = httpx.post(
        f"{served.url}{path}",
        headers=served.headers("vendor"),
        content=iter([b"[" + b"0," * 5_000_000 + b"0]"]),
        timeout=60,
    )
    assert streamed.status_code == 413
    # too many header lines (each small): 431 before any route
    many = {f"x-h{i}": "1" for i in range(150)}
    assert httpx.get(f"{served.url}/health", headers=many).status_code == 431


def test_the_body_limit_leaves_room_for_the_largest_legitimate_answer() -> None:
    """8 MiB at least; beyond, twice every run's plan from the party with the most entries at
    32 bytes a number (K1000 F20 T8 V5: the retailer holds 5 x 32,000 entries, in 6 runs)."""
    from types import SimpleNamespace

    from pivotal.negotiation.session import SessionTerms
    from pivotal.service.server import body_limit

    def limit(vendors: int, block: int) -> int:
        terms = SessionTerms(
            hub="retailer",
            vendors=tuple(f"v{i}" for i in range(vendors)),
            block_sizes=(block,) * vendors,
        )
        return body_limit(SimpleNamespace(session=SimpleNamespace(terms=terms)))  # type: ignore[arg-type]

    assert limit(1, 6) == 8 * 1024 * 1024  # the truck example
    big = limit(5, 32_000)
    assert big == 2 * 32 * (5 * 32_000) * 6 + 65536  # about 59 MiB
    answer = json.dumps({"plan": [1234.5678901234] * (5 * 32_000), "more": {}})
    assert 6 * len(answer) < big  # six runs' plans of 14-digit numbers fit
