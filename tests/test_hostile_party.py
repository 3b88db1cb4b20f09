"""A party with a valid token that sends garbage: refused, named, and without effect.

Over the real coordinator (a process on 127.0.0.1, a free port) the test itself plays both
parties of the truck example, answering every task from their private data as the agents do;
at chosen steps one party first sends a hostile answer (the magnitudes and forms of issue 14's
probe). Each must get a 4xx naming the problem and leave the negotiation where it was; then the
honest answer goes in, and the negotiation ends with the plan and transfers of the undisturbed
in-process run (same session code, same agents) to 1e-9.

In process, with no public bounds at all, the coordinator's own guard is checked: a step that
would go non-finite (or to a zero penalty) is refused with the answer that completes it, the
state is unchanged, and the run, with the honest answer re-sent, is bit for bit the undisturbed
one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from _service import Deployment, deploy
from pivotal.errors import UnsafeStepError
from pivotal.negotiation.deployment import load_config, load_private
from pivotal.negotiation.scenario import truck_example
from pivotal.negotiation.session import NegotiationSession, SessionTerms
from pivotal.negotiation.simulation import build_parties, simulate
from pivotal.negotiation.transfers import answer, settle
from pivotal.service.client import answer_body
from test_service import assert_same, stored_plans

# (phase, round, party) -> hostile bodies (the fields after schema_version/phase/round, or raw
# bytes) with the text the refusal must contain
Probe = tuple[dict[str, Any] | bytes, str]
PROBES: dict[tuple[str, int, str], list[Probe]] = {
    ("status_quo", 0, "retailer"): [
        ({"plan": [1e308, 1e308]}, "plan[0] = 1e+308 is outside the public bound"),
        ({"plan": ["1.0", "1.0"]}, "plan.0: Input should be a valid number"),
        ({"plan": [1.0, "NaN"]}, "plan.1: Input should be a valid number"),
    ],
    ("joint", 0, "vendor"): [({"plan": [1e6, 0.0]}, "max_quantity = 50000")],
    ("joint", 1, "vendor"): [({"plan": [1e12, 1e12]}, "plan[0] = 1e+12 is outside")],
    ("joint", 2, "vendor"): [({"plan": [0.0, 1e50]}, "plan[1] = 1e+50 is outside")],
    ("joint", 3, "vendor"): [({"plan": [1e200, -1e200]}, "plan[0] = 1e+200 is outside")],
    ("joint", 4, "vendor"): [({"plan": [1e308, 1e308]}, "max_quantity = 50000")],
    ("joint", 5, "vendor"): [({"plan": [-1e200, 0.0]}, "plan[0] = -1e+200 is outside")],
    ("joint", 6, "retailer"): [
        ({"plan": ["NaN", "NaN"]}, "plan.0: Input should be a valid number"),
        ({"plan": [True, False]}, "plan.0: Input should be a valid number"),
        (
            b'{"schema_version": 1, "phase": "joint", "round": 6, "plan": [NaN, 1]}',
            "plan.0: Input should be a finite",
        ),
    ],
    ("joint", 7, "vendor"): [
        ({"plan": ["1.0", "1.0"]}, "plan.0: Input should be a valid number"),
        ({"plan": [1.0, 1.0], "schema_version": True}, "schema_version"),
    ],
    ("costs", 0, "vendor"): [
        (
            {"costs": {"status_quo": 1e308, "joint": 1.0, "bound:joint": 1.0}},
            "costs['status_quo'] = 1e+308",
        ),
        (
            {"costs": {"status_quo": "12", "joint": 1.0, "bound:joint": 1.0}},
            "Input should be a valid number",
        ),
    ],
}


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = deploy(tmp_path, truck_example())
    d.start_coordinator()
    yield d
    d.stop()


def test_hostile_answers_are_refused_and_the_outcome_is_the_undisturbed_one(
    deployment: Deployment,
) -> None:
    d = deployment
    config = load_config(d.config)
    assert config.bounds.max_quantity == 50_000  # 10 x the total demand of 5,000 cases
    parties = {p: load_private(d.private(p), config) for p in d.parties}
    probes = {k: list(v) for k, v in PROBES.items()}
    refusals: list[tuple[int, str]] = []
    client = httpx.Client(base_url=d.url, timeout=30)
    steps = 0
    while True:
        status = client.get("/status").json()
        if status["status"] != "running":
            break
        names = list(status["waiting_for"])
        if status["round"] % 2:  # the hostile party answers first on odd rounds, last on even
            names.reverse()
        for name in names:
            headers = d.headers(name)
            task = client.get(f"/v1/parties/{name}/task", headers=headers).json()
            head = {"schema_version": 1, "phase": task["phase"], "round": task["round"]}
            for body, expected in probes.pop((task["phase"], task["round"], name), []):
                if isinstance(body, bytes):
                    raw = headers | {"Content-Type": "application/json"}
                    r = client.post(f"/v1/parties/{name}/answers", headers=raw, content=body)
                else:
                    r = client.post(
                        f"/v1/parties/{name}/answers", headers=headers, json=head | body
                    )
                refusals.append((r.status_code, r.text))
                assert r.status_code == 422, (body, r.text)
                assert expected in r.text, (expected, r.text)
                after = client.get("/status").json()  # nothing moved, nothing was recorded
                assert (after["phase"], after["round"]) == (task["phase"], task["round"])
                assert name in after["waiting_for"]
            body = answer_body(parties[name], task)
            r = client.post(f"/v1/parties/{name}/answers", headers=headers, json=head | body)
            assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
        steps += 1
        assert steps < 1000
    client.close()
    assert status["status"] == "done", status
    assert not probes, f"probes never sent: {list(probes)}"
    assert len(refusals) == sum(len(v) for v in PROBES.values())
    assert_same(d.outcome(), simulate(truck_example(), check=False), 1e-9)
    d.stop()
    # every step's answers were recorded once each: no refused answer left a trace
    for (phase, round_, _), _probes in PROBES.items():
        if phase == "costs":
            continue
        stored = [p for p, _ in stored_plans(d.db, phase, round_)]
        expected = ["retailer", "vendor"] if phase == "joint" else ["retailer"]
        assert sorted(stored) == expected


# ------------------------------------------------------------------ the guard, without bounds
def _fresh() -> tuple[NegotiationSession, dict[str, Any]]:
    hub, vendors, blocks = build_parties(truck_example())
    terms = SessionTerms(hub.name, tuple(v.name for v in vendors), tuple(b.size for b in blocks))
    assert terms.max_quantity == np.inf  # the in-process default: no public bounds
    return NegotiationSession(terms), {p.name: p for p in [hub, *vendors]}


def _run(
    session: NegotiationSession,
    parties: dict[str, Any],
    hostile: dict[tuple[str, int, str], Any],
) -> list[str]:
    refused = []
    while session.status == "running":
        for name in session.missing():
            task = session.task(name)
            bad = hostile.pop((str(task.phase), task.round, name), None)
            if bad is not None:
                before = (session.phase, session.round, session.missing(), session.task(name))
                run = session.coordinators.get(task.phase)
                history = len(run.history) if run is not None else 0
                with pytest.raises(UnsafeStepError) as exc:
                    session.submit(name, task.phase, task.round, bad)
                refused.append(str(exc.value))
                assert (session.phase, session.round, session.missing()) == before[:3]
                again = session.task(name)
                assert again.kind == before[3].kind and again.round == before[3].round
                if again.z is not None and before[3].z is not None:
                    assert np.array_equal(again.z, before[3].z)
                    assert np.array_equal(again.prices, before[3].prices)  # type: ignore[arg-type]
                    assert again.rho == before[3].rho
                if run is not None:
                    assert len(run.history) == history
            session.submit(name, task.phase, task.round, answer(parties[name], task))
    return refused


def test_without_bounds_a_step_that_would_break_is_refused_and_can_be_answered_again() -> None:
    session, parties = _fresh()
    _run(session, parties, {})
    reference = settle(session, input_sha256="0" * 64)
    session, parties = _fresh()
    hostile = {
        # the mean of the status quo overflows: rho would be 0 (a ZeroDivisionError before)
        ("status_quo", 0, "retailer"): np.array([1e308, 1e308]),
        # the vendor completes these rounds (it answers after the retailer)
        ("joint", 0, "vendor"): np.array([1e200, -1e200]),
        ("joint", 3, "vendor"): np.array([1e308, 1e308]),
        ("joint", 5, "vendor"): np.array([1e160, 0.0]),
    }
    refused = _run(session, parties, hostile)
    assert not hostile and len(refused) == 4
    assert "penalty rho = 0" in refused[0]
    assert all("would" in r for r in refused[1:]), refused
    got = settle(session, input_sha256="0" * 64)
    assert got.transfers == reference.transfers  # bit for bit: the refusals changed nothing
    for a, b in zip(got.plan, reference.plan, strict=True):
        assert np.array_equal(a, b)
    assert got.rounds == reference.rounds


def test_convergence_needs_finite_residuals() -> None:
    """``inf <= inf``: with infinite tolerances an infinite residual would have counted as
    converged; now the round is refused instead of ending the run 'converged'."""
    from pivotal.negotiation.admm import AdmmSettings
    from pivotal.negotiation.coordinator import Coordinator, PartyView

    c = Coordinator([1], [PartyView("a", (0,)), PartyView("b", (0,))], AdmmSettings(rho=1.0))
    with pytest.raises(UnsafeStepError, match="primal_residual would be inf"):
        c.advance({"a": np.array([1e300]), "b": np.array([-1e300])})
    assert not c.converged and not c.done and c.round == 0 and c.history == []
    assert c.advance({"a": np.array([1.0]), "b": np.array([1.0])})
    assert c.round == 1 and json.dumps(c.result().plan[0].tolist()) == "[1.0]"


# ------------------------------------------------------------------ one bearer parser
@pytest.mark.parametrize(
    ("form", "accepted"),
    [
        ("Bearer {t}", True),
        ("bearer {t}", True),
        ("BEARER {t}", True),
        ("Bearer  {t}", False),  # two spaces: accepted over HTTP and refused over WS before
        ("Bearer\t{t}", False),
        ("Basic {t}", False),
        ("Bearer {t} x", False),
        ("Bearer", False),
        ("{t}", False),
    ],
)
def test_http_and_websocket_read_the_bearer_token_alike(form: str, accepted: bool) -> None:
    from pivotal.service.wire import bearer_token

    token = "AbC-_09~+/x=="
    assert (bearer_token(form.format(t=token)) == token) is accepted


def test_both_transports_apply_the_same_rules(deployment: Deployment) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    d = deployment
    token = d.token("retailer")
    stream = f"{d.url.replace('http://', 'ws://')}/v1/parties/retailer/stream"
    for form, code in [("Bearer {t}", 200), ("bearer {t}", 200), ("Bearer  {t}", 401)]:
        header = {"Authorization": form.format(t=token)}
        r = httpx.get(f"{d.url}/v1/parties/retailer/task", headers=header)
        assert r.status_code == code, form
        if code == 200:
            with connect(stream, additional_headers=header, open_timeout=10) as ws:
                assert json.loads(ws.recv(timeout=10))["kind"] == "status_quo"
        else:
            with pytest.raises(InvalidStatus) as refused:
                connect(stream, additional_headers=header, open_timeout=10)
            assert refused.value.response.status_code == code


# ------------------------------------------------------------------ /status reveals progress only
def _numbers(doc: Any) -> list[float]:
    if isinstance(doc, bool):
        return []
    if isinstance(doc, int | float):
        return [float(doc)]
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in _numbers(v)]
    if isinstance(doc, list):
        return [x for v in doc for x in _numbers(v)]
    return []


def _inversions(
    values: list[float], p: int, eps_abs: float, eps_rel: float, *, pairs: bool = True
) -> list[float]:
    """What an outsider would try on numbers it sees: the tolerance formula backwards (over the
    two copies of the truck example's plan, the hub's and the vendor's, hence sqrt(2)), the
    initial penalty ``3 / mean(z0)`` backwards, reciprocals, powers, and (``pairs``) ratios and
    products of two numbers."""
    out: list[float] = []
    for v in values:
        if v == 0 or not np.isfinite(v):
            continue
        norm = (v - np.sqrt(p) * eps_abs) / eps_rel  # a norm over the copies of the plan
        out += [v, 1 / v, norm, norm / np.sqrt(2), 3 / v, abs(v) ** 0.5, v * v]
    for a in values if pairs else ():
        for b in values:
            if a and b and a is not b:
                out += [a / b, a * b]
    return out


def _hits(candidates: list[float], targets: list[float]) -> list[tuple[float, float]]:
    return [(c, t) for t in targets if t > 1e-9 for c in candidates if abs(c - t) <= 1e-3 * abs(t)]


def test_public_status_over_a_whole_run_cannot_be_inverted(deployment: Deployment) -> None:
    import sqlite3
    import threading

    d = deployment
    config = load_config(d.config)
    seen: list[dict[str, Any]] = []

    def follow() -> None:
        count = 0
        while True:
            doc = httpx.get(f"{d.url}/status", params={"since": count, "wait": 30}, timeout=40)
            seen.append(doc.json())
            count = len(seen[-1]["residuals"])
            if seen[-1]["status"] in ("done", "failed"):
                return

    follower = threading.Thread(target=follow)
    follower.start()
    agents = [d.start_agent(p) for p in d.parties]
    for a in agents:
        assert a.wait(timeout=120) == 0, d.log_text()
    follower.join(timeout=60)
    final = d.status()
    seen.append(final)
    assert final["status"] == "done"
    mine = httpx.get(f"{d.url}/status", headers=d.headers("vendor")).json()
    assert len(mine["own_residuals"]) == len(final["residuals"]) and final["own_residuals"] is None
    d.stop()
    _draws_in_the_live_page(final)
    p = sum(config.terms().local_size(x) for x in config.parties)
    eps_abs, eps_rel = config.admm.eps_abs, config.admm.eps_rel
    with sqlite3.connect(d.db) as db:
        rounds = db.execute(
            "SELECT phase, round, primal, dual, eps_primal, eps_dual, rho, plan, prices "
            "FROM rounds ORDER BY rowid"
        ).fetchall()
    assert len(rounds) == len(final["residuals"]) > 10  # every round was seen
    # the secrets, per round: norms of the plan (and of its copies), of the prices, and every
    # absolute quantity that depends on them
    secret: dict[tuple[str, int], list[float]] = {}
    for phase, round_, primal, dual, eps_p, eps_d, rho, plan, prices in rounds:
        z, lam = np.frombuffer(plan, "<f8"), np.frombuffer(prices, "<f8")
        norm_z = float(np.linalg.norm(z))
        floor = np.sqrt(p) * eps_abs
        secret[(phase, round_)] = [
            norm_z, np.sqrt(2) * norm_z, float(np.linalg.norm(lam)), eps_p, eps_d, rho, primal,
            dual, (eps_p - floor) / eps_rel, (eps_d - floor) / eps_rel,
        ]  # fmt: skip
    demand = 5000.0
    # the test can fail: the tolerances /status used to publish give the demand back
    old = [e for (_, _, _, _, e, *_rest) in rounds]
    assert _hits(_inversions(old, p, eps_abs, eps_rel, pairs=False), [demand])
    for doc in seen:
        # every number but the clock (seconds_in_round is wall time, public and unrelated to
        # private data; at 5 ms it would "give" 5000 through the tolerance formula by chance)
        everything = _numbers({k: v for k, v in doc.items() if k != "seconds_in_round"})
        # every number alone (pairs are tried within a round below: across a whole document
        # of hundreds of numbers, some product or ratio lands near any target by chance)
        candidates = _inversions(everything, p, eps_abs, eps_rel, pairs=False)
        assert not _hits(candidates, [demand]), doc
        for point in doc["residuals"]:
            assert set(point) == {"phase", "round", "primal_ratio", "dual_ratio"}
            values = [point["primal_ratio"], point["dual_ratio"]]
            targets = secret[(point["phase"], point["round"])]
            assert not _hits(_inversions(values, p, eps_abs, eps_rel), targets), point


def _draws_in_the_live_page(status: dict[str, Any]) -> None:
    """The live page's script (``/``) renders a real ``/status`` document: one primal and one
    dual trace per phase with the ratios, in node with stand-ins for the DOM and Plotly (the
    browser test in test_report.py draws it for real where a browser is installed)."""
    import re
    import shutil
    import subprocess

    from pivotal.report.html import live_status_page

    node = shutil.which("node")
    if node is None:
        return
    script = re.findall(r"<script>(.*?)</script>", live_status_page("x"), re.S)[-1]
    harness = (
        "var els = {}; var document = {getElementById: function (id) {"
        " return els[id] = els[id] || {}; }};"
        "var window = {addEventListener: function () {}}; var drawn = null;"
        "var Plotly = {react: function (id, traces) { drawn = traces; }};"
        f"{script}; render({json.dumps(status)});"
        "console.log(JSON.stringify({state: els.state.textContent,"
        " traces: drawn.map(function (t) { return [t.name, t.y]; })}));"
    )
    run = subprocess.run([node, "-e", harness], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    drawn = json.loads(run.stdout)
    assert drawn["state"] == "done"
    joint = [r for r in status["residuals"] if r["phase"] == "joint"]
    assert drawn["traces"][0] == ["joint primal", [r["primal_ratio"] for r in joint]]
    assert drawn["traces"][1] == ["joint dual", [r["dual_ratio"] for r in joint]]
