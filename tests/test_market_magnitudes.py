"""Markets exact at every magnitude and curvature (issue 20), against an exact rational reference.

Reference: :mod:`market_reference` (Fractions; every breakpoint checked, no floating point, no
solver). Tolerances are relative to the utilities compared, with a floor of 1e-12 of the money
magnitude (welfare, or the largest agent's value at capacity) for utilities near 0.
"""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from market_reference import exact_utilities
from pivotal.cli import app
from pivotal.errors import InvalidCurveError
from pivotal.markets import (
    Agent,
    Market,
    Role,
    audit_market,
    draw_market,
    linear,
    market_from_document,
    piecewise_linear,
    quadratic,
    vcg_market,
)
from pivotal.markets.aggregate import exact_cumsum
from pivotal.markets.audit import outcome_checks
from pivotal.markets.misreports import scale
from pivotal.results import Tolerances

runner = CliRunner()


def assert_matches_reference(market: Market, rel: float = 1e-9) -> None:
    outcome = vcg_market(market)
    w, utilities = exact_utilities(market)
    gross = max(abs(a.curve.value(a.curve.capacity)) for a in market.agents)
    floor = 1e-12 * max(abs(float(w)), gross)
    assert outcome.welfare == pytest.approx(float(w), rel=rel, abs=floor)
    for name, u in utilities.items():
        assert outcome.utilities[name] == pytest.approx(float(u), rel=rel, abs=floor), name
    supply = sum(outcome.quantities[a.name] for a in market.producers)
    demand = sum(outcome.quantities[a.name] for a in market.buyers)
    assert supply == pytest.approx(demand, rel=1e-12, abs=1e-300)


def near_linear(b: float) -> Market:
    # the issue's first case: cost 1e6 q + b q^2 (cap 10) against a buyer of 4 units at 5e6
    return market_from_document(
        {
            "producers": [
                {"name": "p", "cost": {"kind": "quadratic", "a": 1e6, "b": b}, "capacity": 10.0}
            ],
            "buyers": [{"name": "g", "benefit": {"kind": "linear", "a": 5e6}, "capacity": 4.0}],
        }
    )


@pytest.mark.parametrize("b", [1e-10, 1e-11, 1e-12])
def test_issue_20_near_linear_quadratic(b: float) -> None:
    # main at 8ad0e74: u_p = 9,515,904 and supply 4.0745 (b = 1e-10), u_p < 0 (1e-11), no trade
    # (1e-12). Truth: 4 units trade, W = 4 * 5e6 - (4e6 + 16 b), both agents contribute all of it
    outcome = vcg_market(near_linear(b))
    truth = 16e6 - 16 * b
    assert outcome.quantities == {"p": 4.0, "g": 4.0}
    assert outcome.utilities["p"] == pytest.approx(truth, rel=1e-15)
    assert outcome.utilities["g"] == pytest.approx(truth, rel=1e-15)
    assert_matches_reference(near_linear(b))
    assert audit_market(near_linear(b)).passed


def test_issue_20_everyday_case() -> None:
    # producer linear 6 (cap 10), buyers X linear 16 (cap 4) and Y quadratic a=13, b=1.7e-9
    # (cap 8). By hand: Y buys 6 at p = 13 - 2 b 6; W = 64 + 78 - 36 b - 60;
    # W_-X = 104 - 64 b - 48, W_-Y = 64 - 24: u_X = 26 + 28 b, u_Y = 42 - 36 b.
    market = market_from_document(
        {
            "producers": [{"name": "P", "cost": {"kind": "linear", "a": 6.0}, "capacity": 10.0}],
            "buyers": [
                {"name": "X", "benefit": {"kind": "linear", "a": 16.0}, "capacity": 4.0},
                {
                    "name": "Y",
                    "benefit": {"kind": "quadratic", "a": 13.0, "b": 1.7e-9},
                    "capacity": 8.0,
                },
            ],
        }
    )
    outcome = vcg_market(market)
    b = Fraction(1.7e-9)
    assert outcome.utilities["X"] == pytest.approx(float(26 + 28 * b), rel=1e-13)  # 26.0000000476
    assert outcome.utilities["Y"] == pytest.approx(float(42 - 36 * b), rel=1e-13)  # 41.9999999388
    assert_matches_reference(market)


