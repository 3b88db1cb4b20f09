"""The coordinator service with real processes on 127.0.0.1: end to end, faults, security, privacy.

References: the in-process negotiation (same session code, same agents: results must agree to
1e-9) and the centralized LP (transfers to 1e-3 relative, as in the negotiation tests).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from _service import CLI, Deployment, deploy, follow_until, wait_until
from pivotal.negotiation.scenario import Scenario, generate_scenario, truck_example
from pivotal.negotiation.session import WARM_PLAIN_ROUNDS
from pivotal.negotiation.simulation import Simulation, simulate


def three_vendors() -> Scenario:
    return generate_scenario(4, 3, 3, 2, 3, np.random.default_rng(7))


@pytest.fixture
def deployments(tmp_path: Path) -> Iterator[list[Deployment]]:
    made: list[Deployment] = []
    yield made
    for d in made:
        d.stop()


def _flat(plan: dict[str, Any]) -> np.ndarray:
    return np.array(
        [x for v in plan.values() for p in v.values() for s in p.values() for x in s], dtype=float
    )


def assert_same(outcome: dict[str, Any], reference: Simulation, tol: float) -> None:
    ref = reference.to_dict()
    np.testing.assert_allclose(_flat(outcome["plan"]), _flat(ref["plan"]), rtol=0, atol=tol)
    for party, money in ref["transfers"].items():
        assert abs(outcome["transfers"][party] - money) <= tol * max(1.0, abs(money)), party
    for party, gain in ref["gains"].items():
        assert abs(outcome["gains"][party] - gain) <= tol * max(1.0, abs(gain)), party


def run_all(d: Deployment, timeout: float = 240) -> dict[str, Any]:
    agents = [d.start_agent(p) for p in d.parties]
    for a in agents:
        assert a.wait(timeout=timeout) == 0, d.log_text()
    return d.outcome()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "transport"),
    [(truck_example, "ws"), (three_vendors, "ws"), (truck_example, "http")],
    ids=["truck-ws", "3-vendors-ws", "truck-http"],
)
def test_end_to_end_matches_in_process(
    tmp_path: Path, deployments: list[Deployment], make: Any, transport: str
) -> None:
    scenario = make()
    d = deploy(tmp_path, scenario)
    d.agent_args += ("--transport", transport)
    deployments.append(d)
    d.start_coordinator()
    outcome = run_all(d)
    reference = simulate(scenario, check=True)
    assert_same(outcome, reference, 1e-9)
    assert outcome["converged"] and d.status()["status"] == "done"
    for p in d.parties:  # each party's own result states its certified bound
        mine = httpx.get(f"{d.url}/v1/parties/{p}/result", headers=d.headers(p)).json()
        assert mine["bound"] == outcome["gain_bounds"][p], p
    assert reference.centralized is not None
    for party, money in reference.centralized.transfers.items():
        assert abs(outcome["transfers"][party] - money) <= max(1.0, 1e-3 * abs(money))
    # the outcome file the coordinator writes at the end is the same document
    assert json.loads((tmp_path / "outcome.json").read_text())["transfers"] == outcome["transfers"]
    # every agent printed its own share
    for party in d.parties:
        mine = json.loads((tmp_path / f"agent-{party}.log").read_text())
        assert mine["transfer"] == outcome["transfers"][party]


@pytest.mark.slow
def test_tls(tmp_path: Path, deployments: list[Deployment]) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    scenario = truck_example()
    d = deploy(tmp_path / "run", scenario)
    deployments.append(d)
    d.verify = ssl.create_default_context(cafile=str(cert))
    d.agent_args = ("--ca-cert", str(cert))
    url = d.start_coordinator(0, "--tls-cert", str(cert), "--tls-key", str(key))
    assert url.startswith("https://")
    with pytest.raises(httpx.TransportError):  # a client that does not trust the certificate
        httpx.get(f"{url}/health")
    assert_same(run_all(d), simulate(scenario, check=False), 1e-9)


@pytest.mark.slow
def test_coordinator_sigkill_and_restart_resumes_exactly(
    tmp_path: Path, deployments: list[Deployment]
) -> None:
    scenario = three_vendors()
    d = deploy(tmp_path, scenario)
    deployments.append(d)
    url = d.start_coordinator()
    port = int(url.rsplit(":", 1)[1])
    agents = [d.start_agent(p) for p in d.parties]
    kills = 0
    for phase, at_round in (("joint", 8), ("without:vendor2", 3)):
        follow_until(d, phase, at_round)
        assert d.coordinator is not None
        d.coordinator.send_signal(signal.SIGKILL)
        d.coordinator.wait()
        kills += 1
        time.sleep(0.5)  # agents see a dead coordinator and retry
        d.start_coordinator(port)
    for a in agents:
        assert a.wait(timeout=240) == 0, d.log_text()
    assert kills == 2
    assert "answers replayed" in d.log_text()
    assert_same(d.outcome(), simulate(scenario, check=False), 1e-9)


@pytest.mark.slow
def test_agent_sigkill_and_restart_picks_up_the_current_round(
    tmp_path: Path, deployments: list[Deployment]
) -> None:
    scenario = three_vendors()
    d = deploy(tmp_path, scenario)
    deployments.append(d)
    d.start_coordinator()
    agents = {p: d.start_agent(p) for p in d.parties}
    follow_until(d, "joint", 5)
    agents["vendor1"].send_signal(signal.SIGKILL)
    agents["vendor1"].wait()
    time.sleep(0.3)
    agents["vendor1"] = d.start_agent("vendor1")
    for a in agents.values():
        assert a.wait(timeout=240) == 0, d.log_text()
    # the restarted agent answers as a running one would (tests/test_agent_restart.py: to 1e-9)
    reference = simulate(scenario, check=True)
    assert reference.centralized is not None
    outcome = d.outcome()
    for party, money in reference.centralized.transfers.items():
        assert abs(outcome["transfers"][party] - money) <= max(1.0, 1e-3 * abs(money))
    assert abs(outcome["total_cost"] - reference.centralized.total_cost) <= 1e-4 * abs(
        reference.centralized.total_cost
    )


@pytest.mark.slow
def test_silent_agent_pauses_then_duplicates_are_harmless(
    tmp_path: Path, deployments: list[Deployment]
) -> None:
    scenario = truck_example()
    d = deploy(tmp_path, scenario, round_deadline_seconds=0.5)
    deployments.append(d)
    d.start_coordinator()
    retailer = d.start_agent("retailer")
    # under load the retailer's agent can be slower than the round deadline: wait until its
    # round-0 answer is in and only the silent vendor is awaited
    wait_until(
        lambda: (
            (s := d.status())["status"] == "waiting"
            and s["phase"] == "joint"
            and s["waiting_for"] == ["vendor"]
        ),
        60,
        "the waiting status in the joint phase, awaiting only the vendor",
    )
    status = d.status()
    assert status["waiting_for"] == ["vendor"] and status["phase"] == "joint"
    assert retailer.poll() is None  # the retailer waits, it does not fail
    # the retailer's agent already answered round 0: another post for that round is a harmless
    # duplicate (the first answer stands), even with a different plan
    hub_task = httpx.get(f"{d.url}/v1/parties/retailer/task", headers=d.headers("retailer"))
    assert hub_task.json()["kind"] == "wait"
    dup = {"schema_version": 1, "phase": "joint", "round": 0, "plan": [123.0, 456.0]}
    again = httpx.post(
        f"{d.url}/v1/parties/retailer/answers", headers=d.headers("retailer"), json=dup
    )
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    # the vendor answers round 0 by hand, twice: the second post changes nothing
    task = httpx.get(f"{d.url}/v1/parties/vendor/task", headers=d.headers("vendor")).json()
    from pivotal.negotiation.deployment import load_config, load_private

    party = load_private(d.private("vendor"), load_config(d.config))
    plan = party.best_response(np.array(task["z"]), np.array(task["prices"]), task["rho"])
    body = {"schema_version": 1, "phase": "joint", "round": 0, "plan": plan.tolist()}
    first = httpx.post(f"{d.url}/v1/parties/vendor/answers", headers=d.headers("vendor"), json=body)
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    wait_until(lambda: d.status()["round"] >= 1 or d.status()["phase"] != "joint", 30, "round 1")
    again = httpx.post(f"{d.url}/v1/parties/vendor/answers", headers=d.headers("vendor"), json=body)
    assert again.status_code == 409  # that round is over; nothing changes
    stored = stored_plans(d.db, "joint", 0)
    assert [p for p, _ in stored].count("vendor") == 1
    # the round's answers were committed with the round: the retailer's first answer stands
    retailer_plans = [plan for p, plan in stored if p == "retailer"]
    assert len(retailer_plans) == 1 and retailer_plans[0] != dup["plan"]
    vendor = d.start_agent("vendor")
    assert vendor.wait(timeout=120) == 0 and retailer.wait(timeout=120) == 0
    reference = simulate(scenario, check=True)
    assert reference.centralized is not None
    transfers = d.outcome()["transfers"]
    for p, money in reference.centralized.transfers.items():
        assert abs(transfers[p] - money) <= max(1.0, 1e-3 * abs(money))


def test_sigterm_shuts_down_gracefully(tmp_path: Path, deployments: list[Deployment]) -> None:
    d = deploy(tmp_path, truck_example())
    deployments.append(d)
    d.start_coordinator()
    # a long poll is in flight when the signal arrives
    polled: list[int] = []
    connected = threading.Event()

    def long_poll() -> None:
        url = f"{d.url}/v1/parties/vendor/task"
        with httpx.Client(headers=d.headers("vendor"), timeout=40) as client:
            client.get(url)  # the connection is open and served (under load this can take a while)
            connected.set()
            polled.append(client.get(url, params={"wait": 30}).status_code)  # same connection

    poller = threading.Thread(target=long_poll)
    poller.start()
    assert connected.wait(timeout=30)
    # and a WebSocket stream waits for the vendor's first task (the hub answers first)
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(
        f"{d.url.replace('http://', 'ws://')}/v1/parties/vendor/stream",
        additional_headers=d.headers("vendor"),
        open_timeout=10,
    ) as stream:
        time.sleep(1.0)  # the long poll's request, sent on a served connection, has arrived
        assert d.coordinator is not None
        start = time.monotonic()
        d.coordinator.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            stream.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001  # going away
    assert d.coordinator is not None
    # uvicorn re-raises the signal after its graceful shutdown (exit status -SIGTERM)
    assert d.coordinator.wait(timeout=15) in (0, -signal.SIGTERM)
    poller.join(timeout=15)
    assert time.monotonic() - start < 10
    assert polled == [200]  # released with a 'wait' task, not cut off
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{d.url}/health")
    assert "Application shutdown complete" in d.log_text()


# ---------------------------------------------------------------------------------- security
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = deploy(
        tmp_path_factory.mktemp("security"),
        generate_scenario(2, 2, 2, 1, 2, np.random.default_rng(3)),
    )
    d.start_coordinator()
    yield d
    d.stop()


def test_http_status_codes(served: Deployment) -> None:
    d = served
    url = f"{d.url}/v1/parties/retailer/task"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(url, headers=d.headers("vendor1")).status_code == 403
    assert httpx.get(url, headers=d.headers("operator")).status_code == 403
    assert httpx.get(f"{d.url}/v1/outcome", headers=d.headers("vendor1")).status_code == 403
    post = f"{d.url}/v1/parties/vendor1/answers"
    body = {"schema_version": 1, "phase": "joint", "round": 0, "plan": [0.0]}
    assert httpx.post(post, headers=d.headers("vendor2"), json=body).status_code == 403
    stale = httpx.post(post, headers=d.headers("vendor1"), json={**body, "round": 5})
    assert stale.status_code == 409 and "status_quo round 0" in stale.json()["detail"]
    big = httpx.post(post, headers=d.headers("vendor1"), content=b"[" + b"0," * 5_000_000 + b"0]")
    assert big.status_code == 413

    def chunks() -> Any:  # no Content-Length: the limit counts the bytes as they arrive
        yield b"["
        for _ in range(100):
            yield b"0," * 50_000
        yield b"0]"

    streamed = httpx.post(post, headers=d.headers("vendor1"), content=chunks())
    assert streamed.status_code == 413
    bad = httpx.post(post, headers=d.headers("vendor1"), json={**body, "round": "x"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "round"]
    version = httpx.post(post, headers=d.headers("vendor1"), json={**body, "schema_version": 2})
    assert version.status_code == 422 and "schema_version" in version.text
    hub = f"{d.url}/v1/parties/retailer/answers"
    short = {"schema_version": 1, "phase": "status_quo", "round": 0, "plan": [1.0]}
    wrong = httpx.post(hub, headers=d.headers("retailer"), json=short)
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "plan"]
    assert (
        httpx.get(f"{d.url}/v1/parties/retailer/result", headers=d.headers("retailer")).status_code
        == 409
    )
    spec = httpx.get(f"{d.url}/openapi.json").json()
    assert {"/v1/parties/{party}/task", "/v1/parties/{party}/answers", "/status"} <= set(
        spec["paths"]
    )


def test_stream_refuses_bad_credentials_and_answers_errors_in_band(served: Deployment) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    d = served
    ws_url = d.url.replace("http://", "ws://")
    stream = f"{ws_url}/v1/parties/retailer/stream"
    for headers, code in [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        (d.headers("vendor1"), 403),
        (d.headers("operator"), 403),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            connect(stream, additional_headers=headers, open_timeout=10)
        assert refused.value.response.status_code == code
    with connect(stream, additional_headers=d.headers("retailer"), open_timeout=10) as ws:
        raw = ws.recv(timeout=10)
        task = json.loads(raw)
        assert task["kind"] == "status_quo" and task["schema_version"] == 1
        # the stream's frames are the wire schema's messages: the same document as over HTTP
        from pivotal.service.wire import TaskMessage

        over_http = httpx.get(f"{d.url}/v1/parties/retailer/task", headers=d.headers("retailer"))
        assert TaskMessage.model_validate_json(raw) == TaskMessage.model_validate(over_http.json())
        assert task == over_http.json()
        answer = {"schema_version": 1, "phase": "status_quo", "round": 0}
        for body, code, where in [
            ({**answer, "round": 5, "plan": [0.0]}, 409, "status_quo round 0"),
            ({**answer, "round": "x", "plan": [0.0]}, 422, "round"),
            ({**answer, "schema_version": 2, "plan": [0.0]}, 422, "schema_version"),
            ({**answer, "plan": [1.0]}, 422, "plan"),
        ]:
            ws.send(json.dumps(body))
            error = json.loads(ws.recv(timeout=10))
            assert error["error"] == code and where in json.dumps(error["detail"])
            again = json.loads(ws.recv(timeout=10))  # the current task follows every error
            assert again == task
        ws.send("not json")
        assert json.loads(ws.recv(timeout=10))["error"] == 422
    # nothing was accepted: the hub still owes its status-quo answer
    assert d.status()["waiting_for"] == ["retailer"]
    # refusals are logged as refusals, not as errors
    assert "401" in d.log_text() and "ERROR" not in d.log_text()


def test_fuzz_every_endpoint_without_5xx(served: Deployment) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    failures: list[str] = []
    codes: list[int] = []
    tokens = {"none": {}, "retailer": served.headers("retailer")}

    def fuzz(operation: Any, headers: dict[str, str]) -> None:
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            if isinstance(case.query, dict) and isinstance(case.query.get("wait"), int | float):
                case.query["wait"] = min(case.query["wait"], 0.2)  # long polls: keep it quick
            if (
                headers
                and isinstance(case.path_parameters, dict)
                and "party" in case.path_parameters
            ):
                # a party's token is checked before its body: fuzz the retailer's own endpoints
                # (another party's path is a 403 whatever the body)
                case.path_parameters["party"] = "retailer"
            response = case.call(headers=headers, timeout=10)
            codes.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        check()

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7
    for headers in tokens.values():
        for operation in operations:
            fuzz(operation, headers)
    assert not failures, failures
    assert len(codes) >= 2 * len(operations) * 5 and {200, 401, 422} <= set(codes)
    assert served.coordinator is not None and served.coordinator.poll() is None


# ---------------------------------------------------------------------------------- privacy
SENTINELS = (2.718281828459, 0.0314159265358, 1.41421356237)


@pytest.mark.slow
def test_private_numbers_never_reach_the_coordinator(
    tmp_path: Path, deployments: list[Deployment]
) -> None:
    scenario = truck_example()
    d = deploy(tmp_path, scenario)
    deployments.append(d)
    # plant sentinels in each party's private data
    retailer = json.loads(d.private("retailer").read_text())
    retailer["retailer"]["sites"][0]["holding_cost"] = SENTINELS[1]
    retailer["retailer"]["shortage_penalty"] = 100 + SENTINELS[2]
    d.private("retailer").write_text(json.dumps(retailer))
    vendor = json.loads(d.private("vendor").read_text())
    vendor["vendor"]["factories"][0]["production_cost"] = SENTINELS[0]
    d.private("vendor").write_text(json.dumps(vendor))
    d.start_coordinator()
    outcome = run_all(d)
    responses = [
        json.dumps(outcome),
        httpx.get(f"{d.url}/status").text,
        *(
            httpx.get(f"{d.url}/v1/parties/{p}/result", headers=d.headers(p)).text
            for p in d.parties
        ),
        httpx.get(f"{d.url}/v1/terms", headers=d.headers("vendor")).text,
    ]
    d.stop()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("negotiation.sqlite*"))
    with sqlite3.connect(d.db) as db:
        dump = "\n".join(db.iterdump())
    logs = d.log_text() + (tmp_path / "coordinator.out").read_text()
    for sentinel in SENTINELS:  # plans are stored as float64: look for the binary form too
        for value in (sentinel, 100 + sentinel):
            assert np.array([value], "<f8").tobytes() not in stored
        for text in (repr(sentinel), f"{sentinel:.10g}", f"{100 + sentinel!r}"):
            assert text.encode() not in stored
            assert text not in dump
            assert text not in logs
            assert all(text not in r for r in responses)


def test_agent_refuses_bad_credentials_and_foreign_private_data(
    served: Deployment, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-a-token\n")
    base = [*CLI, "agent", "run", "--coordinator", served.url, "--retry-for", "5"]
    bad_token = subprocess.run(
        [*base, "--party", "vendor1", "--token-file", str(wrong), "--private",
         str(served.private("vendor1"))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad_token.returncode == 2 and "refused the credential" in bad_token.stderr
    token = tmp_path / "vendor1.token"
    token.write_text(served.token("vendor1"))
    foreign = subprocess.run(
        [*base, "--party", "vendor1", "--token-file", str(token), "--private",
         str(served.private("vendor2"))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (
        foreign.returncode == 2 and "private data of 'vendor2', not of 'vendor1'" in foreign.stderr
    )
    assert "Traceback" not in bad_token.stderr + foreign.stderr


def test_status_long_poll_waits_for_a_round(served: Deployment) -> None:
    start = time.monotonic()
    status = httpx.get(f"{served.url}/status", params={"since": 0, "wait": 1}, timeout=10)
    waited = time.monotonic() - start
    assert status.status_code == 200 and status.json()["round"] == 0
    assert 0.9 <= waited < 5  # no round completed (nobody answers here): it waited 1 s
    quick = httpx.get(f"{served.url}/status", params={"wait": 1}, timeout=10)
    assert quick.status_code == 200 and quick.elapsed.total_seconds() < 0.9


def test_restart_replays_and_a_tampered_database_is_refused(tmp_path: Path) -> None:
    from pivotal.errors import InputError
    from pivotal.negotiation.deployment import load_config, load_private
    from pivotal.negotiation.transfers import answer
    from pivotal.service.state import open_state
    from pivotal.service.wire import Answer

    d = deploy(tmp_path, truck_example())
    state, _ = open_state(d.db, d.config)
    config = load_config(d.config)
    parties = {p: load_private(d.private(p), config) for p in d.parties}
    while state.session.status == "running":
        for name in state.session.missing():
            task = state.session.task(name)
            value = answer(parties[name], task)
            body = {"costs": value} if isinstance(value, dict) else {"plan": value.tolist()}
            state.submit(
                name, Answer(schema_version=1, phase=str(task.phase), round=task.round, **body)
            )
    transfers = dict(state.outcome().transfers)
    state.store.close()
    again, tokens = open_state(d.db, None)  # a restart replays to the same outcome
    assert tokens == {} and dict(again.outcome().transfers) == transfers
    again.store.close()
    stored = stored_plans(d.db, "joint", 3)
    tampered = [(p, [x + 1.0 for x in plan] if p == "vendor" else plan) for p, plan in stored]
    rewrite_plans(d.db, "joint", 3, tampered)
    with pytest.raises(InputError, match="does not reproduce the stored rounds"):
        open_state(d.db, None)
    # an answer that no longer fits the plan at all
    rewrite_plans(
        d.db, "joint", 3, [(p, [1.0, 2.0, 3.0] if p == "vendor" else x) for p, x in stored]
    )
    with pytest.raises(InputError, match=r"another version of pivotal \(plan: expected \d+"):
        open_state(d.db, None)
    with sqlite3.connect(d.db) as db:  # lengths that do not add up
        db.execute("UPDATE answers SET sizes = '[1]' WHERE phase = 'joint' AND round = 3")
    with pytest.raises(InputError, match="answers row joint 3 is damaged"):
        open_state(d.db, None)


def stored_plans(db_path: Path, phase: str, round_: int) -> list[tuple[str, list[float]]]:
    """The plans stored for one step, read with SQL and numpy as the store documents them:
    ``parties`` and ``sizes`` are JSON lists, ``plans`` the plans' little-endian float64
    concatenated."""
    out: list[tuple[str, list[float]]] = []
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT parties, sizes, plans FROM answers WHERE phase = ? AND round = ? ORDER BY seq",
            (phase, round_),
        ).fetchall()
    for parties, sizes, blob in rows:
        flat, at = np.frombuffer(blob, "<f8"), 0
        for party, n in zip(json.loads(parties), json.loads(sizes), strict=True):
            out.append((party, flat[at : at + n].tolist()))
            at += n
    return out


def rewrite_plans(
    db_path: Path, phase: str, round_: int, plans: list[tuple[str, list[float]]]
) -> None:
    """Replace a step's stored plans (one row) by hand, as tampering would."""
    with sqlite3.connect(db_path) as db:
        changed = db.execute(
            "UPDATE answers SET parties = ?, sizes = ?, plans = ? WHERE phase = ? AND round = ?",
            (
                json.dumps([p for p, _ in plans]),
                json.dumps([len(x) for _, x in plans]),
                np.concatenate([np.array(x, "<f8") for _, x in plans]).tobytes(),
                phase,
                round_,
            ),
        ).rowcount
    assert changed == 1


