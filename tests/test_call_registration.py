"""The operator's decision on a registration: approve or reject (docs/calls.md, "Who may take
part"), in the library and over HTTP."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from _call import START, market_terms, new_call
from pivotal.calls import Call, CallAuthError, CallStateError
from pivotal.errors import InputError
from pivotal.service.call_app import served_call_app

BODY: dict[str, Any] = {"cost": {"kind": "linear", "a": 1}, "capacity": 1}


def test_the_operator_rejects_a_pending_registration(tmp_path: Path) -> None:
    call, tokens, clock = new_call(tmp_path, market_terms(approval="operator"))
    op = tokens["operator"]
    body = BODY
    tr, _ = call.register("r1", "producer")
    ta, _ = call.register("a1", "producer")
    call.reject(op, "r1")
    call.reject(op, "r1")  # twice: one event
    call.approve(op, "a1")
    call.submit(ta, "a1", body)
    with pytest.raises(CallAuthError) as refused:
        call.submit(tr, "r1", body)
    assert refused.value.status == 403 and "rejected" in str(refused.value)
    for act in (call.approve, call.reject):  # a decision is final either way
        with pytest.raises(CallStateError):
            act(op, "r1" if act == call.approve else "a1")
    with pytest.raises(CallAuthError):  # only the operator decides
        call.reject(ta, "r1")
    with pytest.raises(InputError):
        call.reject(op, "nobody")
    with pytest.raises(CallStateError):  # the name stays taken
        call.register("r1", "producer")
    statuses = {r["name"]: r["status"] for r in call.operator_view(op)["registrations"]}
    assert statuses == {"r1": "rejected", "a1": "approved"}
    assert call.summary()["participants"] == 1
    kinds = [e["kind"] for e in call.events(op) if e.get("participant") == "r1"]
    assert kinds.count("rejection") == 1
    again = Call.open(tmp_path / "call.sqlite", clock=clock)  # a restart keeps the decision
    with pytest.raises(CallAuthError):
        again.submit(tr, "r1", body)
    clock.now = START + timedelta(hours=2)
    with pytest.raises(CallStateError):  # decisions are taken while the call is open
        again.reject(op, "r1")


def test_reject_over_http(tmp_path: Path) -> None:
    call, tokens, _ = new_call(tmp_path, market_terms(approval="operator"))
    app = served_call_app(call)
    op = {"Authorization": f"Bearer {tokens['operator']}"}

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://call") as client:
            reg = await client.post("/v1/register", json={"name": "r1", "role": "producer"})
            mine = {"Authorization": f"Bearer {reg.json()['token']}"}
            codes = [reg.status_code]
            path = "/v1/operator/participants/r1/reject"
            codes.append((await client.post(path, headers=mine)).status_code)  # not the operator
            answer = await client.post(path, headers=op)
            codes.append(answer.status_code)
            assert {r["name"]: r["status"] for r in answer.json()["registrations"]} == {
                "r1": "rejected"
            }
            put = await client.put("/v1/participants/r1/report", json=BODY, headers=mine)
            codes.append(put.status_code)
            assert "rejected" in put.json()["detail"]
            approve = "/v1/operator/participants/r1/approve"
            codes.append((await client.post(approve, headers=op)).status_code)
            return codes

    assert asyncio.run(scenario()) == [201, 403, 200, 403, 409]


def test_the_log_reaches_the_database_file_from_the_checkpoint_thread(tmp_path: Path) -> None:
    # the server moves the write-ahead log into the database from a thread of its own (a
    # commit that checkpoints makes every waiting submission wait for the database's sync too)
    call, tokens, _ = new_call(tmp_path, market_terms(approval="operator"))
    db = tmp_path / "call.sqlite"
    call.store.checkpoint_in_background(interval=0.01)
    before = db.stat().st_size
    for i in range(200):
        call.register(f"p{i}", "producer")
    for _ in range(1000):  # until the thread has copied the new pages (or fail after ~10 s)
        if db.stat().st_size > before:
            break
        threading.Event().wait(0.01)
    assert db.stat().st_size > before
    call.store.close()  # stops the thread; nothing is lost
    again = Call.open(db)
    assert len(again.operator_view(tokens["operator"])["registrations"]) == 200
