"""A damaged or rolled-back negotiation database is refused or named, never a traceback.

Damage: a finished truck-example negotiation is written by the coordinator's own state (in
process), then its database is damaged by hand in each of the ways an outside probe of issue 14
found to end in a traceback (bad JSON in ``meta``, non-JSON ``answers.parties``, a plan blob of
odd length, each table dropped) and more; ``pivotal serve coordinator`` must print one line
naming the file and exit 2. Random byte flips in the file must give a result or a pivotal
error, nothing else.

Rollback: over the real service, the database is put back to an older copy while the agents run;
the agents, which remember the furthest round they saw committed, stop with one line naming the
rollback instead of running those rounds again.
"""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _service import CLI, Deployment, deploy, follow_until
from pivotal.errors import PivotalError
from pivotal.negotiation.deployment import load_config, load_private
from pivotal.negotiation.scenario import generate_scenario, truck_example
from pivotal.negotiation.transfers import answer
from pivotal.service.state import open_state
from pivotal.service.wire import Answer


def answer_step(state: Any, parties: dict[str, Any]) -> None:
    """Every awaited party answers its task (the last answer completes the step: a commit)."""
    for name in state.session.missing():
        task = state.session.task(name)
        value = answer(parties[name], task)
        body = {"costs": value} if isinstance(value, dict) else {"plan": value.tolist()}
        state.submit(
            name, Answer(schema_version=1, phase=str(task.phase), round=task.round, **body)
        )


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding a whole truck-example negotiation (checkpointed: one file)."""
    root = tmp_path_factory.mktemp("finished")
    d = deploy(root, truck_example())
    state, _ = open_state(d.db, d.config)
    config = load_config(d.config)
    parties = {p: load_private(d.private(p), config) for p in d.parties}
    while state.session.status == "running":
        answer_step(state, parties)
    state.store.close()
    with sqlite3.connect(d.db) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return d.db


def _sql(*statements: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        db = sqlite3.connect(path)
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()

    return damage


def _truncate(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


FIRST_PLANS = "(SELECT MIN(seq) FROM answers WHERE plans IS NOT NULL)"
DAMAGE = {
    # the seven that ended in a traceback (issue 14)
    "bad meta JSON": (_sql("UPDATE meta SET value = '{not json' WHERE key = 'config'"), "meta"),
    "non-JSON parties": (_sql("UPDATE answers SET parties = 'vendor' WHERE seq = 1"), "parties"),
    "odd-length plan blob": (
        _sql(f"UPDATE answers SET plans = substr(plans, 1, 13) WHERE seq = {FIRST_PLANS}"),
        "plans",
    ),
    "dropped meta": (_sql("DROP TABLE meta"), "meta"),
    "dropped credentials": (_sql("DROP TABLE credentials"), "credentials"),
    "dropped answers": (_sql("DROP TABLE answers"), "answers"),
    "dropped rounds": (_sql("DROP TABLE rounds"), "rounds"),
    # and more of the same kind
    "meta config a list": (_sql("UPDATE meta SET value = '[]' WHERE key = 'config'"), "config"),
    "parties of numbers": (_sql("UPDATE answers SET parties = '[1, 2]' WHERE seq = 1"), "parties"),
    "sizes not JSON": (
        _sql(f"UPDATE answers SET sizes = 'x' WHERE seq = {FIRST_PLANS}"),
        "sizes",
    ),
    "costs not numbers": (
        _sql('UPDATE answers SET costs = \'[{"joint": "1"}]\' WHERE costs IS NOT NULL'),
        "costs",
    ),
    "costs not JSON": (_sql("UPDATE answers SET costs = '{' WHERE costs IS NOT NULL"), "costs"),
    "credential hash damaged": (_sql("UPDATE credentials SET token_sha256 = 'x'"), "credentials"),
    "round as text": (_sql("UPDATE rounds SET round = 'x' WHERE rowid = 1"), "rounds"),
    "file cut in half": (_truncate, "damaged"),
}


@pytest.mark.parametrize("kind", list(DAMAGE), ids=list(DAMAGE))
def test_each_kind_of_damage_is_one_line_and_exit_2(
    finished: Path, tmp_path: Path, kind: str
) -> None:
    damage, named = DAMAGE[kind]
    db = tmp_path / "damaged.sqlite"
    shutil.copy(finished, db)
    damage(db)
    before = db.read_bytes()
    proc = subprocess.run(
        [*CLI, "serve", "coordinator", "--db", str(db), "--port", "0", "--no-access-log"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(db) in lines[0] and named in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert db.read_bytes() == before  # nothing was written


def test_random_byte_flips_give_a_result_or_a_named_error(finished: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    size = finished.stat().st_size
    outcomes: dict[str, int] = {}
    for trial in range(60):
        db = tmp_path / f"flip{trial}.sqlite"
        shutil.copy(finished, db)
        data = bytearray(db.read_bytes())
        for at in rng.integers(0, size, size=int(rng.integers(1, 8))):
            data[at] ^= int(rng.integers(1, 256))
        db.write_bytes(bytes(data))
        try:
            state, _ = open_state(db, None)
        except PivotalError as exc:
            assert "\n" not in str(exc) and str(db) in str(exc), str(exc)
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
        else:
            state.store.close()
            outcomes["opened"] = outcomes.get("opened", 0) + 1
    assert sum(outcomes.values()) == 60 and len(outcomes) >= 2, outcomes


# ------------------------------------------------------------------ rollback
@pytest.fixture
def running(tmp_path: Path) -> Iterator[Deployment]:
    d = deploy(tmp_path, generate_scenario(4, 3, 3, 2, 3, np.random.default_rng(7)))
    yield d
    d.stop()


def _kill(d: Deployment) -> None:
    assert d.coordinator is not None
    d.coordinator.send_signal(signal.SIGKILL)
    d.coordinator.wait()


@pytest.mark.slow
def test_a_database_rolled_back_under_running_agents_is_named(running: Deployment) -> None:
    d = running
    url = d.start_coordinator()
    port = int(url.rsplit(":", 1)[1])
    agents = {p: d.start_agent(p) for p in d.parties}
    follow_until(d, "joint", 3)
    _kill(d)
    older = d.root / "older"
    older.mkdir()
    for f in d.root.glob("negotiation.sqlite*"):  # the database as it was at that point
        shutil.copy(f, older / f.name)
    with sqlite3.connect(older / d.db.name) as db:
        at_copy = db.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
    d.start_coordinator(port)
    follow_until(d, "joint", 30)  # the agents see many more rounds committed
    _kill(d)
    with sqlite3.connect(d.db) as db:
        at_kill = db.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
    assert at_kill > at_copy + 5
    for f in d.root.glob("negotiation.sqlite*"):
        f.unlink()
    for f in older.iterdir():
        shutil.copy(f, d.root / f.name)
    d.start_coordinator(port)
    codes = {p: a.wait(timeout=120) for p, a in agents.items()}
    assert all(code == 1 for code in codes.values()), codes
    for p in d.parties:
        log = (d.root / f"agent-{p}.log").read_text()
        lines = [x for x in log.splitlines() if x.startswith("error:")]
        assert len(lines) == 1 and "was rolled back" in lines[0], log
        assert re.search(r"saw (joint|without:vendor\d) round \d+ committed", lines[0]), lines
        assert "Traceback" not in log
    time.sleep(0.2)
    status = d.status()  # the coordinator ran nothing again: nobody answered the old rounds
    assert status["status"] in ("running", "waiting")
    assert len(status["residuals"]) <= at_copy + 1


def test_a_round_that_cannot_be_committed_is_a_store_error_or_the_servers_stop(
    tmp_path: Path,
) -> None:
    """The session moved on but the database did not: the library raises StoreError; the
    server's hook (which stops the process so that a restart replays) gets the same error."""
    from pivotal.errors import StoreError

    def complete_a_step(state: Any, d: Deployment) -> None:
        config = load_config(d.config)
        answer_step(state, {p: load_private(d.private(p), config) for p in d.parties})

    d = deploy(tmp_path / "library", truck_example())
    state, _ = open_state(d.db, d.config)
    state.store.close()  # every later write fails (sqlite3.ProgrammingError)
    with pytest.raises(StoreError, match="cannot commit to"):
        complete_a_step(state, d)
    d = deploy(tmp_path / "server", truck_example())
    state, _ = open_state(d.db, d.config)
    stopped: list[StoreError] = []
    state.on_lost_commit = stopped.append
    state.store.close()
    complete_a_step(state, d)
    assert len(stopped) == 1 and "cannot commit to" in str(stopped[0])