def test_agent_says_to_use_http_when_websockets_are_refused(tmp_path: Path) -> None:
    """A proxy (here: a plain HTTP server) that answers the upgrade with 404: the agent stops at
    once and names the fallback, instead of retrying for --retry-for seconds."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pivotal.errors import ServiceError
    from pivotal.service.client import Agent, AgentOptions

    class NotFound(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        agent = Agent(url, "vendor", "token", tmp_path / "unused.json", AgentOptions(retry_for=60))
        start = time.monotonic()
        with pytest.raises(ServiceError, match="use --transport http"):
            agent._run_stream()
        assert time.monotonic() - start < 10
        agent.close()
    finally:
        server.shutdown()


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_one_message_carries_every_run_and_one_answer_answers_them(
    tmp_path: Path, warm: bool
) -> None:
    """Issue 17.2: the runs without each vendor go on together (warm-started, the default:
    after the joint run, which goes alone; cold: beside it); a party's task message carries one
    task per run that waits for it (a vendor has none in the run without it), and one answer
    message answers them all."""
    from pivotal.negotiation.deployment import load_config, load_private
    from pivotal.service.client import message_body
    from pivotal.service.state import open_state
    from pivotal.service.wire import Answer

    d = deploy(tmp_path, three_vendors(), warm_start_counterfactuals=warm)
    state, _ = open_state(tmp_path / "db.sqlite", d.config)
    config = load_config(d.config)
    assert state.session.terms.warm_start_counterfactuals is warm
    parties = {p: load_private(d.private(p), config) for p in d.parties}
    doc = state.task_document("retailer")
    assert doc["kind"] == "status_quo"
    state.submit("retailer", Answer.model_validate(message_body(parties["retailer"], doc, {})))
    runs = ["without:vendor1", "without:vendor2", "without:vendor3"]

    def one_round() -> dict[str, dict[str, Any]]:
        docs = {p: state.task_document(p) for p in d.parties}
        for p in d.parties:  # one message each way per party and round
            assert state.submit(p, Answer.model_validate(message_body(parties[p], docs[p], {})))
        return docs

    joint_rounds = 0
    while warm and state.task_document("retailer")["phase"] == "joint":
        docs = one_round()  # the joint run alone: one task per message
        assert all(docs[p]["more"] == [] for p in d.parties)
        joint_rounds += 1
    assert joint_rounds > 2 or not warm
    lead, rest = (runs[0], runs[1:]) if warm else ("joint", runs)
    for round_ in (0, 1) if not warm else (0,):
        docs = {p: state.task_document(p) for p in d.parties}
        assert (docs["retailer"]["phase"], docs["retailer"]["round"]) == (lead, round_)
        assert [(m["phase"], m["round"]) for m in docs["retailer"]["more"]] == [
            (r, round_) for r in rest
        ]
        vendor2 = [docs["vendor2"]["phase"]] + [m["phase"] for m in docs["vendor2"]["more"]]
        assert vendor2 == ([] if warm else ["joint"]) + [runs[0], runs[2]]
        one_round()
        # every run moved on by one round (a warm run may have ended at once)
        done = {f"without:{v}": r.rounds for v, r in state.session.counterfactuals.items()}
        assert state.status().runs | done == {r: round_ + 1 for r in runs} | (
            {} if warm else {"joint": round_ + 1}
        )
    state.store.close()


def test_a_database_from_before_warm_starts_resumes_cold(tmp_path: Path) -> None:
    """A database whose terms predate the ``warm_start_counterfactuals`` field holds the
    answers of cold counterfactual runs (the only schedule then): it replays cold. One whose
    terms predate ``warm_plain_rounds`` replays warm runs without a plain ADMM stage. New
    terms without the fields take the defaults."""
    from pivotal.negotiation.deployment import split_scenario
    from pivotal.service.state import CoordinatorState, open_state
    from pivotal.service.store import Store

    config, _ = split_scenario(three_vendors())
    fresh, _ = open_state(tmp_path / "new.sqlite", _write_json(tmp_path / "new.json", config))
    assert fresh.session.terms.warm_start_counterfactuals is True
    assert fresh.session.terms.warm_plain_rounds == WARM_PLAIN_ROUNDS
    fresh.store.close()
    fields = {"warm_start_counterfactuals": False, "warm_plain_rounds": 0}
    for field, before in fields.items():
        old = json.loads(json.dumps(config))
        del old["admm"][field]
        path = tmp_path / f"old-{field}.sqlite"
        store, _ = Store.create(path, old, list(fresh.config.parties))
        state = CoordinatorState(store)
        assert getattr(state.session.terms, field) == before, field
        (other,) = set(fields) - {field}
        assert getattr(state.session.terms, other) == config["admm"][other], field
        store.close()


def _write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_stream_documents_are_the_wire_schemas_messages(tmp_path: Path) -> None:
    """The WebSocket stream serializes plain documents (no model building on the hot path):
    over a whole negotiation, every task and ack document is exactly what the pydantic models
    (the published schema) would produce and accept."""
    from pivotal.negotiation.deployment import load_config, load_private
    from pivotal.service.client import answer_body
    from pivotal.service.state import open_state
    from pivotal.service.wire import Ack, Answer, TaskMessage, ack_document

    d = deploy(tmp_path, truck_example())
    state, _ = open_state(tmp_path / "db.sqlite", d.config)
    config = load_config(d.config)
    parties = {p: load_private(d.private(p), config) for p in d.parties}
    kinds: set[str] = set()
    for _ in range(10_000):
        if state.session.status != "running":
            break
        for name, party in parties.items():
            doc = state.task_document(name)
            assert TaskMessage.model_validate(doc).model_dump(mode="json") == doc
            kinds.add(doc["kind"])
            if doc["kind"] in ("wait", "done", "failed"):
                continue
            body = answer_body(party, doc)
            status = state.submit(name, Answer.model_validate(body))
            ack = ack_document(status, body["phase"], body["round"], state.task_document(name))
            assert Ack.model_validate(ack).model_dump(mode="json") == ack
            kinds.add(ack["next_task"]["kind"])
    assert state.session.status == "done"
    assert {"status_quo", "best_response", "costs", "wait"} <= kinds
    assert TaskMessage.model_validate(state.task_document("vendor")).kind == "done"
    state.store.close()


def test_a_stream_that_takes_no_frames_does_not_hold_up_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In process, with stand-in sockets: after the status-quo round the retailer's socket stops
    completing sends (as when its buffers are full). The broadcast that follows joint round 0
    waits ``grace_seconds`` for it, then goes on: the vendor gets its next task anyway, and the
    retailer gets its own once its socket drains."""
    import asyncio

    from pivotal.service.state import open_state
    from pivotal.service.stream import Streams

    class Socket:
        def __init__(self) -> None:
            self.frames: list[dict[str, Any]] = []
            self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            self.gate = asyncio.Event()
            self.gate.set()

        async def send_text(self, text: str) -> None:
            await self.gate.wait()
            self.frames.append(json.loads(text))

        async def receive(self) -> dict[str, Any]:
            return await self.inbox.get()

        async def close(self, code: int = 1000) -> None:
            self.frames.append({"closed": code})

        def post(self, task: dict[str, Any], plan: list[float]) -> None:
            body = {"schema_version": 1, "phase": task["phase"], "round": task["round"]}
            self.inbox.put_nowait(
                {"type": "websocket.receive", "text": json.dumps(body | {"plan": plan})}
            )

    async def frames(socket: Socket, n: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(10):
            while len(socket.frames) < n:
                await asyncio.sleep(0.005)
        return socket.frames

    d = deploy(tmp_path, truck_example())
    state, _ = open_state(d.db, d.config)
    grace = 0.3

    async def scenario() -> None:
        streams = Streams(state, grace_seconds=grace)
        retailer, vendor = Socket(), Socket()
        served = [
            asyncio.create_task(streams.serve(retailer, "retailer")),  # type: ignore[arg-type]
            asyncio.create_task(streams.serve(vendor, "vendor")),  # type: ignore[arg-type]
        ]
        (status_quo,) = await frames(retailer, 1)
        assert status_quo["kind"] == "status_quo"
        size = sum(state.config.terms().block_sizes)
        retailer.post(status_quo, [1.0] * size)
        joint = (await frames(retailer, 2))[1]["next_task"]
        (vendor_task,) = await frames(vendor, 1)
        assert joint["kind"] == vendor_task["kind"] == "best_response"
        retailer.gate.clear()  # from now on the retailer's socket takes nothing
        vendor.post(vendor_task, vendor_task["z"])
        started = time.monotonic()
        retailer.post(joint, joint["z"])  # completes joint round 0
        ack = (await frames(vendor, 2))[1]
        waited = time.monotonic() - started
        moved = ack["next_task"]
        assert ack["status"] == "accepted" and (moved["phase"], moved["round"]) != ("joint", 0)
        assert grace * 0.9 <= waited < 5  # held up once, for the grace period only
        assert len(retailer.frames) == 2
        retailer.gate.set()  # drained: the retailer's own task goes out
        assert (await frames(retailer, 3))[2]["next_task"]["phase"] == moved["phase"]
        for t in served:
            t.cancel()
        await asyncio.gather(*served, return_exceptions=True)

    with caplog.at_level("WARNING", logger="pivotal.service"):
        asyncio.run(scenario())
    state.store.close()
    assert "party retailer does not take its stream frames" in caplog.text


def test_a_long_poll_does_not_miss_a_change_right_after_its_check(tmp_path: Path) -> None:
    """The change lands after the waiter checked the state but before its wait started (here:
    the next callback in the event loop); the waiter must still be released at once, not at
    its timeout (the HTTP agents' long polls once lost whole seconds this way)."""
    import asyncio

    from pivotal.service.state import open_state

    state, _ = open_state(tmp_path / "db.sqlite", deploy(tmp_path, truck_example()).config)
    blocked = [True]

    async def scenario() -> float:
        started = time.monotonic()
        waiter = asyncio.create_task(state.wait_while(lambda: blocked[0], 3.0))
        await asyncio.sleep(0)  # the waiter checks, starts its wait, and yields
        blocked[0] = False
        state.wake_all()
        await waiter
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0
    state.store.close()


def test_a_database_of_another_store_format_is_refused(tmp_path: Path) -> None:
    from pivotal.errors import InputError
    from pivotal.service.state import open_state

    d = deploy(tmp_path, truck_example())
    state, _ = open_state(d.db, d.config)
    state.store.close()
    with sqlite3.connect(d.db) as db:  # as a database written before the format was recorded
        db.execute("DELETE FROM meta WHERE key = 'store_format'")
    with pytest.raises(InputError, match=r"another version of pivotal \(store format 1, this"):
        open_state(d.db, None)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(InputError, match="is not a pivotal negotiation database"):
        open_state(other, None)
    with sqlite3.connect(other) as db:  # and it was not written to
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["t"]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)


@pytest.mark.parametrize("value", ["5", True, -1, 10**7, 2.5, None])
def test_terms_with_a_bad_warm_plain_rounds_are_refused(value: object) -> None:
    # a JSON integer from 0 to MAX_WARM_PLAIN_ROUNDS, nothing coerced (a string, a boolean)
    from pivotal.errors import InputError
    from pivotal.negotiation.deployment import config_from_document, split_scenario

    config, _ = split_scenario(three_vendors())
    config["admm"]["warm_plain_rounds"] = value
    with pytest.raises(InputError, match="admm.warm_plain_rounds"):
        config_from_document(config)
