"""Open calls over HTTP: real server processes, one process per participant, sealing, bad input,
SIGKILL during a submission burst, and schemathesis against the call's OpenAPI schema."""

from __future__ import annotations

import json
import random
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from _call import CLI, EXAMPLES, CallServer, deadline_in, env, seed_bids
from pivotal.calls.receipts import check_signature
from pivotal.markets.clarke import vcg_market
from pivotal.markets.market import market_from_document
from pivotal.results import sha256_of


@pytest.fixture
def make_call(tmp_path: Path) -> Iterator[Any]:
    servers: list[CallServer] = []

    def make(terms: dict[str, Any], name: str = "call") -> CallServer:
        root = tmp_path / name
        root.mkdir()
        server = CallServer(root, terms)
        servers.append(server)
        server.start()
        return server

    yield make
    for s in servers:
        s.stop()


def auction_terms(seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "name": "seed-auction",
        "kind": "auction",
        "items": ["A", "B", "C"],
        "deadline": deadline_in(seconds),
        "approval": "automatic",
        "publish_reports": True,
        **extra,
    }


def market_terms(seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "name": "seed-market",
        "kind": "market",
        "good": "test equipment",
        "unit": "unit",
        "deadline": deadline_in(seconds),
        "approval": "automatic",
        "publish_reports": True,
        **extra,
    }


