"""The close of a call served over HTTP: it runs off the event loop (the server answers while it
computes, the phase shows "closing"), once (a close asked meanwhile gets the same answer), on
the engine given; a close that fails is logged, answered with its reason and can be retried.

The close is made slow deterministically: ``run_close`` is replaced by one that waits for an
event the test sets, so no assertion depends on time."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import pivotal.calls.call as call_module
import pivotal.calls.close as close_module
from _call import DEADLINE, CallServer, Clock, auction_call, deadline_in, seed_bids
from pivotal.calls import Call, CallCloseError, CallStateError
from pivotal.calls.verify import verify_record
from pivotal.engine import InProcessEngine
from pivotal.errors import SolverError
from pivotal.service.call_app import served_call_app

REAL_RUN_CLOSE = close_module.run_close


def closable_auction(tmp_path: Path) -> tuple[Call, dict[str, str]]:
    """Three bidders' XOR bids on A and B, stored; the deadline has passed.

    By hand: A to b2 (9) and B to b3 (3.5), welfare 12.5; without b2 the others make 9.5 (A to
    b3, B to b1): b2 pays 9.5 - 3.5 = 6; without b3, 11.5 (A to b2, B to b1): b3 pays 2.5."""
    call, tokens, clock = auction_call(tmp_path)
    for name, value in (("b1", 5.0), ("b2", 9.0), ("b3", 7.0)):
        body = {"bids": [{"bundle": ["A"], "value": value}, {"bundle": ["B"], "value": value / 2}]}
        call.submit(tokens[name], name, body)
    clock.now = DEADLINE + timedelta(seconds=1)
    return call, tokens


def assert_hand_outcome(outcome: dict[str, Any]) -> None:
    assert outcome["allocation"] == {"b2": ["A"], "b3": ["B"]}
    assert outcome["welfare"] == pytest.approx(12.5)
    assert outcome["payments"] == pytest.approx({"b1": 0.0, "b2": 6.0, "b3": 2.5})


class Gate:
    """A ``run_close`` that signals when it starts and waits for the test to release it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.engines: list[Any] = []
        self.only_first = False  # True: later runs go through at once

    def __call__(self, terms: Any, document: Any, *, engine: Any = None) -> dict[str, Any]:
        self.engines.append(engine)
        self.started.set()
        if (len(self.engines) == 1 or not self.only_first) and not self.release.wait(60):
            raise AssertionError("the test never released the close")
        return REAL_RUN_CLOSE(terms, document, engine=engine)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    g = Gate()
    monkeypatch.setattr(call_module, "run_close", g)
    try:
        yield g
    finally:
        g.release.set()  # never leave a worker thread waiting


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def until(ready: Callable[[], bool]) -> None:
    """Yield to the event loop until ``ready()`` (the close's thread has started)."""
    for _ in range(6000):
        if ready():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the close never started")


def test_the_server_answers_while_a_close_runs_and_the_outcome_is_computed_once(
    tmp_path: Path, gate: Gate
) -> None:
    # before: the close ran on the event loop: until it ended (minutes for a large auction)
    # the server answered nothing, not even /health
    call, tokens = closable_auction(tmp_path)
    engine = InProcessEngine()
    app = served_call_app(call, engine=engine)
    op = bearer(tokens["operator"])

    async def scenario() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://call") as c:
            first = asyncio.create_task(c.post("/v1/operator/close", headers=op))
            await until(gate.started.is_set)
            seen: dict[str, Any] = {
                "status": await c.get("/v1/call"),
                "health": await c.get("/health"),
                "page": await c.get("/"),
                "operator": await c.get("/v1/operator", headers=op),
                "events": await c.get("/v1/operator/events", headers=op),
                "outcome": await c.get("/v1/operator/outcome", headers=op),
                "publish": await c.post("/v1/operator/publish", headers=op),
                "late": await c.put(
                    "/v1/participants/b1/report",
                    json={"bids": [{"bundle": ["A", "B"], "value": 100.0}]},
                    headers=bearer(tokens["b1"]),
                ),
            }
            second = asyncio.create_task(c.post("/v1/operator/close", headers=op))
            seen["me"] = await c.get("/v1/participants/b2", headers=bearer(tokens["b2"]))
            seen["pending"] = (first.done(), second.done())
            gate.release.set()
            seen["first"], seen["second"] = await first, await second
            seen["after"] = await c.get("/v1/call")
            return seen

    seen = asyncio.run(scenario())
    assert seen["status"].status_code == 200 and seen["status"].json()["phase"] == "closing"
    assert seen["health"].status_code == 200 and seen["page"].status_code == 200
    assert seen["operator"].json()["phase"] == "closing"
    assert seen["me"].json()["phase"] == "closing"
    # while it computes: no outcome, no publication, no late report, and still sealed
    assert seen["outcome"].status_code == 409 and seen["publish"].status_code == 409
    assert seen["late"].status_code == 409, seen["late"].text
    assert "sha256" not in seen["events"].text
    assert seen["pending"] == (False, False)
    # the close asked meanwhile waited for the same computation: one run, one answer
    assert len(gate.engines) == 1 and gate.engines[0] is engine
    assert seen["first"].status_code == 200 and seen["second"].status_code == 200
    assert seen["first"].json()["phase"] == seen["second"].json()["phase"] == "closed"
    assert seen["after"].json()["phase"] == "closed"
    assert_hand_outcome(call.outcome(tokens["operator"]))
    closes = [e for e in call.events(tokens["operator"]) if e["kind"] == "close"]
    assert len(closes) == 1
    record = call.publish(tokens["operator"])
    check = verify_record(record)
    assert check.ok and check.recomputed, check.problems


