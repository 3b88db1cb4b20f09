"""Input validation: every bad input gets a typed error whose message names the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES
from pivotal.auctions import Auction, auction_from_document, load_auction, vcg
from pivotal.auctions.formats import auction_from_csv_text
from pivotal.errors import InputError, InputFileError, InvalidBidError

GOOD: dict[str, Any] = {"items": ["A", "B"], "bids": [{"bidder": "1", "bundle": ["A"], "value": 3}]}


def _with_bid(**changes: Any) -> dict[str, Any]:
    bid = dict(GOOD["bids"][0], **changes)
    return {"items": ["A", "B"], "bids": [bid]}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_with_bid(bundle=["Z"]), "names item 'Z', which is not in the auction's items"),
        (_with_bid(value=-1), "negative value -1"),
        (_with_bid(value="ten"), "bids\\[0\\]\\.value: expected a number, got 'ten'"),
        (_with_bid(value=True), "bids\\[0\\]\\.value: expected a number"),
        (_with_bid(bundle=[]), "bids\\[0\\]\\.bundle: the bundle is empty"),
        (
            {"items": ["A"], "bids": [GOOD["bids"][0], GOOD["bids"][0]]},
            "bidder '1' bids twice on bundle \\{A\\}",
        ),
        ({"items": ["A", "A"], "bids": []}, "item 'A' is listed twice"),
        ({"bids": []}, "items: required field is missing"),
        ({"items": ["A"], "bids": [], "extra": 1}, "extra: unknown field"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_documents(doc: Any, message: str) -> None:
    with pytest.raises(InvalidBidError if isinstance(doc, dict) else InputError, match=message):
        auction_from_document(doc)


def test_non_finite_value_rejected() -> None:
    with pytest.raises(InvalidBidError, match="non-finite value inf"):
        Auction.from_bids(["A"], [("1", ["A"], float("inf"))])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="file not found"):
        load_auction(tmp_path / "nope.json")


def test_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"items": ["A"], "bids": [}')
    with pytest.raises(InputFileError, match="malformed JSON at line 1, column 27"):
        load_auction(path)


def test_nan_in_json_rejected(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"items": ["A"], "bids": [{"bidder": "1", "bundle": ["A"], "value": NaN}]}')
    with pytest.raises(InputFileError, match="non-finite number NaN"):
        load_auction(path)


def test_valuation_table_formats_agree() -> None:
    json_auction = load_auction(EXAMPLES / "seed_vcg_3x4.json")
    csv_auction = load_auction(EXAMPLES / "seed_vcg_3x4.csv")
    table = {
        b: {"+".join(sorted(bid.bundle)): bid.value for bid in json_auction.bids if bid.bidder == b}
        for b in json_auction.bidders
    }
    dict_auction = auction_from_document({"items": ["A", "B", "C"], "valuations": table})
    assert csv_auction.sha256 == json_auction.sha256 == dict_auction.sha256
    assert vcg(csv_auction).payments == vcg(json_auction).payments


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV file is empty"),
        ("name,A\n1,3\n", "first CSV column must be 'bidder'"),
        ("bidder,A,A+\n1,3,4\n", "bundle label 'A\\+' is malformed"),
        ("bidder,A\n1,abc\n", "CSV line 2, column 'A': expected a number, got 'abc'"),
        ("bidder,A,B\n1,3\n", "CSV line 2 has 2 cells, the header has 3"),
        ("bidder,A\n1,-2\n", "negative value -2"),
    ],
)
def test_bad_csv(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        auction_from_csv_text(text)


def test_empty_csv_cell_means_no_bid() -> None:
    auction = auction_from_csv_text("bidder,A,B,A+B\n1,3,,7\n2,,4,\n")
    assert len(auction.bids) == 3
    assert json.loads(json.dumps(auction.to_dict()))["items"] == ["A", "B"]
