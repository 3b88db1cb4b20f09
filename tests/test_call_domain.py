"""Open calls without HTTP: terms, life cycle, sealed reports, receipts, store, close, record."""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from _call import START, auction_terms, market_terms, new_call
from pivotal.calls import Call, CallAuthError, CallStateError, terms_from_document
from pivotal.calls.receipts import check_signature
from pivotal.calls.verify import verify_record
from pivotal.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def seed_bids(bidder: str) -> list[dict[str, Any]]:
    seed = json.loads((EXAMPLES / "seed_vcg_3x4.json").read_text())
    return [
        {"bundle": b["bundle"], "value": b["value"]} for b in seed["bids"] if b["bidder"] == bidder
    ]


def test_seed_auction_as_a_call(tmp_path: Path) -> None:
    # reference: the VCG tutorial's 3 items x 4 bidders (welfare 26; bidder 2 pays 9, bidder 3
    # pays 5), as in tests/test_seed_auction.py
    call, tokens, clock = new_call(tmp_path, auction_terms())
    receipts = {}
    for b in "1234":
        token, status = call.register(f"b{b}", "bidder")
        assert status == "approved"
        receipts[b] = call.submit(token, f"b{b}", {"bids": seed_bids(b)})
    clock.now += timedelta(hours=2)
    call.close(tokens["operator"])
    record = call.publish(tokens["operator"])
    outcome = record["outcome"]
    assert outcome["welfare"] == pytest.approx(26)
    assert outcome["payments"] == pytest.approx({"b1": 0, "b2": 9, "b3": 5, "b4": 0})
    check = verify_record(record, receipts=list(receipts.values()))
    assert check.ok and check.recomputed, check.problems


def test_seed_market_closed_form(tmp_path: Path) -> None:
    # closed form: cost 2q + q^2/2, benefit 10q - q^2/2 -> q* = 4, p* = 6, W* = 16; VCG pays the
    # producer c(4) + 16 = 32 and charges the buyer b(4) - 16 = 16
    call, tokens, clock = new_call(tmp_path, market_terms())
    tp, _ = call.register("maker", "producer")
    tb, _ = call.register("government", "buyer")
    call.submit(tp, "maker", {"cost": {"kind": "quadratic", "a": 2, "b": 0.5}, "capacity": 20})
    call.submit(
        tb, "government", {"benefit": {"kind": "quadratic", "a": 10, "b": 0.5}, "capacity": 20}
    )
    clock.now += timedelta(hours=2)
    call.close(tokens["operator"])
    mine = call.own_result(tp, "maker")
    assert mine["quantity"] == pytest.approx(4) and mine["transfer"] == pytest.approx(32)
    theirs = call.own_result(tb, "government")
    assert theirs["transfer"] == pytest.approx(-16)


def test_submission_refused_with_field(tmp_path: Path) -> None:
    call, _, _ = new_call(tmp_path, auction_terms(max_bundles=2))
    token, _ = call.register("b1", "bidder")
    cases = [
        ({"bids": [{"bundle": ["Z"], "value": 1}]}, "bids[0].bundle"),
        ({"bids": [{"bundle": ["A"], "value": -1}]}, "bids[0].value"),
        ({"bids": [{"bundle": [], "value": 1}]}, "bids[0].bundle"),
        ({"bids": [{"bundle": ["A"], "value": 1}] * 3}, "bids"),
        ({"bids": [{"bundle": ["A"], "value": "1"}]}, "bids[0].value"),
    ]
    for body, field in cases:
        with pytest.raises(InputError) as info:
            call.submit(token, "b1", body)
        assert info.value.field == field, (body, str(info.value))
    (tmp_path / "m").mkdir()
    market, mtokens, mclock = new_call(tmp_path / "m", market_terms())
    tp, _ = market.register("p1", "producer")
    nonconvex = {"cost": {"kind": "piecewise_linear", "points": [[0, 0], [1, 5], [2, 6]]}}
    with pytest.raises(InputError) as info:
        market.submit(tp, "p1", nonconvex)
    assert info.value.field == "cost.points[2]"
    with pytest.raises(InputError) as info:
        market.submit(tp, "p1", {"cost": {"kind": "linear", "a": 1}, "capacity": -1})
    assert info.value.field == "cost.capacity"
    with pytest.raises(InputError) as info:
        market.submit(tp, "p1", {"benefit": {"kind": "linear", "a": 1}, "capacity": 1})
    assert info.value.field == "benefit"
    refused = [e for e in market.events(mtokens["operator"], 0) if e["kind"] == "refused"]
    assert [e["status"] for e in refused] == [422] * 3
    assert not any("field" in e for e in refused)  # sealed: the field tells of the report
    mclock.now += timedelta(hours=2)
    market.close(mtokens["operator"])
    refused = [e for e in market.events(mtokens["operator"], 0) if e["kind"] == "refused"]
    assert [e["field"] for e in refused] == ["cost.points[2]", "cost.capacity", "benefit"]