def test_a_second_close_while_one_computes_is_refused_in_the_domain(
    tmp_path: Path, gate: Gate
) -> None:
    # two closes from two threads: the second gets 409 "already running", not a second run
    call, tokens = closable_auction(tmp_path)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(call.close(tokens["operator"])))
    worker.start()
    assert gate.started.wait(60)
    assert call.phase().value == "closing"
    with pytest.raises(CallStateError, match="already running"):
        call.close(tokens["operator"])
    gate.release.set()
    worker.join(60)
    assert results and results[0]["phase"] == "closed"
    assert len(gate.engines) == 1
    assert_hand_outcome(call.outcome(tokens["operator"]))


@pytest.mark.parametrize(
    ("failure", "error", "reason"),
    [
        (SolverError("HiGHS returned 'error' for winner determination"), "SolverError", "HiGHS"),
        (MemoryError(), "MemoryError", "MemoryError"),
    ],
)
def test_a_failed_close_is_logged_answered_with_its_reason_and_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception, error: str, reason: str
) -> None:
    # before: an exception in the close was a bare 500 (a traceback in the log, nothing in the
    # event log), and the reply named no reason
    call, tokens = closable_auction(tmp_path)
    attempts: list[int] = []

    def fails_once(terms: Any, document: Any, *, engine: Any = None) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise failure
        return REAL_RUN_CLOSE(terms, document, engine=engine)

    monkeypatch.setattr(call_module, "run_close", fails_once)
    app = served_call_app(call)
    op = bearer(tokens["operator"])

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://call") as c:
            return [
                await c.post("/v1/operator/close", headers=op),
                await c.get("/v1/call"),
                await c.get("/v1/operator/outcome", headers=op),
                await c.post("/v1/operator/close", headers=op),
                await c.get("/v1/call"),
            ]

    failed, status, no_outcome, retried, after = asyncio.run(scenario())
    assert failed.status_code == 500, failed.text
    body = failed.json()
    assert body["error"] == error and reason in body["reason"]
    assert "closed again" in body["detail"] and reason in body["detail"]
    assert status.json()["phase"] == "deadline"
    assert no_outcome.status_code == 409
    logged = [e for e in call.events(tokens["operator"]) if e["kind"] == "close_failed"]
    assert len(logged) == 1
    assert logged[0]["error"] == error and reason in logged[0]["reason"]
    assert retried.status_code == 200 and after.json()["phase"] == "closed"
    assert len(attempts) == 2
    assert_hand_outcome(call.outcome(tokens["operator"]))


def test_a_failed_close_in_the_domain_raises_a_pivotal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    call, tokens = closable_auction(tmp_path)

    def broken(*_: Any, **__: Any) -> dict[str, Any]:
        raise SolverError("the engine lost a worker")

    monkeypatch.setattr(call_module, "run_close", broken)
    with pytest.raises(CallCloseError, match="the engine lost a worker") as info:
        call.close(tokens["operator"])
    assert info.value.error == "SolverError"
    assert call.phase().value == "deadline"
    monkeypatch.setattr(call_module, "run_close", REAL_RUN_CLOSE)
    call.close(tokens["operator"])
    assert_hand_outcome(call.outcome(tokens["operator"]))


