"""CATS-style generators: seeded, exact sizes, bidder identity kept through the CATS format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pivotal.auctions import auction_from_cats_text, auction_to_cats_text, load_auction
from pivotal.auctions.generators import generate_auction
from pivotal.cli import app
from pivotal.errors import InputError


@pytest.mark.parametrize("dist", ["arbitrary", "regions"])
def test_generator_sizes_seeds_and_round_trip(dist: str) -> None:
    a = generate_auction(dist, 40, 150, np.random.default_rng(7))
    b = generate_auction(dist, 40, 150, np.random.default_rng(7))
    c = generate_auction(dist, 40, 150, np.random.default_rng(8))
    assert a == b and a != c
    assert len(a.items) == 40 and len(a.bids) == 150
    assert len(a.bidders) < len(a.bids)  # XOR bidders with several bids exist
    assert max(len(bid.bundle) for bid in a.bids) > 1
    assert all(bid.value > 0 and float(bid.value).is_integer() for bid in a.bids)
    for bidder, ks in a.bids_of.items():
        assert bidder == str(min(ks))  # named by its smallest bid id, as in CATS files
    assert auction_from_cats_text(auction_to_cats_text(a)) == a


def test_regions_bundles_are_local() -> None:
    # On a 10x10 grid, a regions bundle grows through neighbours: its goods lie close together.
    a = generate_auction("regions", 100, 200, np.random.default_rng(1))
    spans = []
    for bid in a.bids:
        rows = [int(g) // 10 for g in bid.bundle]
        spans.append(max(rows) - min(rows))
    assert np.median(spans) <= 3


def test_generator_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="unknown distribution 'paths'"):
        generate_auction("paths", 10, 10, rng)
    with pytest.raises(InputError, match="at least 2 goods"):
        generate_auction("arbitrary", 1, 10, rng)


def test_generate_command_writes_cats(tmp_path: Path) -> None:
    target = tmp_path / "auction.txt"
    runner = CliRunner()
    args = ["auction", "generate", "--dist", "arbitrary", "--goods", "20", "--bids", "50"]
    result = runner.invoke(app, [*args, "--seed", "1", "-o", str(target)])
    assert result.exit_code == 0, result.output
    auction = load_auction(target)
    assert len(auction.bids) == 50
    assert auction == generate_auction("arbitrary", 20, 50, np.random.default_rng(1))
    run = runner.invoke(app, ["auction", "run", str(target), "--payments", "core-vcg-nearest"])
    assert run.exit_code == 0, run.output
