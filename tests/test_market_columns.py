"""The columnar market path (issue 15.6): the same curves, hash, values and outcome as the
per-agent path, and misreports cleared against the aggregate equal to a full re-clearing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from pivotal.cli import app
from pivotal.errors import InputError, InvalidCurveError
from pivotal.markets import Agent, Market, Role, draw_market, linear, piecewise_linear, quadratic
from pivotal.markets.aggregate import AggregateMarket, aggregate_of, solve_all
from pivotal.markets.clearing import clear
from pivotal.markets.market import market_from_document, market_per_agent
from pivotal.markets.misreports import DeviationScorer, scale, withhold
from pivotal.markets.table import table_from_document
from pivotal.results import canonical_json

runner = CliRunner()


def odd_document(seed: int) -> dict[str, Any]:
    """A valid document with every shape the reader accepts: integers, explicit and cut
    capacities (down to 0), quadratics with b = 0, non-ASCII names, tiny and huge numbers."""
    rng = np.random.default_rng(seed)
    doc = draw_market(6, 5, rng).market().to_dict()
    doc = copy.deepcopy(doc)
    doc["producers"].append({"name": 'é∑ "q"', "cost": {"kind": "linear", "a": 3}, "capacity": 2})
    doc["producers"].append(
        {"name": "flat", "cost": {"kind": "quadratic", "a": 1e-5, "b": 0}, "capacity": 1e16}
    )
    pts = [[0, 0], [1, 2], [3, 8.5], [4, 12.5]]
    doc["producers"].append(
        {"name": "cut", "cost": {"kind": "piecewise_linear", "points": pts}, "capacity": 2.5}
    )
    doc["producers"].append(
        {"name": "cut0", "cost": {"kind": "piecewise_linear", "points": pts}, "capacity": 0}
    )
    doc["producers"].append(
        {"name": "full", "cost": {"kind": "piecewise_linear", "points": pts}, "capacity": 4}
    )
    doc["buyers"].append(
        {
            "name": "tiny",
            "benefit": {"kind": "quadratic", "a": 9, "b": 2.5e-7},
            "capacity": 3,
        }
    )
    doc["buyers"].append(
        {
            "name": "none",
            "benefit": {"kind": "piecewise_linear", "points": [[0, 0], [2, 20], [5, 26]]},
            "capacity": None,
        }
    )
    return doc


@pytest.mark.parametrize("seed", range(6))
def test_columns_read_the_same_curves_as_the_per_agent_path(seed: int) -> None:
    doc = odd_document(seed)
    table = table_from_document(doc)
    assert table is not None
    fast = Market.from_table(table)
    slow = market_per_agent(doc)
    assert fast.agents == slow.agents  # every number and kind equal
    assert fast.to_dict() == slow.to_dict()
    # the hash is the canonical JSON of the input form, built by the standard encoder
    assert fast.table.canonical_json() == canonical_json(slow.to_dict())
    assert fast.sha256 == slow.sha256
    q = np.random.default_rng(seed).uniform(-1, 12, len(slow.agents))
    expected = [a.curve.value(x) for a, x in zip(slow.agents, q.tolist(), strict=True)]
    assert fast.table.values(q).tolist() == expected
    pieces = [p for a in slow.agents for p in a.curve.pieces()]
    t0, t1, size, _ = fast.table.pieces()
    assert list(zip(t0.tolist(), t1.tolist(), size.tolist(), strict=True)) == pieces


BAD: list[Any] = [
    [],
    {"producers": [], "buyers": []},
    {"producers": [{"name": "p", "cost": {"kind": "linear", "a": True}, "capacity": 1}]},
    {
        "producers": [{"name": "p", "cost": {"kind": "linear", "a": "1"}, "capacity": 1}],
        "buyers": [{"name": "b", "benefit": {"kind": "linear", "a": 2}, "capacity": 1}],
    },
    {
        "producers": [{"name": "p", "cost": {"kind": "linear", "a": 1e-200}, "capacity": 1}],
        "buyers": [{"name": "b", "benefit": {"kind": "linear", "a": 2}, "capacity": 1}],
    },
    {
        "producers": [{"name": "p", "cost": {"kind": ["linear"], "a": 1}, "capacity": 1}],
        "buyers": [{"name": "b", "benefit": {"kind": "linear", "a": 2}, "capacity": 1}],
    },
    {
        "producers": [
            {"name": "p", "cost": {"kind": "piecewise_linear", "points": [[0, 0], [1, 5], [2, 6]]}}
        ],
        "buyers": [{"name": "b", "benefit": {"kind": "linear", "a": 2}, "capacity": 1}],
    },
    {
        "producers": [
            {
                "name": "p",
                "cost": {"kind": "piecewise_linear", "points": [[0, 0], [1, 1]]},
                "capacity": 2,
            }
        ],
        "buyers": [{"name": "b", "benefit": {"kind": "linear", "a": 2}, "capacity": 1}],
    },
    {
        "producers": [{"name": "p", "cost": {"kind": "linear", "a": 1}, "capacity": 1}],
        "buyers": [{"name": "p", "benefit": {"kind": "linear", "a": 2}, "capacity": 1}],
    },
    {
        "producers": [{"name": "p", "cost": {"kind": "linear", "a": 1}, "capacity": 1, "x": 0}],
        "buyers": [{"name": "b", "benefit": {"kind": "linear", "a": 2}, "capacity": 1}],
    },
    {
        "producers": [
            {"name": "p", "cost": {"kind": "piecewise_linear", "points": [[0, 0], [1, 1, 2]]}}
        ],
        "buyers": [{"name": "b", "benefit": {"kind": "linear", "a": 2}, "capacity": 1}],
    },
]


@pytest.mark.parametrize("doc", BAD)
def test_columns_leave_every_invalid_document_to_the_per_agent_path(doc: Any) -> None:
    assert table_from_document(doc) is None
    with pytest.raises((InputError, InvalidCurveError)):
        market_from_document(doc)


@pytest.mark.parametrize("seed", range(4))
def test_galloping_counterfactual_prices_equal_plain_bisection(seed: int) -> None:
    market = draw_market(40, 35, np.random.default_rng(seed)).market()
    agg = AggregateMarket(market.agents)
    everyone = np.arange(agg.n, dtype=np.int64)
    solution = solve_all(agg)  # starts each search at p*'s breakpoint
    plain = agg.clearing_prices(everyone)  # bisection over all breakpoints
    expected = agg.welfare(plain, everyone)
    assert solution.welfare_without.tolist() == expected.tolist()


def _scored_by_full_clearing(
    market: Market, name: str, reported: Any
) -> tuple[float, float, float]:
    result = clear(market.replace(name, reported).agents)
    return result.price, result.quantities[name], result.welfare


@pytest.mark.parametrize("seed", range(5))
def test_misreports_against_the_aggregate_equal_a_full_clearing(seed: int) -> None:
    market = draw_market(5, 4, np.random.default_rng(seed)).market()
    for agent in market.agents:
        scorer = DeviationScorer(market, agent.name)
        # W*_-k from the full market's aggregate, against a clearing of the others alone
        assert scorer.w_minus == pytest.approx(
            clear(market.without(agent.name)).welfare, rel=1e-12, abs=1e-12
        )
        for reported in (
            agent.curve,
            withhold(agent.curve, 0.0),
            withhold(agent.curve, 0.37),
            scale(agent.curve, 1.3),
            scale(agent.curve, 0.6),
        ):
            got = scorer._clear(reported)
            want = _scored_by_full_clearing(market, agent.name, reported)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_misreports_at_steps_and_ties() -> None:
    # identical steps at the price: rationing decides the misreporting agent's quantity
    market = Market(
        (
            Agent("p1", linear(Role.PRODUCER, 3.0, 5.0)),
            Agent("p2", linear(Role.PRODUCER, 3.0, 5.0)),
            Agent("p3", quadratic(Role.PRODUCER, 1.0, 0.5, 4.0)),
            Agent("b", linear(Role.BUYER, 10.0, 6.0)),
            Agent("b2", piecewise_linear(Role.BUYER, [[0, 0], [1, 3], [2, 5]])),
        )
    )
    for agent in market.agents:
        scorer = DeviationScorer(market, agent.name)
        for reported in (agent.curve, withhold(agent.curve, 0.5), scale(agent.curve, 2.0)):
            got = scorer._clear(reported)
            want = _scored_by_full_clearing(market, agent.name, reported)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert aggregate_of(market) is aggregate_of(market)  # built once per market


def test_large_market_table_summarizes(tmp_path: Path) -> None:
    path = tmp_path / "market.json"
    doc = draw_market(25, 20, np.random.default_rng(1)).market().to_dict()
    path.write_text(json.dumps(doc))
    result = runner.invoke(app, ["market", "run", str(path), "--no-withholding"])
    assert result.exit_code == 0, result.output
    assert "sums by role" in result.stdout and "P17" not in result.stdout.split("Largest")[0]
    lines = result.stdout.splitlines()
    assert len(lines) < 40
    every = runner.invoke(app, ["market", "run", str(path), "--no-withholding", "--all"])
    assert every.exit_code == 0 and all(f"B{i}" in every.stdout for i in range(1, 21))