def test_a_restart_during_a_close_leaves_a_closable_call_with_the_same_outcome(
    tmp_path: Path, gate: Gate
) -> None:
    # "closing" is not stored: a process that dies while it computes leaves the call in
    # "deadline" for the next one, which computes the outcome from the same stored reports
    call, tokens = closable_auction(tmp_path)
    gate.only_first = True
    first: list[Any] = []

    def close_first() -> None:
        try:
            first.append(call.close(tokens["operator"]))
        except CallCloseError as exc:
            first.append(exc)

    worker = threading.Thread(target=close_first, daemon=True)
    worker.start()
    assert gate.started.wait(60)
    clock = Clock()
    clock.now = DEADLINE + timedelta(seconds=2)
    restarted = Call.open(tmp_path / "call.sqlite", clock=clock)  # as after a SIGKILL
    assert restarted.phase().value == "deadline"
    with pytest.raises(CallStateError):  # reports are refused: the deadline has passed
        restarted.submit(tokens["b1"], "b1", {"bids": [{"bundle": ["A", "B"], "value": 100.0}]})
    restarted.close(tokens["operator"])
    stored = restarted.outcome(tokens["operator"])
    assert_hand_outcome(stored)
    # the first close, had its process lived on, finds the outcome stored: it changes nothing
    gate.release.set()
    worker.join(60)
    assert len(first) == 1 and isinstance(first[0], CallCloseError)
    again = Call.open(tmp_path / "call.sqlite", clock=clock)
    assert again.outcome(tokens["operator"]) == stored
    assert [e["kind"] for e in again.events(tokens["operator"])].count("close") == 1


def test_private_routers_check_the_token_before_the_query(tmp_path: Path) -> None:
    # the participant and operator routers check the token in their dependency: a stranger
    # learns nothing about a private endpoint's parameters (before the split into routers, a
    # bad query without a token got 422)
    call, tokens = closable_auction(tmp_path)
    app = served_call_app(call)

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://call") as c:
            events = "/v1/operator/events?limit=0"
            return [
                await c.get(events),
                await c.get(events, headers=bearer(tokens["b1"])),
                await c.get(events, headers=bearer(tokens["operator"])),
                await c.get("/v1/participants/b1", headers=bearer(tokens["b2"])),
                await c.get("/v1/participants/b1", headers=bearer(tokens["b1"])),
            ]

    stranger, participant, operator, other, own = asyncio.run(scenario())
    assert stranger.status_code == 401 and stranger.headers["www-authenticate"] == "Bearer"
    assert participant.status_code == 403 and operator.status_code == 422
    assert other.status_code == 403 and own.status_code == 200 and own.json()["name"] == "b1"
    # each refusal is logged once (the dependency refuses; the handler never runs)
    refused = [e for e in call.events(tokens["operator"]) if e["kind"] == "refused"]
    assert [(e["participant"], e["status"]) for e in refused] == [("b1", 403), ("b2", 403)]


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_serve_call_engine_closes_on_the_engine_and_its_workers_end_with_the_server(
    tmp_path: Path,
) -> None:
    # the seed auction (3 items x 4 bidders: welfare 26, bidder 2 pays 9, bidder 3 pays 5) closed
    # by a server with --engine processes:2: its two counterfactuals run on the pool. Before:
    # SIGTERM ended the process (uvicorn re-raises it) before the pool was shut down, and its
    # workers lived on, orphaned
    terms = {
        "name": "seed-auction",
        "kind": "auction",
        "items": ["A", "B", "C"],
        "deadline": deadline_in(15),  # kept open while the reports arrive
        "approval": "automatic",
        "publish_reports": True,
        "invited": [{"name": n, "role": "bidder"} for n in ("1", "2", "3", "4")],
    }
    server = CallServer(tmp_path, terms, extra=("--engine", "processes:2"))
    try:
        server.start()
        assert server.process is not None
        with server.kept_open(), server.client() as c:
            for name in ("1", "2", "3", "4"):
                r = c.put(
                    f"/v1/participants/{name}/report",
                    json=seed_bids(name),
                    headers=server.headers(name),
                )
                assert r.status_code == 200, r.text
        server.wait_for_deadline()
        with server.client() as c:
            closed = c.post("/v1/operator/close", headers=server.headers("operator"))
            assert closed.status_code == 200, closed.text
            outcome = c.get("/v1/operator/outcome", headers=server.headers("operator")).json()
        assert outcome["welfare"] == pytest.approx(26)
        assert outcome["payments"] == pytest.approx({"1": 0, "2": 9, "3": 5, "4": 0})
        assert outcome["provenance"]["parameters"]["engine"] == "processes:2"
        workers = _children(server.process.pid)
        assert len(workers) >= 2  # the pool's workers (and its resource tracker)
        server.process.terminate()
        server.process.wait(60)
        for _ in range(600):  # each worker exits once the pool is shut down
            if not any(Path(f"/proc/{w}").exists() for w in workers):
                break
            threading.Event().wait(0.1)
        alive = [w for w in workers if Path(f"/proc/{w}").exists()]
        for w in alive:  # do not leave them behind if the test fails
            os.kill(w, 9)
        assert alive == []
    finally:
        server.stop()
