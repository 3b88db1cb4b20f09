"""The market result written from columns (issue 15.6): the same bytes as the generic encoders
(pydantic-core's ``to_json`` for the document, ``json.dumps`` for the canonical input whose
hash the result records), on random markets, odd names and floats that print differently in
the two encoders; and the command line's output verifies."""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic_core import to_json
from typer.testing import CliRunner

import pivotal.cli.market as cli_market
from pivotal.cli import app
from pivotal.markets import (
    Agent,
    Market,
    Role,
    generate_market,
    linear,
    piecewise_linear,
    quadratic,
)
from pivotal.markets.amounts import AmountColumn, LabelColumn, as_dict
from pivotal.markets.clarke import vcg_market
from pivotal.markets.encode import (
    Fragment,
    InputTexts,
    ResultEncoder,
    encode,
    floats_json,
    market_json,
    market_result_json,
    names_json,
    quoted_names,
)
from pivotal.markets.forked import Forked
from pivotal.markets.misreports import best_withholding, largest_producer
from pivotal.markets.result import market_result
from pivotal.markets.table import keep_freed_memory
from pivotal.results import canonical_json, sha256_of
from pivotal.verify import verify

runner = CliRunner()

ODD_FLOATS = [
    1e-05, 1e16, -0.0, 0.0, 5e-324, 2.2250738585072014e-308, 1e-7, 1.5e-07, 1e22, 1e21, 0.1,
    123456789012345678.0, -3.25, 1e-4, 0.0001234, 1e300, -1e-300, 1.0, 100.0, 1 / 3,
]  # fmt: skip
ODD_NAMES = [
    'é∑ "q"',
    "back\\slash",
    "tab\tnew\nline",
    "nul\x00x",
    "\x1f",
    "\x7f",
    "😀",
    "a,b",
    "p",
]


def random_floats(rng: np.random.Generator, n: int) -> np.ndarray[Any, Any]:
    """Floats of every magnitude and sign, subnormals included."""
    bits = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64).view(np.float64)
    finite = bits[np.isfinite(bits)]
    return np.concatenate([finite, np.array(ODD_FLOATS), rng.normal(size=n) * 1e3])


def test_floats_are_written_as_each_encoder_writes_them() -> None:
    x = random_floats(np.random.default_rng(1), 2000)
    assert floats_json(x) == [to_json(v).decode() for v in x.tolist()]
    # the two encoders differ on these: the result keeps pydantic-core's, the hash json's
    assert to_json(1e-05) != json.dumps(1e-05).encode()


def test_names_are_quoted_as_each_encoder_quotes_them() -> None:
    plain = [f"agent {i} ∑" for i in range(50)]
    for names in (plain, ODD_NAMES, plain + ODD_NAMES, ["only"], []):
        assert names_json(names) == [to_json(n) for n in names]
        assert quoted_names(names) == [to_json(n).decode() for n in names]


def test_encode_splices_fragments_like_to_json() -> None:
    doc: dict[str, Any] = {
        "kind": "market",
        "n": 3,
        "nested": {"a": [1.0, {"b": None}], "é": "x\n", "big": {"p1": 1e-05, "p2": -0.0}},
        "list": [{"x": 1}, 2.5],
        "flag": True,
    }
    expected = to_json(doc)
    assert encode(doc) == expected
    spliced = {**doc, "nested": {**doc["nested"], "big": Fragment(to_json(doc["nested"]["big"]))}}
    assert encode(spliced) == expected


def test_maps_from_columns_equal_to_json_of_dictionaries() -> None:
    rng = np.random.default_rng(2)
    x = random_floats(rng, 500)
    for names in (
        [f"n{i}" for i in range(x.size)],
        [f"{ODD_NAMES[i % 9]}{i}" for i in range(x.size)],
    ):
        encoder = ResultEncoder(names)
        column = AmountColumn(names, x)
        assert encoder(column).text == to_json(dict(zip(names, x.tolist(), strict=True)))
        codes = rng.integers(0, 2, size=x.size).astype(np.int64)
        labels = LabelColumn(names, codes, ("buyer", "producer"))
        plain = {n: ("buyer", "producer")[c] for n, c in zip(names, codes.tolist(), strict=True)}
        assert encoder(labels).text == to_json(plain)
        # a mapping that is not a column of these names stays a dictionary
        assert encoder({"a": 1.0}) == {"a": 1.0}
        assert encoder(AmountColumn(list(names), x)) == dict(zip(names, x.tolist(), strict=True))
    assert ResultEncoder([]).amounts(np.zeros(0)) == b"{}"


def test_amount_column_reads_like_a_dictionary() -> None:
    names = ["a", "b", "c"]
    column = AmountColumn(names, np.array([1.5, -0.0, 2.0]))
    plain = {"a": 1.5, "b": -0.0, "c": 2.0}
    assert column == plain and dict(column.items()) == plain and as_dict(column) == plain
    assert list(column) == names and len(column) == 3 and column["c"] == 2.0 and "b" in column
    assert pickle.loads(pickle.dumps(column)) == plain
    with pytest.raises(KeyError):
        column["z"]
    with pytest.raises(ValueError):
        column.amounts[0] = 9.0  # read-only
    roles = LabelColumn(names, np.array([1, 0, 1]), (Role.BUYER, Role.PRODUCER))
    assert roles == {"a": Role.PRODUCER, "b": Role.BUYER, "c": Role.PRODUCER}


