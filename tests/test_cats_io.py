"""CATS files written by the original generator (../shared/cases/cats, refs computed there by an
exact MIP with a second solver as cross-check) and the CATS reader/writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED_CASES
from pivotal.auctions import auction_from_cats_text, auction_to_cats_text, load_auction, vcg
from pivotal.errors import InputFileError

CATS_FILES = sorted((SHARED_CASES / "cats").glob("*.txt"))


def test_cats_files_present() -> None:
    assert len(CATS_FILES) == 6


@pytest.mark.parametrize("path", CATS_FILES, ids=lambda p: p.stem)
def test_cats_reference(path: Path) -> None:
    ref = json.loads(path.with_suffix(".ref.json").read_text())
    auction = load_auction(path)
    assert len(auction.items) == ref["n_goods"]
    assert len(auction.bids) == ref["n_bids"]
    assert {b: list(ks) for b, ks in auction.bids_of.items()} == ref["bidders"]
    outcome = vcg(auction)
    assert outcome.welfare == ref["welfare"]
    assert outcome.revenue == ref["revenue"]
    assert {b: [k] for b, k in outcome.winning_bids.items()} == ref["winners"]
    assert dict(outcome.payments) == {b: float(p) for b, p in ref["payments"].items()}


@pytest.mark.parametrize("path", CATS_FILES, ids=lambda p: p.stem)
def test_cats_round_trip(path: Path) -> None:
    auction = load_auction(path)
    again = auction_from_cats_text(auction_to_cats_text(auction))
    assert again.items == auction.items
    assert again.bids == auction.bids


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bids 1\n0\t5\t0\t#\n", "bid line before the 'goods N' header"),
        ("% only a comment\n", "no 'goods N' header"),
        ("goods 2\nbids 1\ndummy 0\n0\t5\t0\n", "must end with '#'"),
        ("goods 2\nbids 1\ndummy 0\n0\tx\t0\t#\n", "expected 'id price good ... #'"),
        ("goods 2\nbids 2\ndummy 0\n0\t5\t0\t#\n", "header says bids 2"),
        ("goods 2\nbids 1\ndummy 1\n0\t5\t2\t#\n", "names no real good"),
        ("goods 2\nbids 1\ndummy 0\n0\t-5\t0\t#\n", "prices must be finite and >= 0"),
    ],
)
def test_cats_errors(text: str, message: str) -> None:
    with pytest.raises(InputFileError, match=message):
        auction_from_cats_text(text)