def curvature_market(b: float) -> Market:
    """Three producers and three buyers around a = 1e6, the quadratics with curvature ``b``."""
    p, q = Role.PRODUCER, Role.BUYER
    return Market(
        (
            Agent("p1", quadratic(p, 1.0e6, b, 10.0)),
            Agent("p2", quadratic(p, 1.2e6, b, 6.0)),
            Agent("p3", piecewise_linear(p, [[0, 0], [2, 3.0e6], [5, 1.05e7]])),
            Agent("g1", linear(q, 5.0e6, 4.0)),
            Agent("g2", quadratic(q, 3.0e6, 3 * b, 8.0)),
            Agent("g3", quadratic(q, 1.1e6, b, 9.0)),
        )
    )


@pytest.mark.parametrize("exponent", range(0, -13, -1))
def test_curvature_sweep_against_exact_reference(exponent: int) -> None:
    # issue 20's must-show: utilities within 1e-9 relative for b from 1 down to 1e-12 at a = 1e6
    assert_matches_reference(curvature_market(10.0**exponent))


@pytest.mark.parametrize("factor", [1e-9, 1e-6, 1e-3, 1.0, 1e3, 1e6, 1e9, 1e12, 1e15])
def test_generated_market_scales_with_money(factor: float) -> None:
    base = draw_market(4, 5, np.random.default_rng(11)).market()
    scaled = Market(tuple(Agent(a.name, scale(a.curve, factor)) for a in base.agents))
    assert_matches_reference(scaled)
    reference = vcg_market(base)
    outcome = vcg_market(scaled)
    for name, u in reference.utilities.items():
        assert outcome.utilities[name] == pytest.approx(u * factor, rel=1e-9, abs=1e-12 * factor)


@st.composite
def near_linear_markets(draw: st.DrawFn) -> Market:
    """Small markets whose quadratics have curvature from 1 down to 1e-13 next to large a."""
    agents = []
    for role, prefix in ((Role.PRODUCER, "p"), (Role.BUYER, "g")):
        for i in range(draw(st.integers(1, 3))):
            a = draw(st.sampled_from([1e6, 1.5e6, 2e6, 3e6])) * draw(st.sampled_from([1.0, 1.1]))
            cap = float(draw(st.integers(1, 10)))
            kind = draw(st.sampled_from(["linear", "quadratic"]))
            if kind == "linear":
                curve = linear(role, a, cap)
            else:
                curve = quadratic(role, a, 10.0 ** draw(st.integers(-13, 0)), cap)
            agents.append(Agent(f"{prefix}{i}", curve))
    return Market(tuple(agents))


@settings(max_examples=60, deadline=None)
@given(near_linear_markets())
def test_near_linear_markets_against_exact_reference(market: Market) -> None:
    assert_matches_reference(market)


def test_exact_cumsum_cancels_steep_slopes_exactly() -> None:
    # a slope of 5e9 (b = 1e-10) starts and ends: the slopes after it must be exactly the rest
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [[5e9, 0.3, -5e9], rng.uniform(-1, 1, 50) * 10.0 ** rng.integers(-8, 12, 50)]
    )
    prefix = np.cumsum([Fraction(v) for v in x])
    got = exact_cumsum(x)
    for g, p in zip(got, prefix, strict=True):
        assert g == pytest.approx(float(p), rel=1e-15, abs=1e-300)
    assert got[2] == 0.3
    assert np.cumsum(x)[2] != 0.3  # what plain prefix sums leave


def test_subnormal_or_absurd_curves_are_refused(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(near_linear(1.0).to_dict()))
    doc["producers"][0]["cost"]["b"] = 1e-310  # gave NaN: --json ended in a traceback
    with pytest.raises(InvalidCurveError, match="outside the accepted magnitudes"):
        market_from_document(doc)
    path = tmp_path / "subnormal.json"
    path.write_text(json.dumps(doc))
    for extra in (["--json"], []):
        result = runner.invoke(app, ["market", "run", str(path), *extra])
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "1e-310 is outside the accepted magnitudes" in lines[0]
        assert "nan" not in result.stdout.lower()
    with pytest.raises(InvalidCurveError, match="outside the accepted magnitudes"):
        linear(Role.PRODUCER, 1e150, 1.0)


def test_audit_compares_quantities_with_quantities() -> None:
    # main at 8ad0e74 passed "supply 4.0745 = demand 4": its slack was a money amount (0.16
    # at W = 1.6e7) applied to quantities
    market = near_linear(1e-10)
    outcome = vcg_market(market)
    assert all(c.passed for c in outcome_checks(market, outcome, Tolerances()))
    skewed = dataclasses.replace(outcome, quantities={"p": 4.0745362639427185, "g": 4.0})
    balance = next(c for c in outcome_checks(market, skewed, Tolerances()) if c.name == "balance")
    assert not balance.passed
