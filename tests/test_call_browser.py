"""The call's pages end to end in headless Chromium (the installed browser; playwright does not
download one here): a producer enters a piecewise-linear cost curve, submits, revises, sees the
receipt and, after the close, its quantity and transfer; the operator's page shows the count but
never the content before the close. The same for an auction bidder's bundle table."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from _call import CallServer, deadline_in
from pivotal.auctions.formats import auction_from_document
from pivotal.auctions.payment_rules import run_auction
from pivotal.markets.clarke import vcg_market
from pivotal.markets.market import market_from_document

BROWSER = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = playwright.expect
if BROWSER is None:
    pytest.skip("no Chromium installed: the browser tests need one", allow_module_level=True)


def shows(secret: str, page: str) -> bool:
    """Whether ``page`` shows the number ``secret`` as a number of its own (not as digits inside
    another number, such as a timestamp: 1733104.25 holds "4.25")."""
    return re.search(rf"(?<![0-9.]){re.escape(secret)}(?![0-9])", page) is not None


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    servers: list[CallServer] = []

    def start(terms: dict[str, Any]) -> CallServer:
        s = CallServer(tmp_path, terms)
        servers.append(s)
        s.start()
        return s

    yield start
    for s in servers:
        s.stop()


def keep_open(call: CallServer, margin: float = 12) -> None:
    """On a slow machine, the operator extends the deadline before it passes (as the terms
    allow) so that the browser steps finish before it."""
    with call.client() as c:
        status = c.get("/v1/call").json()
        if status["seconds_left"] < margin:
            later = datetime.fromisoformat(status["deadline"].replace("Z", "+00:00"))
            new = (later + timedelta(seconds=margin)).isoformat()
            r = c.post(
                "/v1/operator/deadline", json={"deadline": new}, headers=call.headers("operator")
            )
            assert r.status_code == 200, r.text


def operator_page(browser: Any, call: CallServer) -> Any:
    page = browser.new_context().new_page()
    page.goto(f"{call.url}/operator")
    page.fill("#op-token", call.token("operator"))
    page.click("#op-signin")
    page.wait_for_selector("#dashboard:not([hidden])")
    return page


def close_from_dashboard(call: CallServer, op: Any) -> None:
    call.wait_for_deadline()
    op.click("#close")
    expect(op.locator("#op-outcome tr")).not_to_have_count(0)


def test_market_participant_and_operator_pages(browser: Any, serve: Any) -> None:
    government = {"benefit": {"kind": "quadratic", "a": 10, "b": 0.5}, "capacity": 20}
    call = serve(
        {
            "name": "kits",
            "kind": "market",
            "good": "test kits",
            "unit": "kit",
            "deadline": deadline_in(20),
            "approval": "automatic",
            "invited": [{"name": "government", "role": "buyer"}],
        }
    )
    with call.client() as c:
        r = c.put(
            "/v1/participants/government/report",
            json=government,
            headers=call.headers("government"),
        )
        assert r.status_code == 200
    errors: list[str] = []
    page = browser.new_context().new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{call.url}/participant")
    page.fill("#reg-name", "maker")
    page.select_option("#reg-role", "producer")
    page.click("#register")
    page.wait_for_selector("#me:not([hidden])")
    assert page.text_content("#token-value")
    # the curve: (0, 0), (5, 10.125), (12, 47.625): convex, 2.025 then 5.357 per unit
    page.click("#add-point")
    rows = page.locator("#points tbody tr")
    rows.nth(1).locator(".q").fill("5")
    rows.nth(1).locator(".v").fill("10.125")
    rows.nth(2).locator(".q").fill("12")
    rows.nth(2).locator(".v").fill("47.625")
    assert len(page.get_attribute("#preview-line", "points").split()) == 3
    keep_open(call)
    page.click("#submit")
    expect(page.locator("#receipt")).to_contain_text("submit")
    # revise: a cheaper last segment
    rows.nth(2).locator(".v").fill("41.625")
    keep_open(call)
    page.click("#submit")
    expect(page.locator("#receipt")).to_contain_text("revise")
    receipt = page.text_content("#receipt")
    assert "SHA-256" in receipt and "signature" in receipt
    op = operator_page(browser, call)
    expect(op.locator("#submission-count")).to_have_text("2")
    content = op.content()
    for secret in ("10.125", "41.625", "47.625", "quadratic"):
        assert not shows(secret, content)
    close_from_dashboard(call, op)
    expect(page.locator("#result")).to_contain_text("transfer", timeout=15000)
    # reference: the same market run directly by the mechanism
    reference = vcg_market(
        market_from_document(
            {
                "producers": [
                    {
                        "name": "maker",
                        "cost": {
                            "kind": "piecewise_linear",
                            "points": [[0, 0], [5, 10.125], [12, 41.625]],
                        },
                    }
                ],
                "buyers": [{"name": "government", **government}],
            }
        )
    )
    result = page.text_content("#result")
    assert f"quantity{float(reference.quantities['maker']):.8g}" in result.replace(" ", "")
    assert f"transfer{float(reference.transfers['maker']):.8g}" in result.replace(" ", "")
    # after the close the operator's page shows the outcome (the search above could find it)
    assert f"{float(reference.transfers['maker']):.8g}" in op.text_content("#op-outcome")
    assert not errors, errors


def test_auction_bid_table(browser: Any, serve: Any) -> None:
    call = serve(
        {
            "name": "lots",
            "kind": "auction",
            "items": ["A", "B", "C"],
            "deadline": deadline_in(20),
            "approval": "operator",
            "invited": [{"name": "rival", "role": "bidder"}],
        }
    )
    rival = {"bids": [{"bundle": ["A"], "value": 6}, {"bundle": ["C"], "value": 3}]}
    with call.client() as c:
        r = c.put("/v1/participants/rival/report", json=rival, headers=call.headers("rival"))
        assert r.status_code == 200
    page = browser.new_context().new_page()
    page.goto(f"{call.url}/participant")
    page.fill("#reg-name", "bidder-one")
    page.click("#register")
    page.wait_for_selector("#me:not([hidden])")
    op = operator_page(browser, call)
    op.wait_for_selector("#registrations button")
    op.click("#registrations button")  # approve the pending registration
    expect(op.locator("#registrations button")).to_have_count(0)
    # bids: {A, B} at 17.5 and {C} at 4.25
    page.click("#add-bid")
    rows = page.locator("#bids tbody tr")
    rows.nth(0).locator("[data-item=A]").check()
    rows.nth(0).locator("[data-item=B]").check()
    rows.nth(0).locator(".value").fill("17.5")
    rows.nth(1).locator("[data-item=C]").check()
    rows.nth(1).locator(".value").fill("4.25")
    keep_open(call)
    page.click("#submit")
    expect(page.locator("#receipt")).to_contain_text("submit")
    rows.nth(1).locator(".value").fill("2.75")  # revise
    keep_open(call)
    page.click("#submit")
    expect(page.locator("#receipt")).to_contain_text("revise")
    expect(op.locator("#submission-count")).to_have_text("2")
    for secret in ("17.5", "2.75", "4.25"):
        assert not shows(secret, op.content())
    close_from_dashboard(call, op)
    expect(page.locator("#result")).to_contain_text("payment", timeout=15000)
    reference = run_auction(
        auction_from_document(
            {
                "items": ["A", "B", "C"],
                "bids": [
                    {"bidder": "bidder-one", "bundle": ["A", "B"], "value": 17.5},
                    {"bidder": "bidder-one", "bundle": ["C"], "value": 2.75},
                    {"bidder": "rival", "bundle": ["A"], "value": 6},
                    {"bidder": "rival", "bundle": ["C"], "value": 3},
                ],
            }
        )
    )
    result = page.text_content("#result").replace(" ", "")
    assert "itemsA+B" in result and reference.allocation["bidder-one"] == ("A", "B")
    assert f"payment{reference.payments['bidder-one']:.8g}" in result