def test_deadline_and_life_cycle(tmp_path: Path) -> None:
    call, tokens, clock = new_call(tmp_path, auction_terms())
    token, _ = call.register("b1", "bidder")
    with pytest.raises(CallStateError):
        call.close(tokens["operator"])
    with pytest.raises(CallStateError):
        call.extend(tokens["operator"], START)  # not later
    call.extend(tokens["operator"], START + timedelta(hours=3))
    clock.now = START + timedelta(hours=2)
    call.submit(token, "b1", {"bids": [{"bundle": ["A"], "value": 3}]})  # extended: still open
    clock.now = START + timedelta(hours=3)
    with pytest.raises(CallStateError, match="server time 2027-01-01T15:00:00"):
        call.submit(token, "b1", {"bids": [{"bundle": ["A"], "value": 4}]})
    with pytest.raises(CallStateError):
        call.publish(tokens["operator"])
    with pytest.raises(CallStateError):
        call.own_result(token, "b1")
    call.close(tokens["operator"])
    assert call.own_result(token, "b1")["items"] == ["A"]


def test_roles_and_tokens(tmp_path: Path) -> None:
    call, tokens, _ = new_call(tmp_path, market_terms(approval="operator"))
    tp, status = call.register("p1", "producer")
    assert status == "pending"
    body = {"cost": {"kind": "linear", "a": 1}, "capacity": 1}
    with pytest.raises(CallAuthError) as info:
        call.submit(tp, "p1", body)
    assert info.value.status == 403
    call.approve(tokens["operator"], "p1")
    call.submit(tp, "p1", body)
    tq, _ = call.register("p2", "producer")
    for token, status in ((None, 401), ("nope", 401), (tq, 403), (tokens["operator"], 403)):
        with pytest.raises(CallAuthError) as info:
            call.submit(token, "p1", body)
        assert info.value.status == status
    with pytest.raises(CallAuthError):
        call.approve(tp, "p2")
    for bad in ("operator", "Upper", "a/b", "x" * 65, ""):
        with pytest.raises(InputError):
            call.register(bad, "producer")
    with pytest.raises(CallStateError):
        call.register("p1", "producer")


def test_sealed_views_and_restart(tmp_path: Path) -> None:
    call, tokens, clock = new_call(tmp_path, auction_terms())
    token, _ = call.register("b1", "bidder")
    sentinel = 987654.321
    first = call.submit(token, "b1", {"bids": [{"bundle": ["A"], "value": sentinel}]})
    second = call.submit(token, "b1", {"bids": [{"bundle": ["B"], "value": sentinel}]})
    assert (first["action"], second["action"]) == ("submit", "revise")
    op = tokens["operator"]
    views = [call.summary(), call.operator_view(op), call.events(op), call.me(token, "b1")]
    text = json.dumps(views)
    assert "987654" not in text and first["report_sha256"] not in text.replace(
        json.dumps(call.me(token, "b1")["receipt"]), ""
    )
    assert call.operator_view(op)["submissions"] == 1
    assert check_signature(second, call.key.public_hex)
    call.store.close()
    again = Call.open(tmp_path / "call.sqlite", clock=clock)
    assert again.receipt_of(token, "b1") == second
    assert [e["kind"] for e in again.events(op)][-2:] == ["submission", "revision"]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        again.store._db.execute("DELETE FROM events")
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{tmp_path / 'call.sqlite'}{suffix}")
        if path.exists():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_tampered_record_fails(tmp_path: Path) -> None:
    call, tokens, clock = new_call(tmp_path, auction_terms())
    for b in "1234":
        token, _ = call.register(f"b{b}", "bidder")
        call.submit(token, f"b{b}", {"bids": seed_bids(b)})
    clock.now += timedelta(hours=2)
    call.close(tokens["operator"])
    record = call.publish(tokens["operator"])
    assert verify_record(record).ok
    paid = copy.deepcopy(record)
    paid["outcome"]["payments"]["b2"] = 8.0
    check = verify_record(paid)
    assert not check.ok and any("signature" in p for p in check.problems)
    assert any("payments[b2]" in p for p in check.problems)
    swapped = copy.deepcopy(record)
    swapped["outcome"]["input"]["bids"][0]["value"] = 6.0
    assert not verify_record(swapped).ok


def test_terms_refused(tmp_path: Path) -> None:
    bad = [
        market_terms(deadline="2027-01-01T13:00:00"),  # no time zone
        market_terms(good=None),
        auction_terms(items=["A", "A"]),
        auction_terms(reserves={"Z": 1}),
        market_terms(invited=[{"name": "operator", "role": "buyer"}]),
        market_terms(
            reserve_curves=[
                {
                    "name": "reserve:g",
                    "role": "buyer",
                    "curve": {"kind": "piecewise_linear", "points": [[0, 0], [1, 1], [2, 3]]},
                }
            ]
        ),
    ]
    for doc in bad:
        with pytest.raises(InputError):
            terms_from_document(doc)
