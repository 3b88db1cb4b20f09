"""VCG procurement markets: hand computations, an independent LP/QP path, invariants, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pivotal.cli import app
from pivotal.errors import InputError, InvalidCurveError
from pivotal.markets import (
    Agent,
    Market,
    Role,
    audit_market,
    best_withholding,
    draw_market,
    linear,
    marginal,
    market_from_document,
    piecewise_linear,
    quadratic,
    vcg_market,
)
from pivotal.markets.aggregate import AggregateMarket, solve_all
from pivotal.markets.audit import audit_agent
from pivotal.markets.reference import reference_quantities, reference_welfare

runner = CliRunner()


def seed_market() -> Market:
    return market_from_document(
        {
            "producers": [
                {"name": "maker", "cost": {"kind": "quadratic", "a": 2, "b": 0.5}, "capacity": 20}
            ],
            "buyers": [
                {"name": "gov", "benefit": {"kind": "quadratic", "a": 10, "b": 0.5}, "capacity": 20}
            ],
        }
    )


def test_seed_one_buyer_one_producer() -> None:
    # Hand computation: b(x) = 10x - x^2/2, c(y) = 2y + y^2/2. Marginals meet where
    # 10 - z = 2 + z: z* = 4, p* = 6; b(4) = 40 - 8 = 32, c(4) = 8 + 8 = 16, W* = 16.
    # Without either agent nothing trades (W_-k = 0), so each contributes W* = 16:
    # the producer is paid c + 16 = 32 = b(z*), the buyer is charged b - 16 = 16 = c(z*),
    # and the deficit 32 - 16 = 16 equals the welfare.
    outcome = vcg_market(seed_market())
    assert outcome.price == pytest.approx(6.0)
    assert outcome.quantities == {"maker": pytest.approx(4.0), "gov": pytest.approx(4.0)}
    assert outcome.welfare == pytest.approx(16.0)
    assert outcome.transfers["maker"] == pytest.approx(32.0)  # b(z*)
    assert outcome.transfers["gov"] == pytest.approx(-16.0)  # charged c(z*)
    assert outcome.budget == pytest.approx(16.0) == outcome.welfare
    assert outcome.uniform_price.payments == {
        "maker": pytest.approx(24.0),
        "gov": pytest.approx(-24.0),
    }


def test_no_gains_from_trade() -> None:
    market = Market(
        (
            Agent("p", linear(Role.PRODUCER, 10.0, 5.0)),
            Agent("b", linear(Role.BUYER, 5.0, 5.0)),
        )
    )
    outcome = vcg_market(market)
    assert outcome.traded == 0 and outcome.welfare == 0
    assert outcome.transfers == {"p": 0.0, "b": 0.0}
    assert outcome.price == pytest.approx(5.0)  # the smallest clearing price


def test_steps_and_ties() -> None:
    # Two identical step producers (5 units at 3 each) and a buyer wanting 6 units at 10:
    # p* = 3, both producers are indifferent and share the 6 units equally.
    market = Market(
        (
            Agent("p1", linear(Role.PRODUCER, 3.0, 5.0)),
            Agent("p2", linear(Role.PRODUCER, 3.0, 5.0)),
            Agent("b", linear(Role.BUYER, 10.0, 6.0)),
        )
    )
    outcome = vcg_market(market)
    assert outcome.price == pytest.approx(3.0)
    assert outcome.quantities == {"p1": 3.0, "p2": 3.0, "b": 6.0}
    assert outcome.welfare == pytest.approx(42.0)  # 60 - 18
    # removing a producer leaves the other 5 units: W_-p = 50 - 15 = 35, contribution 7
    assert outcome.utilities["p1"] == pytest.approx(7.0)
    # the buyer's removal leaves nothing: contribution 42
    assert outcome.utilities["b"] == pytest.approx(42.0)


def test_callable_marginal_cost_matches_closed_form() -> None:
    closed = seed_market()
    generic = closed.replace("maker", marginal(Role.PRODUCER, lambda q: 2.0 + q, 20.0))
    a, b = vcg_market(closed), vcg_market(generic)
    assert b.price == pytest.approx(a.price, abs=1e-9)
    for name in ("maker", "gov"):
        assert b.transfers[name] == pytest.approx(a.transfers[name], abs=1e-8)
    assert b.provenance.solver == "bisection"


def test_array_path_equals_object_path() -> None:
    draw = draw_market(20, 25, np.random.default_rng(3))
    market = draw.market()
    fast = solve_all(draw.aggregate())
    objects = solve_all(AggregateMarket(market.agents))
    assert fast.price == objects.price
    np.testing.assert_allclose(fast.welfare_without, objects.welfare_without, rtol=1e-12, atol=1e-9)


@st.composite
def markets(draw: st.DrawFn) -> Market:
    seed = draw(st.integers(0, 10_000))
    n_p = draw(st.integers(1, 5))
    n_b = draw(st.integers(1, 5))
    return draw_market(n_p, n_b, np.random.default_rng(seed)).market()


@settings(max_examples=60, deadline=None)
@given(markets())
def test_against_independent_lp_qp(market: Market) -> None:
    outcome = vcg_market(market)
    w_star = reference_welfare(market.agents)
    assert outcome.welfare == pytest.approx(w_star, rel=1e-6, abs=1e-6)
    reference_q = reference_quantities(market)
    unique = all(abs(reference_q[n] - q) <= 1e-6 for n, q in outcome.quantities.items())
    for agent in market.agents:
        w_minus = reference_welfare(market.without(agent.name))
        # utility = marginal contribution, independent of tie-breaking
        assert outcome.utilities[agent.name] == pytest.approx(w_star - w_minus, rel=1e-6, abs=1e-6)
        if unique:  # with a unique allocation the transfers themselves must agree
            value = agent.curve.value(reference_q[agent.name])
            gain = w_star - w_minus
            expected = value + gain if agent.role is Role.PRODUCER else -(value - gain)
            assert outcome.transfers[agent.name] == pytest.approx(expected, rel=1e-6, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(markets())
def test_mechanism_invariants(market: Market) -> None:
    outcome = vcg_market(market)
    tol = 1e-9 * max(1.0, outcome.welfare)
    assert all(u >= -tol for u in outcome.utilities.values())  # individual rationality
    # net revenue (charges collected minus payments made) is never positive
    assert -outcome.budget <= tol
    # Weak duality: W*_-k <= total surplus of the others at p*, so each agent's VCG utility
    # W* - W*_-k is at least its own surplus (profit) at the uniform price p*.
    for name, u in outcome.utilities.items():
        assert u >= outcome.uniform_price.profits[name] - tol


@settings(max_examples=10, deadline=None)
@given(markets())
def test_no_grid_misreport_raises_vcg_utility(market: Market) -> None:
    for agent in market.agents:
        result = audit_agent(market, agent.name)
        assert result.vcg_gain <= 1e-9 * max(1.0, abs(result.vcg_truthful))


def test_withholding_pays_under_uniform_price_not_under_vcg() -> None:
    # A dominant producer (cost 2q + 0.1q^2, 30 units) facing a competitive fringe.
    market = market_from_document(
        {
            "producers": [
                {"name": "big", "cost": {"kind": "quadratic", "a": 2, "b": 0.1}, "capacity": 30},
                {"name": "fringe", "cost": {"kind": "quadratic", "a": 3, "b": 1.0}, "capacity": 10},
            ],
            "buyers": [
                {
                    "name": "gov",
                    "benefit": {"kind": "quadratic", "a": 12, "b": 0.25},
                    "capacity": 40,
                }
            ],
        }
    )
    w = best_withholding(market, "big")
    assert w.best_fraction < 0.99
    assert w.best.price > w.truthful.price
    assert w.profit_gain > 0.1 and w.welfare_loss > 0
    assert max(v for _, _, _, v in w.curve) <= w.truthful.vcg_utility + 1e-9
    report = audit_market(market)
    assert report.passed
    assert next(a for a in report.agents if a.name == "big").uniform_gain > 0.1


P_OK = {"name": "p", "cost": {"kind": "linear", "a": 1}, "capacity": 1}
B_OK = {"name": "b", "benefit": {"kind": "linear", "a": 2}, "capacity": 1}


def _doc(producers: list[dict[str, object]], buyers: list[dict[str, object]]) -> dict[str, object]:
    return {"producers": producers, "buyers": buyers}


def _p(cost: dict[str, object], **extra: object) -> dict[str, object]:
    return {"name": "p", "cost": cost, **extra}


def _b(benefit: dict[str, object], **extra: object) -> dict[str, object]:
    return {"name": "b", "benefit": benefit, **extra}


PWL = "piecewise_linear"
BAD = {
    "duplicate": (_doc([P_OK], [dict(B_OK, name="p")]), "agent name 'p' is used twice"),
    "non_convex": (
        _doc([_p({"kind": PWL, "points": [[0, 0], [1, 5], [2, 6]]})], [B_OK]),
        "must be convex",
    ),
    "non_concave": (
        _doc([P_OK], [_b({"kind": PWL, "points": [[0, 0], [1, 1], [2, 5]]})]),
        "must be concave",
    ),
    "negative_capacity": (
        _doc([_p({"kind": "linear", "a": 1}, capacity=-1)], [B_OK]),
        "capacity -1.0 is negative",
    ),
    "unknown_kind": (
        _doc([_p({"kind": "cubic", "a": 1}, capacity=1)], [B_OK]),
        "unknown curve kind 'cubic'",
    ),
    "no_producers": (_doc([], [B_OK]), "no producers"),
    "no_buyers": (_doc([P_OK], []), "no buyers"),
    "negative_b": (
        _doc([_p({"kind": "quadratic", "a": 1, "b": -1}, capacity=1)], [B_OK]),
        "non-convex",
    ),
    "missing_capacity": (_doc([_p({"kind": "linear", "a": 1})], [B_OK]), "capacity is missing"),
    "string_number": (
        _doc([_p({"kind": "linear", "a": "1"}, capacity=1)], [B_OK]),
        "expected a finite number",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_markets(name: str) -> None:
    doc, message = BAD[name]
    with pytest.raises((InputError, InvalidCurveError), match=message):
        market_from_document(doc)


@pytest.mark.parametrize("name", sorted(BAD) + ["infinite"])
def test_bad_market_files_one_line_exit_2(name: str, tmp_path: Path) -> None:
    path = tmp_path / "market.json"
    if name == "infinite":
        path.write_text(
            '{"producers": [{"name": "p", "cost": {"kind": "linear", "a": 1e999}, "capacity": 1}],'
            ' "buyers": [{"name": "b", "benefit": {"kind": "linear", "a": 2}, "capacity": 1}]}'
        )
        message = "expected finite numbers"
    else:
        doc, message = BAD[name]
        path.write_text(json.dumps(doc))
    target = tmp_path / "out.json"
    result = runner.invoke(app, ["market", "run", str(path), "-o", str(target)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not target.exists()


def test_market_run_json(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed_market().to_dict()))
    result = runner.invoke(app, ["market", "run", str(path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for key in (
        "price",
        "welfare",
        "quantities",
        "transfers",
        "budget",
        "utilities",
        "uniform_price",
        "provenance",
    ):
        assert key in doc
    assert doc["transfers"]["maker"] == pytest.approx(32.0)
    assert doc["uniform_price"]["price"] == pytest.approx(6.0)
    assert doc["withholding"]["producer"] == "maker"


def test_market_generate_and_audit(tmp_path: Path) -> None:
    path = tmp_path / "market.json"
    gen = runner.invoke(
        app,
        ["market", "generate", "--producers", "3", "--buyers", "2", "--seed", "4", "-o", str(path)],
    )
    assert gen.exit_code == 0, gen.output
    audit = runner.invoke(app, ["market", "audit", str(path), "--json"])
    assert audit.exit_code == 0, audit.output
    doc = json.loads(audit.stdout)
    assert doc["passed"] and len(doc["agents"]) == 5
    bad = runner.invoke(app, ["market", "generate", "--producers", "0", "-o", str(path)])
    assert bad.exit_code == 2 and "--producers must be at least 1" in bad.stderr


def test_piecewise_capacity_cut() -> None:
    curve = piecewise_linear(Role.PRODUCER, [[0, 0], [2, 4], [4, 12]], 3.0)
    assert curve.capacity == 3.0 and curve.value(3.0) == pytest.approx(8.0)
    with pytest.raises(InvalidCurveError, match="exceeds the last point"):
        piecewise_linear(Role.PRODUCER, [[0, 0], [2, 4]], 3.0)
    assert quadratic(Role.BUYER, 10, 0.5, 4).value(4) == pytest.approx(32.0)
