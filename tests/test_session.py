"""The negotiation session as a state machine: order of answers and replay do not matter.

The coordinator service relies on two properties checked here with hypothesis: within a step the
order in which parties answer does not change anything, and replaying the recorded answers into a
fresh session (all of them, or a prefix followed by live answers, as after a crash) gives
bit-for-bit the same outcome. Reference: the in-order in-process run of the same agents.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.errors import InputError
from pivotal.negotiation.scenario import generate_scenario
from pivotal.negotiation.session import NegotiationSession, SessionTerms, StaleMessageError
from pivotal.negotiation.simulation import build_parties
from pivotal.negotiation.transfers import answer, settle
from pivotal.results import sha256_of

SCENARIO = generate_scenario(2, 2, 2, 1, 2, np.random.default_rng(5))


def fresh() -> tuple[NegotiationSession, dict[str, Any]]:
    hub, vendors, blocks = build_parties(SCENARIO)
    terms = SessionTerms(hub.name, tuple(v.name for v in vendors), tuple(b.size for b in blocks))
    return NegotiationSession(terms), {p.name: p for p in [hub, *vendors]}


def drive(
    session: NegotiationSession, parties: dict[str, Any], order: random.Random | None
) -> list[tuple[str, str, int, Any]]:
    """Run to the end, answering in a shuffled order; return the accepted answers in order."""
    log = []
    while session.status == "running":
        names = list(session.missing())
        if order is not None:
            order.shuffle(names)
        for name in names:
            task = session.task(name)
            value = answer(parties[name], task)
            session.submit(name, task.phase, task.round, value)
            log.append((name, task.phase, task.round, value))
    return log


@pytest.fixture(scope="module")
def reference() -> tuple[dict[str, float], list[tuple[str, str, int, Any]]]:
    session, parties = fresh()
    log = drive(session, parties, None)
    return dict(settle(session, input_sha256=sha256_of("test-session")).transfers), log


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_answer_order_within_a_step_does_not_matter(reference: Any, seed: int) -> None:
    session, parties = fresh()
    drive(session, parties, random.Random(seed))
    assert dict(settle(session, input_sha256=sha256_of("test-session")).transfers) == reference[0]


@settings(max_examples=8, deadline=None)
@given(cut=st.floats(0, 1))
def test_replaying_a_prefix_then_going_on_is_exact(reference: Any, cut: float) -> None:
    transfers, log = reference
    session, _ = fresh()
    stop = int(cut * len(log))
    for name, phase, round_, value in log[:stop]:
        assert session.submit(name, phase, round_, value) == "accepted"
    # the rest arrives live, from the same answers (the agents cached them)
    for name, phase, round_, value in log[stop:]:
        session.submit(name, phase, round_, value)
    assert session.status == "done"
    assert dict(settle(session, input_sha256=sha256_of("test-session")).transfers) == transfers


def test_stale_duplicate_and_malformed_answers(reference: Any) -> None:
    _, log = reference
    session, _ = fresh()
    name, phase, round_, value = log[0]
    with pytest.raises(StaleMessageError):
        session.submit(name, "joint", 3, value)
    with pytest.raises(InputError, match="plan: expected"):
        session.submit(name, phase, round_, np.zeros(1))
    with pytest.raises(InputError, match="finite"):
        session.submit(name, phase, round_, np.full(len(value), np.nan))
    assert session.submit(name, phase, round_, value) == "accepted"
    # the hub's status quo completed the step: the same answer again is now stale
    with pytest.raises(StaleMessageError):
        session.submit(name, phase, round_, value)
    first = [e for e in log if e[1] == "joint" and e[2] == 0]
    session.submit(*first[0])
    assert session.submit(*first[0]) == "duplicate"
    assert session.missing() == tuple(e[0] for e in first[1:])


def test_a_restart_changes_rho_by_at_most_the_bounded_factor() -> None:
    from pivotal.negotiation.admm import RESTART_RHO_FACTOR, restart_rho

    assert restart_rho(1e-3, 0.48, 5.78e-6) == pytest.approx(1e-3 * RESTART_RHO_FACTOR)
    assert restart_rho(3e-3, 1e-12, 1.0) == pytest.approx(3e-3 / RESTART_RHO_FACTOR)
    assert restart_rho(1.0, 2.0, 1.0) == 2.0  # within the bound: the ratio itself
    assert restart_rho(1.0, 0.0, 1.0) == 1.0  # nothing moved: unchanged
