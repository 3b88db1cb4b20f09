"""The result contract (issue 16): kind-tagged, versioned documents whose published JSON Schemas
are current; one sign convention for transfers; reports read documents and never solve.

References: the seed auction's VCG payments 9 and 5 and core (VCG-nearest) payments 11.5 and 7.5
are the published numbers of tests/cases/seed_vcg_3x4.ref.json and of the VCG tutorial (bidders 1
and 4 together offer 19 for A, B and C, so the winners' payments must sum to at least 19; the
nearest point to (9, 5) on p1 + p2 = 19 splits the 5 missing equally). The market's sign
convention is checked by arithmetic on the document (a producer's utility is its transfer minus
its cost), not against the code's own numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import EXAMPLES
from pivotal.auctions.formats import load_auction
from pivotal.auctions.payment_rules import run_auction
from pivotal.cli import app
from pivotal.markets import vcg_market
from pivotal.markets.curves import Role, marginal
from pivotal.markets.market import Agent, Market, load_market
from pivotal.negotiation.scenario import truck_example
from pivotal.negotiation.simulation import simulate
from pivotal.report import build_report
from pivotal.report.documents import MODELS
from pivotal.results import (
    SCHEMA_VERSION,
    Outcome,
    Provenance,
    ResultKind,
    Tolerances,
)

REPO = Path(__file__).resolve().parents[1]
SEED = EXAMPLES / "seed_vcg_3x4.json"
MARKET = EXAMPLES / "market_seed.json"
REF = json.loads((REPO / "tests" / "cases" / "seed_vcg_3x4.ref.json").read_text())
runner = CliRunner()


def _run_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


@pytest.fixture(scope="module")
def documents() -> dict[ResultKind, dict[str, Any]]:
    return {
        ResultKind.AUCTION: _run_json("auction", "run", str(SEED)),
        ResultKind.MARKET: _run_json("market", "run", str(MARKET)),
        ResultKind.NEGOTIATION: _run_json("negotiate", "run", "--scenario", "truck-example"),
    }


def test_published_schemas_are_current() -> None:
    for kind, model in MODELS.items():
        path = REPO / "docs" / "schemas" / f"{kind.value}-result.schema.json"
        assert path.exists(), f"{path} is missing: run scripts/result-schemas"
        assert json.loads(path.read_text()) == model.model_json_schema(), (
            f"{path.name} is out of date: run scripts/result-schemas"
        )


def test_every_document_is_tagged_and_matches_its_model(
    documents: dict[ResultKind, dict[str, Any]],
) -> None:
    for kind, doc in documents.items():
        assert list(doc)[:2] == ["kind", "schema_version"]
        assert doc["kind"] == kind.value and doc["schema_version"] == SCHEMA_VERSION
        MODELS[kind].model_validate(doc)  # raises on a missing, extra or mistyped field
        assert len(doc["provenance"]["input_sha256"]) == 64


def test_the_auction_comparison_is_computed_at_run_time(
    documents: dict[ResultKind, dict[str, Any]],
) -> None:
    comparison = documents[ResultKind.AUCTION]["comparison"]
    assert comparison["vcg"]["payments"] == {k: float(v) for k, v in REF["payments"].items()}
    assert comparison["vcg_in_core"] is False
    assert sorted(comparison["blocking"]["bidders"]) == ["1", "4"]
    assert comparison["blocking"]["offer"] == pytest.approx(19.0)
    core = comparison["core"]["payments"]
    assert core["2"] == pytest.approx(11.5, abs=1e-6) and core["3"] == pytest.approx(7.5, abs=1e-6)
    poly = comparison["polytope"]
    assert sorted(poly["winners"]) == ["2", "3"]
    assert poly["joint_rhs"] == pytest.approx(19.0)
    by_winner = dict(zip(poly["winners"], poly["upper"], strict=True))
    assert by_winner == {b: float(v) for b, v in REF["winner_values"].items()}


def test_outcomes_follow_the_protocol_and_one_sign_convention() -> None:
    auction = load_auction(SEED)
    a = run_auction(auction)
    market = load_market(MARKET)
    m = vcg_market(market)
    n = simulate(truck_example(), check=False).outcome
    for outcome, kind in ((a, ResultKind.AUCTION), (m, ResultKind.MARKET), (n, "negotiation")):
        assert isinstance(outcome, Outcome)
        assert outcome.kind == kind
        assert set(outcome.transfers) == set(outcome.participants) == set(outcome.utilities)
    # Auction: transfers are paid to the bidder, so they are the payments' negatives, and a
    # bidder's utility is its value plus its transfer.
    for b in auction.bidders:
        assert a.transfers[b] == -float(REF["payments"].get(b, 0))
        assert a.utilities[b] == pytest.approx(a.values[b] + a.transfers[b])
    # Market: a producer is paid (transfer > 0) and its utility is transfer - cost; a buyer pays.
    for agent in market.agents:
        t, v = m.transfers[agent.name], m.values[agent.name]
        if agent.role.value == "producer":
            assert m.utilities[agent.name] == pytest.approx(t - v)
        else:
            assert m.utilities[agent.name] == pytest.approx(v + t)
    # Negotiation: a party's utility is its cost saving plus its transfer.
    for p in n.participants:
        saving = n.costs[p]["status_quo"] - n.costs[p]["joint"]
        assert n.utilities[p] == pytest.approx(saving + n.transfers[p])


def test_provenance_always_names_its_input() -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        Provenance("vcg", "", "highs", "1", Tolerances())
    rising = marginal(Role.PRODUCER, lambda q: 1.0 + q, 10.0)
    falling = marginal(Role.BUYER, lambda q: 20.0 - q, 10.0)
    market = Market((Agent("p", rising), Agent("b", falling)))
    assert len(vcg_market(market).provenance.input_sha256) == 64


class _SolverCalled(AssertionError):
    pass


def _refuse(*args: object, **kwargs: object) -> None:
    raise _SolverCalled("a solver was called while reporting")


def test_reporting_calls_no_solver(
    documents: dict[ResultKind, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import highspy
    import osqp

    monkeypatch.setattr(highspy.Highs, "run", _refuse)
    monkeypatch.setattr(osqp.OSQP, "solve", _refuse)
    monkeypatch.setattr(osqp.OSQP, "setup", _refuse)
    for kind, doc in documents.items():
        report = build_report(doc)
        assert report.kind == kind.value and report.figures
    auction = build_report(documents[ResultKind.AUCTION])
    assert "outside the core" in auction.finding and "raises 19" in auction.finding
    assert [f.key for f in auction.figures] == ["bidders", "core"]
    path = tmp_path / "auction.json"
    path.write_text(json.dumps(documents[ResultKind.AUCTION]))
    result = runner.invoke(app, ["report", str(path), "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output


def test_a_document_written_before_the_contract_is_still_read(
    documents: dict[ResultKind, dict[str, Any]],
) -> None:
    legacy = {
        k: v for k, v in documents[ResultKind.MARKET].items() if k not in {"kind", "schema_version"}
    }
    assert build_report(legacy).kind == "market"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "lottery"}, "unknown result kind 'lottery'"),
        ({"schema_version": SCHEMA_VERSION + 1}, "schema version"),
        ({"welfare": "a lot"}, "welfare"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_document_is_refused_in_one_line(
    documents: dict[ResultKind, dict[str, Any]],
    tmp_path: Path,
    change: dict[str, Any],
    message: str,
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**documents[ResultKind.AUCTION], **change}))
    result = runner.invoke(app, ["report", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_reporting_leaves_the_matplotlib_backend_alone(tmp_path: Path) -> None:
    code = (
        "import matplotlib; matplotlib.use('svg'); "
        "import pivotal.report.render, pivotal.report; "
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "svg"
