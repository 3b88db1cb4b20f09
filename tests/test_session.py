"""The negotiation session as a state machine: order of answers and replay do not matter.

The coordinator service relies on two properties checked here with hypothesis: the order in which
parties answer (within a step, and across the protocol runs that go on together) does not change
the outcome beyond rounding, and replaying the recorded answers into a
fresh session (all of them, or a prefix followed by live answers, as after a crash) gives
bit-for-bit the same outcome. Reference: the in-order in-process run of the same agents. Both
schedules: counterfactual runs warm-started after the joint run (the default) and cold beside it.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.errors import InputError
from pivotal.negotiation.admm import AdmmSettings
from pivotal.negotiation.scenario import generate_scenario
from pivotal.negotiation.session import (
    JOINT,
    WARM_PLAIN_ROUNDS,
    NegotiationSession,
    Phase,
    SessionTerms,
    StaleMessageError,
)
from pivotal.negotiation.simulation import build_parties, centralized_check, public_max_quantity
from pivotal.negotiation.transfers import answer, settle
from pivotal.results import sha256_of

SCENARIO = generate_scenario(2, 2, 2, 1, 2, np.random.default_rng(5))


def fresh(warm: bool) -> tuple[NegotiationSession, dict[str, Any]]:
    hub, vendors, blocks = build_parties(SCENARIO)
    terms = SessionTerms(
        hub.name,
        tuple(v.name for v in vendors),
        tuple(b.size for b in blocks),
        warm_start_counterfactuals=warm,
    )
    return NegotiationSession(terms), {p.name: p for p in [hub, *vendors]}


@pytest.fixture(scope="module", params=[True, False], ids=["warm", "cold"])
def warm(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def drive(
    session: NegotiationSession, parties: dict[str, Any], order: random.Random | None
) -> list[tuple[str, Phase, int, Any]]:
    """Run to the end, answering the open tasks of every party (one per protocol run that waits
    for it: the runs go on together) in a shuffled order across parties and runs; return the
    accepted answers in order."""
    log = []
    while session.status == "running":
        open_tasks = [(name, task) for name in session.missing() for task in session.tasks(name)]
        if order is not None:
            order.shuffle(open_tasks)
        for name, task in open_tasks:
            value = answer(parties[name], task)
            session.submit(name, task.phase, task.round, value)
            log.append((name, task.phase, task.round, value))
    return log


@pytest.fixture(scope="module")
def reference(
    warm: bool,
) -> tuple[dict[str, float], list[tuple[str, Phase, int, Any]], NegotiationSession]:
    session, parties = fresh(warm)
    log = drive(session, parties, None)
    transfers = dict(settle(session, input_sha256=sha256_of("test-session")).transfers)
    return transfers, log, session


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_answer_order_does_not_change_the_money_beyond_its_bounds(
    reference: Any, warm: bool, seed: int
) -> None:
    # Across runs the order changes which task each party solves first; PIQP keeps a little
    # state between solves of one session (2 of 431 answers differed by 1e-13 of themselves),
    # and a last-bit difference can move a Halpern restart, so a run may end at another point
    # within its tolerance. Both outcomes are within their certified bounds of the exact VCG
    # money, so of each other. Replay is bit for bit (the next test): it takes the recorded
    # answers.
    session, parties = fresh(warm)
    drive(session, parties, random.Random(seed))
    got = settle(session, input_sha256=sha256_of("test-session"))
    ref = settle(reference[2], input_sha256=sha256_of("test-session"))
    for party, money in ref.transfers.items():
        slack = got.transfer_bounds[party] + ref.transfer_bounds[party] + 1e-9 * abs(money)
        assert abs(got.transfers[party] - money) <= slack, party


@settings(max_examples=8, deadline=None)
@given(cut=st.floats(0, 1))
def test_replaying_a_prefix_then_going_on_is_exact(reference: Any, warm: bool, cut: float) -> None:
    transfers, log, _ = reference
    session, _ = fresh(warm)
    stop = int(cut * len(log))
    for name, phase, round_, value in log[:stop]:
        assert session.submit(name, phase, round_, value) == "accepted"
    # the rest arrives live, from the same answers (the agents cached them)
    for name, phase, round_, value in log[stop:]:
        session.submit(name, phase, round_, value)
    assert session.status == "done"
    assert dict(settle(session, input_sha256=sha256_of("test-session")).transfers) == transfers


def test_stale_duplicate_and_malformed_answers(reference: Any, warm: bool) -> None:
    _, log, _ = reference
    session, _ = fresh(warm)
    name, phase, round_, value = log[0]
    with pytest.raises(StaleMessageError):
        session.submit(name, JOINT, 3, value)
    with pytest.raises(InputError, match="plan: expected"):
        session.submit(name, phase, round_, np.zeros(1))
    with pytest.raises(InputError, match="finite"):
        session.submit(name, phase, round_, np.full(len(value), np.nan))
    assert session.submit(name, phase, round_, value) == "accepted"
    # the hub's status quo completed the step: the same answer again is now stale
    with pytest.raises(StaleMessageError):
        session.submit(name, phase, round_, value)
    first = [e for e in log if e[1] == JOINT and e[2] == 0]
    session.submit(*first[0])
    assert session.submit(*first[0]) == "duplicate"
    # the joint run waits for the others; cold, the first party still has the other runs to
    # answer (warm, they start after the joint run)
    assert JOINT not in [t.phase for t in session.tasks(first[0][0])]
    for other in first[1:]:
        assert JOINT in [t.phase for t in session.tasks(other[0])]
    assert session.runs[JOINT] == 0
    if warm:
        assert list(session.runs) == [JOINT] and session.tasks(first[0][0]) == ()
    else:  # joint and two counterfactuals
        assert len(session.runs) == 3


def test_a_restart_keeps_rho_within_its_band_around_the_initial_penalty() -> None:
    from pivotal.negotiation.admm import RHO_BAND, restart_rho

    # the explosion of 2-2-2-2-2 seed 4 --interacting and the collapse of K20 seed 7
    assert restart_rho(1.5e-3, 0.48, 5.78e-6, 1.5e-3) == pytest.approx(1.5e-3 * RHO_BAND)
    assert restart_rho(1.5e-5, 2.02e-8, 314.0, 1.5e-3) == pytest.approx(1.5e-3 / RHO_BAND)
    assert restart_rho(1.0, 2.0, 1.0, 1.0) == 2.0  # within the band: the ratio itself
    assert restart_rho(1.0, 0.0, 1.0, 1.0) == 1.0  # nothing moved: unchanged


@pytest.mark.parametrize("plain", [0, 2])
def test_a_warm_run_that_uses_up_its_rounds_goes_on_cold_and_replays_exactly(plain: int) -> None:
    # A warm-started counterfactual run tries `plain` rounds of plain ADMM, then may take as
    # many rounds as the joint run did (here 20, the joint run cut short) with its own
    # settings; then the same run goes on cold, numbering its rounds on. It converges, replays
    # bit for bit, and its money is within its bounds of the centralized VCG money
    # (independent LPs).
    scenario = generate_scenario(4, 3, 3, 2, 2, np.random.default_rng(1))
    hub, vendors, blocks = build_parties(scenario)
    terms = SessionTerms(
        hub.name,
        tuple(v.name for v in vendors),
        tuple(b.size for b in blocks),
        AdmmSettings(max_rounds=20),
        AdmmSettings(),
        require_convergence=False,
        max_quantity=public_max_quantity(scenario),
        warm_plain_rounds=plain,
    )
    session, parties = NegotiationSession(terms), {p.name: p for p in [hub, *vendors]}
    log = drive(session, parties, None)
    assert session.joint is not None and session.joint.rounds == 20
    for vendor, run in session.counterfactuals.items():
        # plain rounds, 20 warm rounds, then cold ones; the run that ended is the cold one
        assert run.converged and run.rounds > plain + 20, vendor
        assert run.history[0].round == plain + 20, vendor
        numbers = [r for _, phase, r, _ in log if phase == Phase.without(vendor)]
        assert sorted(set(numbers)) == list(range(run.rounds)), vendor
    outcome = settle(session, input_sha256=sha256_of("test-session"))
    again = NegotiationSession(terms)
    for name, phase, round_, value in log:
        assert again.submit(name, phase, round_, value) == "accepted"
    assert settle(again, input_sha256=sha256_of("test-session")).transfers == outcome.transfers
    assert not outcome.kept_status_quo
    exact = centralized_check(scenario, outcome)
    for p in outcome.parties:
        assert abs(outcome.gains[p] - exact.gains[p]) <= outcome.gain_bounds[p] + 1e-9, p


def test_warm_runs_try_plain_admm_first() -> None:
    # Near the joint run's end plain ADMM converges in a few rounds where the restarted
    # Halpern iteration, anchored to its start, takes more: every run without a vendor ends
    # in its plain stage, in fewer rounds than without that stage, and its money is within
    # its bounds of the centralized VCG money (independent LPs).
    scenario = generate_scenario(4, 3, 3, 2, 2, np.random.default_rng(1))
    hub, vendors, blocks = build_parties(scenario)
    parties = {p.name: p for p in [hub, *vendors]}
    rounds = {}
    for plain in (WARM_PLAIN_ROUNDS, 0):
        terms = SessionTerms(
            hub.name,
            tuple(v.name for v in vendors),
            tuple(b.size for b in blocks),
            max_quantity=public_max_quantity(scenario),
            warm_plain_rounds=plain,
        )
        session = NegotiationSession(terms)
        drive(session, parties, None)
        outcome = settle(session, input_sha256=sha256_of("test-session"))
        assert outcome.provenance.parameters["warm_plain_rounds"] == plain
        exact = centralized_check(scenario, outcome)
        for p in outcome.parties:
            assert abs(outcome.gains[p] - exact.gains[p]) <= outcome.gain_bounds[p] + 1e-9, p
        rounds[plain] = sum(r.rounds for r in outcome.counterfactuals.values())
        if plain:
            for vendor, run in outcome.counterfactuals.items():
                assert run.converged and run.history[0].round == 0, vendor
                assert run.rounds <= plain, vendor
    assert rounds[WARM_PLAIN_ROUNDS] < rounds[0]


@pytest.mark.parametrize("plain", [-1, 10**6 + 1])
def test_warm_plain_rounds_out_of_range_is_refused(plain: int) -> None:
    with pytest.raises(InputError, match="warm_plain_rounds"):
        SessionTerms("r", ("v",), (1,), warm_plain_rounds=plain)