def odd_market() -> Market:
    """Agents in mixed role order, every curve kind, odd names and floats."""
    agents = [
        Agent(ODD_NAMES[0], linear(Role.PRODUCER, 1e-05, 1e16)),
        Agent(ODD_NAMES[1], quadratic(Role.BUYER, 12.0, 1.5e-07, 3.0)),
        Agent(ODD_NAMES[2], piecewise_linear(Role.PRODUCER, [[0, 0], [1, 2], [3, 8.5]], 2.5)),
        Agent(ODD_NAMES[3], piecewise_linear(Role.BUYER, [[0, 0], [2, 30], [4, 50]])),
        Agent(ODD_NAMES[4], quadratic(Role.PRODUCER, 2.0, 0.0, 0.0)),
        Agent(ODD_NAMES[5], linear(Role.BUYER, 9.0, 1e-7)),
        Agent(ODD_NAMES[6], linear(Role.PRODUCER, 0.1, 4.0)),
    ]
    return Market(agents)


MARKETS = [
    ("generated", lambda: generate_market(40, 30, np.random.default_rng(5))),
    ("odd", odd_market),
    ("linear only", lambda: Market([Agent("s", linear(Role.PRODUCER, 1.0, 2.0)),
                                    Agent("d", linear(Role.BUYER, 3.0, 1.0))])),
]  # fmt: skip


@pytest.mark.parametrize("make", [m for _, m in MARKETS], ids=[n for n, _ in MARKETS])
def test_input_text_equals_the_generic_encoders(make: Any) -> None:
    market = make()
    doc = market.to_dict()
    assert market_json(market.table) == to_json(doc)
    assert market.table.canonical_json() == canonical_json(doc)


@pytest.mark.parametrize("make", [m for _, m in MARKETS], ids=[n for n, _ in MARKETS])
def test_result_bytes_equal_to_json_of_the_document(make: Any) -> None:
    market = make()
    outcome = vcg_market(market)
    w = best_withholding(market, largest_producer(market))
    source = {"input": "m.json", "computed": "2026-12-02T08:00:00+00:00"}
    for withholding in (None, w):
        doc = market_result(market, outcome, withholding)
        doc["source"] = source
        assert market_result_json(market, outcome, withholding, source=source) == to_json(doc)
    assert outcome.provenance.input_sha256 == sha256_of(market.to_dict())


def test_command_line_writes_the_same_document_and_it_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above COMPACT_ABOVE agents the CLI writes from the columns: the bytes of the plain path
    (apart from the run's time and date), and ``pivotal verify`` accepts them."""
    market_file = tmp_path / "m.json"
    market_file.write_text(json.dumps(generate_market(30, 25, np.random.default_rng(7)).to_dict()))
    plain, fast = tmp_path / "plain.json", tmp_path / "fast.json"
    assert runner.invoke(app, ["market", "run", str(market_file), "-o", str(plain)]).exit_code == 0
    monkeypatch.setattr(cli_market, "COMPACT_ABOVE", 10)
    monkeypatch.setattr(cli_market, "_deliver", None)  # the plain writer must not be used
    assert runner.invoke(app, ["market", "run", str(market_file), "-o", str(fast)]).exit_code == 0
    shown = runner.invoke(app, ["market", "run", str(market_file), "--json", "--no-withholding"])
    assert shown.exit_code == 0
    fast_doc, plain_doc = json.loads(fast.read_bytes()), json.loads(plain.read_bytes())
    for doc in (fast_doc, plain_doc):
        doc["provenance"]["seconds"] = 0.0
        doc["source"]["computed"] = ""
    # the plain path indents at this size: compare the compact encoding of both documents
    assert to_json(fast_doc) == to_json(plain_doc)
    assert re.fullmatch(rb"\{\"kind\":\"market\".*\}\n", fast.read_bytes(), re.DOTALL)
    assert "withholding" not in json.loads(shown.stdout)
    assert json.loads(shown.stdout)["transfers"] == fast_doc["transfers"]
    assert verify(fast_doc).ok
    checked = runner.invoke(app, ["verify", str(fast)])
    assert checked.exit_code == 0, checked.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator setting")
def test_keep_freed_memory_is_accepted_by_glibc() -> None:
    assert keep_freed_memory()
    assert np.ones(4_000_000).sum() == 4_000_000  # allocations still work


def test_forked_work_returns_the_same_texts_and_falls_back_when_the_child_fails() -> None:
    parent = os.getpid()
    texts = [b"", b"a" * 200_000, b"\x00\xff"]
    job = Forked(lambda: [*texts, str(os.getpid()).encode()])
    assert job.forked == (sys.platform == "linux")
    *got, pid = job.result()
    assert got == texts
    assert (int(pid) != parent) == job.forked  # computed by the child where there is one

    def fails_in_child() -> list[bytes]:
        if os.getpid() != parent:
            raise RuntimeError("child failure")
        return [b"computed here"]

    assert Forked(fails_in_child).result() == [b"computed here"]
    assert Forked(lambda: [b"x"], fork=False).result() == [b"x"]
    slow = Forked(lambda: [b"never"] if time.sleep(60) is None else [])
    slow.cancel()  # returns at once: the child is killed


@pytest.mark.parametrize("fork", [True, False])
def test_input_texts_give_the_market_hash_and_text(fork: bool) -> None:
    market = generate_market(20, 15, np.random.default_rng(9))
    doc = market.to_dict()
    texts = InputTexts(market, fork=fork)
    assert market.sha256 == sha256_of(doc)  # from the child where there is one
    assert texts.sha256() == sha256_of(doc)
    assert texts.json() == to_json(doc)
    outcome = vcg_market(market)
    assert outcome.provenance.input_sha256 == sha256_of(doc)
    plain = market_result(market, outcome)
    assert market_result_json(market, outcome, texts=texts) == to_json(plain)