# ------------------------------------------------------------------ seed cases, one process each
def _submit_processes(call: CallServer, reports: dict[str, tuple[str, dict[str, Any]]]) -> None:
    procs = []
    for name, (role, body) in reports.items():
        path = call.root / f"{name}.report.json"
        path.write_text(json.dumps(body))
        args = [*CLI, "call", "submit", "--url", call.url, "--name", name, "--register", role]
        args += ["--token-file", str(call.root / f"{name}.token"), "--report", str(path)]
        args += ["--receipt", str(call.root / f"{name}.receipt.json")]
        procs.append(subprocess.Popen(args, env=env(), stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err


def _close_and_verify(call: CallServer, names: list[str]) -> dict[str, Any]:
    call.wait_for_deadline()
    record_path = call.root / "record.json"
    op = str(call.tokens / "operator.token")
    call.cli("call", "close", "--url", call.url, "--token-file", op, "-o", str(record_path))
    receipts = [a for n in names for a in ("--receipt", str(call.root / f"{n}.receipt.json"))]
    ok = call.cli("call", "verify", str(record_path), *receipts)
    assert "verified" in ok.stdout and "outcome recomputed" in ok.stdout
    record: dict[str, Any] = json.loads(record_path.read_text())
    tampered = json.loads(record_path.read_text())
    key = "transfers" if "transfers" in record["outcome"] else "payments"
    first = next(iter(tampered["outcome"][key]))
    tampered["outcome"][key][first] += 1.0
    bad = call.root / "tampered.json"
    bad.write_text(json.dumps(tampered))
    failed = call.cli("call", "verify", str(bad), check=False)
    assert failed.returncode == 1 and "tampered" in failed.stdout
    (call.root / "assembled.json").write_text(json.dumps(record["outcome"]["input"]))
    return record


def test_seed_auction_as_a_call(make_call: Any) -> None:
    # reference: the VCG tutorial's seed (3 items x 4 bidders): welfare 26, bidder 2 pays 9,
    # bidder 3 pays 5 (tests/test_seed_auction.py)
    call = make_call(auction_terms(20))
    names = ["1", "2", "3", "4"]
    with call.kept_open():
        _submit_processes(call, {n: ("bidder", seed_bids(n)) for n in names})
    record = _close_and_verify(call, names)
    outcome = record["outcome"]
    assert outcome["welfare"] == pytest.approx(26)
    assert outcome["payments"] == pytest.approx({"1": 0, "2": 9, "3": 5, "4": 0})
    run = call.cli("auction", "run", str(call.root / "assembled.json"), "--json")
    cli = json.loads(run.stdout)
    for key in ("allocation", "payments", "welfare", "revenue", "winning_bids"):
        assert outcome[key] == cli[key], key
    seed = json.loads(
        call.cli("auction", "run", str(EXAMPLES / "seed_vcg_3x4.json"), "--json").stdout
    )
    assert outcome["allocation"] == seed["allocation"] and outcome["payments"] == seed["payments"]


def test_seed_market_as_a_call(make_call: Any) -> None:
    # closed form of examples/market_seed.json: cost 2q + q^2/2, benefit 10q - q^2/2: q* = 4,
    # p* = 6; VCG pays the producer c(4) + W* = 16 + 16 = 32 and charges the buyer 32 - 16 = 16
    seed = json.loads((EXAMPLES / "market_seed.json").read_text())
    producer, buyer = seed["producers"][0], seed["buyers"][0]
    reports = {
        "maker": ("producer", {"cost": producer["cost"], "capacity": producer["capacity"]}),
        "government": ("buyer", {"benefit": buyer["benefit"], "capacity": buyer["capacity"]}),
    }
    call = make_call(market_terms(20))
    with call.kept_open():
        _submit_processes(call, reports)
    record = _close_and_verify(call, list(reports))
    outcome = record["outcome"]
    assert outcome["quantities"] == pytest.approx({"maker": 4, "government": 4})
    assert outcome["transfers"] == pytest.approx({"maker": 32, "government": -16})
    run = call.cli("market", "run", str(call.root / "assembled.json"), "--json", "--no-withholding")
    cli = json.loads(run.stdout)
    for key in ("price", "welfare", "quantities", "transfers", "uniform_price"):
        assert outcome[key] == cli[key], key
    file_run = json.loads(
        call.cli("market", "run", str(EXAMPLES / "market_seed.json"), "--json").stdout
    )
    assert outcome["transfers"] == pytest.approx(file_run["transfers"])
    with httpx.Client(base_url=call.url) as c:
        mine = c.get(
            "/v1/participants/maker/result",
            headers={"Authorization": "Bearer " + (call.root / "maker.token").read_text().strip()},
        ).json()
    assert mine["quantity"] == pytest.approx(4) and mine["transfer"] == pytest.approx(32)


# ------------------------------------------------------------------ sealing
SENTINELS = ("731.0371", "8642.1357", "53.97531")


def test_sealing_every_endpoint_every_role(make_call: Any) -> None:
    invited = [{"name": n, "role": "bidder"} for n in ("p1", "p2", "p3")]
    call = make_call(auction_terms(20, invited=invited, publish_reports=False))
    reports = {
        "p1": {"bids": [{"bundle": ["A"], "value": float(SENTINELS[0])}]},
        "p2": {
            "bids": [
                {"bundle": ["A", "B"], "value": float(SENTINELS[1])},
                {"bundle": ["C"], "value": float(SENTINELS[2])},
            ]
        },
    }
    hashes = {}
    with call.kept_open(), call.client() as c:
        for name, body in reports.items():
            r = c.put(f"/v1/participants/{name}/report", json=body, headers=call.headers(name))
            assert r.status_code == 200, r.text
            hashes[name] = r.json()["report_sha256"]
        schema = c.get("/openapi.json").json()
        roles: dict[str, dict[str, str]] = {
            "public": {},
            "stranger": {"Authorization": "Bearer not-a-token"},
            "p1": call.headers("p1"),
            "p2": call.headers("p2"),
            "p3": call.headers("p3"),
            "operator": call.headers("operator"),
        }
        requests: list[tuple[str, str, Any]] = [
            ("GET", p, None)
            for p in (
                "/",
                "/participant",
                "/operator",
                "/assets/call.js",
                "/assets/call.css",
                "/openapi.json",
                "/docs",
                "/health",
            )
        ]
        for path, ops in schema["paths"].items():
            for method in ops:
                for name in ("p1", "p2", "p3"):
                    concrete = path.replace("{name}", name)
                    body: Any = None
                    if method == "put":
                        body = {"bids": []}  # refused: a report is never overwritten here
                    elif path == "/v1/register":
                        body = {"name": f"new-{random.randrange(10**9)}", "role": "bidder"}
                    elif path.endswith("/deadline"):
                        body = {"deadline": deadline_in(3600)}
                    elif method == "delete" and name != "p3":
                        continue  # withdraw only p3, who has no report
                    requests.append((method.upper(), concrete, body))
        later = c.get("/v1/call").json()["deadline"].replace("Z", "+00:00")
        extended = (datetime.fromisoformat(later) + timedelta(seconds=1)).isoformat()
        requests = [
            (m, p, {"deadline": extended} if b and "deadline" in b else b) for m, p, b in requests
        ]
        seen: list[str] = []
        for role, headers in roles.items():
            for method, path, body in requests:
                if method == "DELETE" and role == "p3":
                    continue
                r = c.request(method, path, headers=headers, json=body)
                assert r.status_code < 500, (role, method, path, r.text)
                text = r.text + json.dumps(dict(r.headers))
                seen.append(text)
                for s in SENTINELS:
                    assert s not in text, (role, method, path)
                for owner, h in hashes.items():
                    if role != owner:
                        assert h not in text, (role, method, path, owner)
        assert len(seen) > 100
    log = (call.root / "server.log").read_text()
    assert not any(s in log for s in SENTINELS)
    assert not any(s in (call.root / "server.log").read_text() for s in hashes.values())
    # the search can fail: after the close the operator's outcome holds the sentinel values
    call.wait_for_deadline()
    with call.client() as c:
        ops = call.headers("operator")
        assert c.post("/v1/operator/close", headers=ops).status_code == 200
        outcome = c.get("/v1/operator/outcome", headers=ops).text
        assert SENTINELS[1] in outcome
        events = c.get("/v1/operator/events", headers=ops).text
        assert hashes["p1"] in events
        record = c.post("/v1/operator/publish", headers=ops).json()
    # the terms do not publish the reports: the record has the outcome (whose VCG payment is
    # the losing bid, by design) but not the reports themselves
    assert "input" not in record["outcome"] and "comparison" not in record["outcome"]
    assert SENTINELS[2] not in json.dumps(record)
    assert {r["sha256"] for r in record["reports"]} == set(hashes.values())


# ------------------------------------------------------------------ bad input
def test_status_codes(make_call: Any) -> None:
    call = make_call(
        market_terms(
            20, invited=[{"name": "p1", "role": "producer"}, {"name": "b1", "role": "buyer"}]
        )
    )
    good = {"cost": {"kind": "linear", "a": 3}, "capacity": 5}
    with call.kept_open(), call.client() as c:
        url = "/v1/participants/p1/report"
        assert c.put(url, json=good).status_code == 401
        r = c.put(url, json=good, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.put(url, json=good, headers=call.headers("b1")).status_code == 403
        assert c.put(url, json=good, headers=call.headers("operator")).status_code == 403
        assert c.post("/v1/operator/close", headers=call.headers("p1")).status_code == 403
        big = {"cost": {"kind": "piecewise_linear", "points": [[0, 0]] + [[1, 1]] * 200_000}}
        assert c.put(url, json=big, headers=call.headers("p1")).status_code == 413
        cases = [
            (
                {"cost": {"kind": "piecewise_linear", "points": [[0, 0], [1, 5], [2, 6]]}},
                "cost.points[2]",
            ),
            ({"cost": {"kind": "linear", "a": 1}, "capacity": -2}, "cost.capacity"),
            ({"cost": {"kind": "cubic", "a": 1}, "capacity": 2}, "cost"),
            ({"benefit": {"kind": "linear", "a": 1}, "capacity": 2}, "benefit"),
            ({"cost": {"kind": "linear", "a": 1e300}, "capacity": 2}, "cost.a"),
        ]
        for body, field in cases:
            r = c.put(url, json=body, headers=call.headers("p1"))
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == ["body", field], r.text
        r = c.put(url, content=b"{not json", headers=call.headers("p1"))
        assert r.status_code == 422
        r = c.put(url, content=b'{"cost": NaN}', headers=call.headers("p1"))
        assert r.status_code == 422
        r = c.post("/v1/register", json={"name": "Bad/Name", "role": "producer"})
        assert r.status_code == 422
        r = c.post("/v1/register", json={"name": "operator", "role": "producer"})
        assert r.status_code == 422
        assert c.post("/v1/operator/close", headers=call.headers("operator")).status_code == 409
        assert c.get("/v1/record").status_code == 409
        assert c.put(url, json=good, headers=call.headers("p1")).status_code == 200
    call.wait_for_deadline()
    with call.client() as c:
        r = c.put(url, json=good, headers=call.headers("p1"))
        assert r.status_code == 409 and "server_time" in r.json()
        assert r.json()["server_time"] >= r.json()["detail"].split("deadline ")[1][:20]
        events = c.get("/v1/operator/events", headers=call.headers("operator")).json()
    refused = [e for e in events if e["kind"] == "refused"]
    assert {e["status"] for e in refused} >= {403, 409, 413, 422}


# ------------------------------------------------------------------ SIGKILL during a burst
def _curve(rng: random.Random, producer: bool) -> dict[str, Any]:
    q, v, slope, pts = 0.0, 0.0, rng.uniform(1, 5), [[0.0, 0.0]]
    for _ in range(5):
        dq = round(rng.uniform(0.5, 3), 3)
        q, v = q + dq, v + slope * dq
        pts.append([round(q, 3), round(v, 6)])
        slope = slope + rng.uniform(0.1, 2) if producer else max(slope - rng.uniform(0.1, 1), 0.0)
    return {"cost" if producer else "benefit": {"kind": "piecewise_linear", "points": pts}}


@pytest.mark.slow
def test_sigkill_during_burst_loses_no_receipted_submission(make_call: Any) -> None:
    n = 300
    names = [f"p{i:03d}" for i in range(n)]
    invited = [{"name": x, "role": "producer" if i % 2 else "buyer"} for i, x in enumerate(names)]
    call = make_call(market_terms(40, invited=invited))
    tokens = {x: call.token(x) for x in names}
    rng = random.Random(7)
    # each participant submits, then most revise once: the last accepted body is what counts
    plans = {x: [_curve(rng, i % 2 == 1) for _ in range(1 + i % 3)] for i, x in enumerate(names)}
    receipts: dict[str, list[dict[str, Any]]] = {x: [] for x in names}
    final: dict[str, dict[str, Any]] = {}
    url_box = [call.url]
    lock = threading.Lock()

    local = threading.local()

    def client() -> httpx.Client:
        # one client per thread, renewed when the server comes back on another port (a new
        # client per request would spend the burst building TLS contexts)
        c: httpx.Client | None = getattr(local, "client", None)
        if c is None or str(c.base_url).rstrip("/") != url_box[0]:
            c = httpx.Client(base_url=url_box[0], timeout=10, verify=False)
            local.client = c
        return c

    def participant(name: str) -> None:
        for body in plans[name]:
            while True:
                try:
                    r = client().put(
                        f"/v1/participants/{name}/report",
                        json=body,
                        headers={"Authorization": f"Bearer {tokens[name]}"},
                    )
                except httpx.HTTPError:
                    time.sleep(0.1)
                    continue
                if r.status_code == 200:
                    with lock:
                        receipts[name].append(r.json())
                        final[name] = body
                    break
                assert r.status_code == 503, r.text  # over the connection cap: retry
                time.sleep(0.1)

    def extend_while_busy(futures: list[Any]) -> None:
        # on a loaded machine the burst may need longer than planned: the operator extends the
        # deadline before it passes (never needed when the burst is quick)
        while not all(f.done() for f in futures):
            time.sleep(0.5)
            try:
                with httpx.Client(base_url=url_box[0], timeout=10) as c:
                    status = c.get("/v1/call").json()
                    if status["seconds_left"] < 10:
                        later = datetime.fromisoformat(status["deadline"].replace("Z", "+00:00"))
                        new = (later + timedelta(seconds=15)).isoformat()
                        c.post(
                            "/v1/operator/deadline",
                            json={"deadline": new},
                            headers=call.headers("operator"),
                        )
            except httpx.HTTPError:
                continue

    kills = 0
    with ThreadPoolExecutor(24) as pool:
        futures = [pool.submit(participant, x) for x in names]
        watchdog = threading.Thread(target=extend_while_busy, args=(futures,))
        watchdog.start()
        for _ in range(3):
            time.sleep(0.25)
            if all(f.done() for f in futures):
                break
            call.kill()
            kills += 1
            url_box[0] = call.start()
        for f in futures:
            f.result()
        watchdog.join()
    assert kills >= 2  # during the burst
    issued = [r for rs in receipts.values() for r in rs]
    assert len(issued) >= sum(len(p) for p in plans.values())
    call.wait_for_deadline()
    with call.client() as c:
        ops = call.headers("operator")
        assert c.post("/v1/operator/close", headers=ops).status_code == 200
        events = c.get("/v1/operator/events", headers=ops, params={"limit": 10000}).json()
        record = c.post("/v1/operator/publish", headers=ops).json()
    stored = {e["seq"]: e["receipt"] for e in events if "receipt" in e}
    for r in issued:
        assert stored.get(r["seq"]) == r  # every receipt issued is in the store, unchanged
        assert check_signature(r, record["public_key"])
    listed = {r["participant"]: r for r in record["reports"]}
    assert set(listed) == set(names)  # no participant lost, none twice
    for name in names:
        last = max(receipts[name], key=lambda r: r["seq"])
        assert listed[name]["seq"] == last["seq"]
        assert listed[name]["sha256"] == last["report_sha256"]
    # the outcome equals an undisturbed run on the last accepted reports
    doc = {
        "producers": [{"name": x, **final[x]} for x in sorted(names) if "cost" in final[x]],
        "buyers": [{"name": x, **final[x]} for x in sorted(names) if "benefit" in final[x]],
    }
    undisturbed = vcg_market(market_from_document(doc))
    assert record["outcome"]["transfers"] == pytest.approx(dict(undisturbed.transfers))
    assert record["outcome"]["quantities"] == pytest.approx(dict(undisturbed.quantities))
    assert sha256_of(record["outcome"]["input"]) == record["outcome"]["provenance"]["input_sha256"]


# ------------------------------------------------------------------ TLS
@pytest.mark.slow
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    (tmp_path / "call").mkdir()
    call = CallServer(
        tmp_path / "call",
        auction_terms(600),
        extra=("--tls-cert", str(cert), "--tls-key", str(key)),
    )
    try:
        url = call.start()
        assert url.startswith("https://")
        with pytest.raises(httpx.TransportError):  # a client that does not trust the certificate
            httpx.get(f"{url}/health")
        r = httpx.get(f"{url}/v1/call", verify=ssl.create_default_context(cafile=str(cert)))
        assert r.status_code == 200 and "max-age" in r.headers["strict-transport-security"]
        body = call.root / "bids.json"
        body.write_text(json.dumps(seed_bids("1")))
        done = call.cli(
            "call", "submit", "--url", url, "--name", "b1", "--register", "bidder",
            "--token-file", str(call.root / "b1.token"), "--report", str(body),
            "--ca-cert", str(cert),
        )  # fmt: skip
        assert json.loads(done.stdout)["action"] == "submit"
    finally:
        call.stop()


# ------------------------------------------------------------------ schemathesis
def test_schemathesis_finds_no_5xx(make_call: Any) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    call = make_call(auction_terms(3600, invited=[{"name": "p1", "role": "bidder"}]))
    schema = schemathesis.openapi.from_url(f"{call.url}/openapi.json")
    failures: list[str] = []
    codes: list[int] = []
    roles = [{}, call.headers("p1"), call.headers("operator")]

    def fuzz(operation: Any, headers: dict[str, str]) -> None:
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            params = case.path_parameters
            if isinstance(params, dict) and "name" in params and random.random() < 0.5:
                params["name"] = "p1"
            response = case.call(headers=headers, timeout=30)
            codes.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        check()

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    for headers in roles:
        for operation in operations:
            fuzz(operation, headers)
    assert not failures, failures
    assert {200, 401, 403, 422} <= set(codes)
