"""Consensus planning with VCG transfers: the truck example by hand, generated scenarios against
the centralized LP, truthfulness through the whole protocol, privacy of the messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pivotal.cli import app
from pivotal.errors import ConvergenceError, InputError, SolverError
from pivotal.negotiation.admm import Acceleration, AdmmSettings, restart_due, restart_rho
from pivotal.negotiation.agents import LpParty
from pivotal.negotiation.coordinator import Coordinator, PartyView
from pivotal.negotiation.cost_models import plan_blocks, scenario_models
from pivotal.negotiation.geography import road_miles
from pivotal.negotiation.protocol import MessageLog
from pivotal.negotiation.scenario import (
    Scenario,
    generate_scenario,
    scenario_from_document,
    truck_example,
)
from pivotal.negotiation.simulation import (
    build_parties,
    public_max_quantity,
    simulate,
    split_blocks,
)
from pivotal.negotiation.transfers import negotiate
from pivotal.solvers import InteriorPointOptions

runner = CliRunner()


def test_truck_example_by_hand() -> None:
    # Trucks carry 10,000 cases at USD 2.25 a mile; road miles = 1.2 x great circle.
    # Status quo (JIT): the retailer orders 5,000 cases into Phoenix (local delivery 0.25 a case)
    # and the vendor sends dedicated trucks Cincinnati -> Phoenix at 2.25 * miles / 10,000 a case
    # on top of production (2 a case). Jointly the vendor fills the Dallas truck's 5,000 cases of
    # spare room (0.01 a case) and the retailer moves them on Dallas -> Phoenix at
    # 0.000225 * miles + 0.25 a case.
    cin_phx, dal_phx = road_miles("Cincinnati", "Phoenix"), road_miles("Dallas", "Phoenix")
    c_r_sq = 5000 * 0.25
    c_v_sq = 5000 * (2.0 + 2.25 * cin_phx / 10000)
    c_r_joint = 5000 * (0.25 + 0.000225 * dal_phx)
    c_v_joint = 5000 * (2.0 + 0.01)
    sim = simulate(truck_example())
    o = sim.outcome
    assert o.converged
    dal = sim.blocks[0].sites.index("DAL")
    plan = sim.blocks[0].as_array(o.plan[0])
    assert plan[0, dal, 0] == pytest.approx(5000, abs=0.5)  # ships via Dallas
    assert o.costs["retailer"]["status_quo"] == pytest.approx(c_r_sq, rel=1e-9)
    assert o.costs["vendor"]["status_quo"] == pytest.approx(c_v_sq, rel=1e-9)
    assert o.costs["retailer"]["joint"] == pytest.approx(c_r_joint, abs=1.0)
    assert o.costs["vendor"]["joint"] == pytest.approx(c_v_joint, abs=1.0)
    assert o.total_cost < o.status_quo_cost - 800  # total cost falls
    # the vendor compensates the retailer exactly its extra cost; the retailer's gain is 0
    assert o.transfers["retailer"] == pytest.approx(
        o.costs["retailer"]["joint"] - o.costs["retailer"]["status_quo"], abs=1e-9
    )
    assert o.gains["retailer"] == pytest.approx(0.0, abs=1e-9)
    # and keeps the whole saving
    saving = (c_r_sq + c_v_sq) - (c_r_joint + c_v_joint)
    assert o.gains["vendor"] == pytest.approx(saving, abs=1.0)
    assert sim.centralized is not None and abs(sim.centralized.relative_gap) < 1e-4


@pytest.mark.parametrize(
    ("size", "seed"),
    [((4, 3, 3, 2, 2), 1), ((6, 4, 4, 3, 3), 3), ((3, 2, 2, 2, 1), 4)],
    ids=["k4f3-2vendors", "k6f4t3-3vendors", "k3f2-1vendor"],
)
def test_generated_scenarios_match_centralized(size: tuple[int, ...], seed: int) -> None:
    check_against_centralized(size, seed, AdmmSettings())


def test_previous_default_still_matches_centralized() -> None:
    # residual balancing with Anderson acceleration (the default before Halpern)
    check_against_centralized((4, 3, 3, 2, 2), 1, AdmmSettings(acceleration="anderson"))


def check_against_centralized(size: tuple[int, ...], seed: int, settings: AdmmSettings) -> None:
    scenario = generate_scenario(*size, np.random.default_rng(seed))
    sim = simulate(scenario, settings)
    o, check = sim.outcome, sim.centralized
    assert o.converged and check is not None
    assert abs(check.relative_gap) <= 1e-4
    for party, transfer in o.transfers.items():
        expected = check.transfers[party]
        assert abs(transfer - expected) <= max(1.0, 1e-3 * abs(expected)), party
    # VCG: every vendor weakly gains against the status quo without a fee
    for vendor in scenario.vendors:
        assert o.gains[vendor.name] >= -1.0


def test_activity_fee_moves_money_to_the_retailer() -> None:
    scenario = generate_scenario(4, 3, 3, 2, 2, np.random.default_rng(1))
    base = simulate(scenario, check=False).outcome
    fee = simulate(scenario, activity_fee=50.0, check=False).outcome
    assert fee.gains["retailer"] == pytest.approx(base.gains["retailer"] + 100.0, abs=1.0)
    for vendor in ("vendor1", "vendor2"):
        assert fee.gains[vendor] == pytest.approx(base.gains[vendor] - 50.0, abs=1.0)
        assert fee.gains_without_fee[vendor] == pytest.approx(base.gains[vendor], abs=1.0)


def _misreport(scenario: Scenario, **changes: float) -> Scenario:
    doc = scenario.to_dict()
    vendor = doc["vendors"][0]
    scale = changes.get("cost_scale", 1.0)
    for factory in vendor["factories"]:
        factory["production_cost"] *= scale
    vendor["truck_cost_per_mile"] *= scale * changes.get("truck_scale", 1.0)
    vendor["scheduled_cost_per_unit"] *= scale
    room = changes.get("room_scale", 1.0)
    for lane in vendor["lanes"]:
        lane["spare_room"] = [r * room for r in lane["spare_room"]]
    return scenario_from_document(doc)


@pytest.mark.parametrize(
    "changes",
    [
        {"cost_scale": 0.7},
        {"cost_scale": 1.3},
        {"room_scale": 0.0},
        {"room_scale": 2.0},
        {"truck_scale": 0.7},
    ],
    ids=["costs-down", "costs-up", "room-hidden", "room-inflated", "truck-cost-understated"],
)
def test_vendor_misreports_never_gain_under_vcg(changes: dict[str, float]) -> None:
    truth = truck_example()
    true_vendor = LpParty("vendor", scenario_models(truth)["vendor"])
    honest = simulate(truth, check=False).outcome
    lie = simulate(_misreport(truth, **changes), check=False).outcome
    # the vendor's true utility after transfers, against its true status-quo cost
    true_sq = true_vendor.cost_at(honest.status_quo_plan[0])

    def true_gain(outcome: object, transfers: dict[str, float]) -> float:
        plan = outcome.plan[0]  # type: ignore[attr-defined]
        return true_sq - true_vendor.cost_at(plan) + transfers["vendor"]

    vcg_truthful = true_gain(honest, dict(honest.transfers))
    vcg_lying = true_gain(lie, dict(lie.transfers))
    assert vcg_lying <= vcg_truthful + 1.0
    # side by side: the naive 50/50 split of the reported saving
    naive_truthful = true_gain(honest, dict(honest.naive_split_transfers))
    naive_lying = true_gain(lie, dict(lie.naive_split_transfers))
    if changes.get("truck_scale", 1.0) < 1.0:
        # Claiming cheaper dedicated trucks understates the vendor's own saving (its status-quo
        # cost); the plan still goes via Dallas, and the 50/50 rule then pays the vendor half of
        # the understatement: 0.5 * 5,000 * 0.3 * 0.43 = about 320.
        assert naive_lying > naive_truthful + 250.0


def test_messages_carry_only_plans_rounds_and_scalar_costs() -> None:
    log = MessageLog()
    scenario = generate_scenario(3, 2, 2, 2, 2, np.random.default_rng(7))
    simulate(scenario, log=log, check=False)
    assert log.messages
    for message in log.messages:
        if message["type"] == "plan":
            assert set(message) == {"type", "party", "round", "plan"}
            assert isinstance(message["round"], int)
            assert all(isinstance(v, float) for v in message["plan"])
        elif message["type"] == "cost":
            assert set(message) == {"type", "party", "plan", "cost"}
            assert message["plan"] in {"status_quo", "joint"} or message["plan"].startswith(
                "without:"
            )
            assert isinstance(message["cost"], float)
        else:  # the value queries that certify the money: one scalar per run taken part in
            assert message["type"] == "value"
            assert set(message) == {"type", "party", "label", "value"}
            assert message["label"] in {"bound:joint"} or message["label"].startswith(
                "bound:without:"
            )
            assert isinstance(message["value"], float)


def test_early_stopped_counterfactuals_are_caught_by_their_bounds() -> None:
    # Two rounds of each counterfactual run, cold or warm-started from the joint run: whatever
    # the money is off by, the certified bound covers it (the bound holds at any iterate, not
    # only at convergence); a cold two-round run is far off and says so.
    scenario = generate_scenario(4, 3, 3, 2, 2, np.random.default_rng(1))
    hub, vendors, blocks = build_parties(scenario)
    sq = split_blocks(blocks, hub.preferred_plan())
    sizes = [b.size for b in blocks]
    exact = simulate(scenario).centralized
    assert exact is not None
    q = public_max_quantity(scenario)
    for warm in (True, False):
        sloppy = negotiate(
            hub,
            vendors,
            sizes,
            sq,
            AdmmSettings(),
            counterfactual_settings=AdmmSettings(max_rounds=2),
            warm_start_counterfactuals=warm,
            require_convergence=False,
            max_quantity=q,
        )
        for p in sloppy.parties:
            assert abs(sloppy.gains[p] - exact.gains[p]) <= sloppy.gain_bounds[p], (warm, p)
        if not warm:
            assert max(abs(sloppy.gains[p] - exact.gains[p]) for p in sloppy.parties) > 1000
            assert min(sloppy.gain_bounds.values()) > 1000
    for warm in (True, False):  # run to convergence (warm is the default)
        full = negotiate(
            hub, vendors, sizes, sq, AdmmSettings(), warm_start_counterfactuals=warm, max_quantity=q
        )
        assert max(full.gain_bounds.values()) <= 1.0, warm
        for p in full.parties:
            assert abs(full.transfers[p] - exact.transfers[p]) <= full.transfer_bounds[p], warm


@pytest.mark.parametrize("acceleration", ["halpern", "anderson", "none"])
def test_coordinator_on_a_closed_form_consensus(acceleration: Acceleration) -> None:
    # Two parties with C_i(x) = (x - a_i)^2 / 2 on one shared number: the consensus optimum is
    # the mean of a_i. Best response to (z, lambda, rho): x = (a_i - lambda + rho z) / (1 + rho).
    a = {"one": 3.0, "two": 7.0}
    coordinator = Coordinator(
        [1],
        [PartyView("one", (0,)), PartyView("two", (0,))],
        AdmmSettings(rho=1.0, acceleration=acceleration),
    )
    broadcasts = coordinator.start()
    while broadcasts:
        broadcasts = coordinator.step(
            {
                n: np.array([(a[n] - b.prices[0] + b.rho * b.z[0]) / (1 + b.rho)])
                for n, b in broadcasts.items()
            }
        )
    result = coordinator.result()
    assert result.converged
    assert result.plan[0][0] == pytest.approx(5.0, abs=1e-4)
    assert result.history[-1].primal_residual <= result.history[-1].eps_primal
    with pytest.raises(InputError, match="the negotiation is over"):
        coordinator.step({"one": np.zeros(1), "two": np.zeros(1)})


def test_halpern_step_anchors_to_the_epoch_start() -> None:
    # Same two parties, rho = 1, alpha = 2, from z = 0 and zero prices. Round 0's answers are
    # x = a / 2 = (1.5, 3.5); the plain Peaceman-Rachford round gives z = mean(2x) = 5 and
    # prices 1 * (2x - 5) = (-2, 2); Halpern's first step is halfway from the anchor (0, 0).
    coordinator = Coordinator(
        [1], [PartyView("one", (0,)), PartyView("two", (0,))], AdmmSettings(rho=1.0)
    )
    coordinator.start()
    b = coordinator.step({"one": np.array([1.5]), "two": np.array([3.5])})
    assert b["one"].z[0] == pytest.approx(2.5) and b["two"].z[0] == pytest.approx(2.5)
    assert b["one"].prices[0] == pytest.approx(-1.0) and b["two"].prices[0] == pytest.approx(1.0)
    assert coordinator.history[0].primal_residual == pytest.approx(np.hypot(3.5, 1.5))


def test_halpern_restart_rules() -> None:
    # sufficient decay, necessary decay with an uptick, a long epoch, and none of them
    assert restart_due(3, 100, 0.19, 1.0, 0.5)
    assert restart_due(3, 100, 0.7, 1.0, 0.6)
    assert not restart_due(3, 100, 0.7, 1.0, 0.8)
    assert restart_due(20, 100, 0.9, 1.0, 0.8)
    assert not restart_due(19, 100, 0.9, 1.0, None)
    # the penalty after a restart: price movement over plan movement, else unchanged
    assert restart_rho(1.0, 6.0, 3.0, 1.0) == 2.0
    assert restart_rho(1.0, 0.0, 3.0, 1.0) == 1.0
    assert restart_rho(1.0, 6.0, 0.0, 1.0) == 1.0


def test_admm_settings_validation() -> None:
    assert AdmmSettings().relaxation == 2.0
    assert AdmmSettings(acceleration="anderson").relaxation == 1.3
    assert AdmmSettings(alpha=2.0).relaxation == 2.0
    with pytest.raises(InputError, match=r"\[1, 2\)"):
        AdmmSettings(alpha=2.0, acceleration="anderson")
    with pytest.raises(InputError, match="acceleration must be one of 'halpern'"):
        AdmmSettings(acceleration="nesterov")  # type: ignore[arg-type]


def test_coordinator_rejects_bad_responses() -> None:
    coordinator = Coordinator([2], [PartyView("a", (0,)), PartyView("b", (0,))])
    coordinator.start()
    with pytest.raises(InputError, match="missing"):
        coordinator.step({"a": np.zeros(2)})
    with pytest.raises(InputError, match="shape"):
        coordinator.step({"a": np.zeros(3), "b": np.zeros(2)})
    with pytest.raises(InputError, match="finite"):
        coordinator.step({"a": np.array([np.nan, 0.0]), "b": np.zeros(2)})


def test_centralized_models_cover_every_party() -> None:
    scenario = truck_example()
    models = scenario_models(scenario)
    assert set(models) == {"retailer", "vendor"}
    assert models["retailer"].n_plan == plan_blocks(scenario)[0].size


def test_not_converging_is_an_error() -> None:
    with pytest.raises(ConvergenceError, match="did not converge in 2 rounds"):
        simulate(truck_example(), AdmmSettings(max_rounds=2))


def test_cli_run_json() -> None:
    result = runner.invoke(app, ["negotiate", "run", "--scenario", "truck-example", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for key in (
        "plan",
        "status_quo_plan",
        "costs",
        "transfers",
        "gains",
        "rounds",
        "converged",
        "centralized_cost",
        "relative_gap",
        "provenance",
    ):
        assert key in doc
    assert doc["plan"]["vendor"]["cases"]["DAL"][0] == pytest.approx(5000, abs=0.5)
    assert doc["gains"]["retailer"] == pytest.approx(0.0, abs=1e-6)


def test_cli_fee_and_non_convergence() -> None:
    fee = runner.invoke(
        app, ["negotiate", "run", "--scenario", "truck-example", "--activity-fee", "100", "--json"]
    )
    assert fee.exit_code == 0
    assert json.loads(fee.stdout)["gains"]["retailer"] == pytest.approx(100.0, abs=1e-6)
    stuck = runner.invoke(
        app, ["negotiate", "run", "--scenario", "truck-example", "--max-rounds", "2"]
    )
    assert stuck.exit_code == 3
    assert "did not converge in 2 rounds" in stuck.stderr and "primal residual" in stuck.stderr
    assert (
        "raise the round limit (max_rounds)" in stuck.stderr
        and "(option --max-rounds)" in stuck.stderr
    )


def _truck_doc() -> dict[str, object]:
    return truck_example().to_dict()


def _bad(kind: str) -> dict[str, object]:
    doc = json.loads(json.dumps(_truck_doc()))
    if kind == "negative_demand":
        doc["retailer"]["regions"][0]["demand"]["cases"] = [-5.0]
    elif kind == "unknown_site":
        doc["vendors"][0]["lanes"][0]["site"] = "LAX"
    elif kind == "missing_costs":
        del doc["vendors"][0]["units_per_truck"]
    elif kind == "infeasible_capacity":
        doc["vendors"][0]["factories"][0]["capacity"] = [100.0]
    elif kind == "unknown_metro":
        doc["retailer"]["sites"][0]["metro"] = "Atlantis"
    return doc


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("negative_demand", "negative value -5.0"),
        ("unknown_site", "unknown site 'LAX'"),
        ("missing_costs", "units_per_truck: required field is missing"),
        ("infeasible_capacity", "infeasible capacity: vendor 'vendor' can make 100"),
        ("unknown_metro", "unknown metro 'Atlantis'"),
    ],
)
def test_bad_scenarios_exit_2(kind: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(_bad(kind)))
    target = tmp_path / "out.json"
    result = runner.invoke(app, ["negotiate", "run", str(path), "-o", str(target)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not target.exists()


def test_generate_command(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    args = ["negotiate", "generate", "--products", "3", "--sites", "2", "--regions", "2"]
    result = runner.invoke(
        app, [*args, "--weeks", "2", "--vendors", "2", "--seed", "5", "-o", str(target)]
    )
    assert result.exit_code == 0, result.output
    run = runner.invoke(app, ["negotiate", "run", str(target), "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["converged"] is True
    bad = runner.invoke(app, ["negotiate", "generate", "--vendors", "9", "--products", "2"])
    assert bad.exit_code == 2 and "cannot exceed products (2)" in bad.stderr
    assert "(option --vendors)" in bad.stderr  # the library names the parameter, the CLI the flag


def test_an_unconverged_warm_counterfactual_run_suggests_a_cold_start() -> None:
    scenario = generate_scenario(4, 3, 3, 2, 2, np.random.default_rng(1))
    hub, vendors, blocks = build_parties(scenario)
    sq = split_blocks(blocks, hub.preferred_plan())
    sizes = [b.size for b in blocks]
    for warm in (True, False):
        with pytest.raises(ConvergenceError, match="without 'vendor") as failed:
            negotiate(
                hub,
                vendors,
                sizes,
                sq,
                counterfactual_settings=AdmmSettings(max_rounds=2),
                warm_start_counterfactuals=warm,
            )
        assert ("start the counterfactual runs cold" in str(failed.value)) is warm


def test_counterfactuals_warm_by_default_and_cold_on_request(tmp_path: Path) -> None:
    # issue 17: the runs without each vendor start from the joint run's end unless
    # --cold-counterfactuals; either way the money is within its bounds of the centralized VCG
    # money (independent LPs), the document records the choice and `verify` recomputes it
    scenario = tmp_path / "s.json"
    args = ["--products", "3", "--sites", "2", "--regions", "2", "--weeks", "2", "--vendors", "3"]
    made = runner.invoke(app, ["negotiate", "generate", *args, "--seed", "5", "-o", str(scenario)])
    assert made.exit_code == 0, made.output
    docs = {}
    for warm, flags in ((True, []), (False, ["--cold-counterfactuals"])):
        target = tmp_path / f"{warm}.json"
        run = runner.invoke(app, ["negotiate", "run", str(scenario), *flags, "-o", str(target)])
        assert run.exit_code == 0, run.output
        doc = docs[warm] = json.loads(target.read_text())
        assert doc["provenance"]["parameters"]["warm_start_counterfactuals"] is warm
        assert doc["relative_gap"] <= 1e-4
        for p, money in doc["centralized_transfers"].items():
            assert abs(doc["transfers"][p] - money) <= doc["transfer_bounds"][p] + 1e-9, (warm, p)
        checked = runner.invoke(app, ["verify", str(target)])
        assert checked.exit_code == 0, checked.output
    # the same joint run; warm, the counterfactual runs start at the joint plan: fewer rounds
    assert docs[True]["rounds"] == docs[False]["rounds"]
    cf_rounds = {w: sum(d["counterfactual_rounds"].values()) for w, d in docs.items()}
    assert cf_rounds[True] < cf_rounds[False]
    for warm, flags in ((True, []), (False, ["--cold-counterfactuals"])):
        out = tmp_path / f"split-{warm}"
        split = runner.invoke(app, ["negotiate", "split", str(scenario), *flags, "-o", str(out)])
        assert split.exit_code == 0, split.output
        terms = json.loads((out / "negotiation.json").read_text())
        assert terms["admm"]["warm_start_counterfactuals"] is warm


def test_an_agents_answer_is_a_function_of_the_task_only() -> None:
    # issue 14: a restarted agent must answer what a running one would have. A party that has
    # answered other tasks (other z, prices and rho) gives, bit for bit, the answer of a party
    # built fresh for the last task.
    scenario = generate_scenario(4, 3, 3, 2, 2, np.random.default_rng(1))
    models = scenario_models(scenario)
    rng = np.random.default_rng(5)
    for name, model in models.items():
        n = model.n_plan
        tasks = [(rng.uniform(0, 400, n), rng.normal(0, 2, n), rho) for rho in (0.3, 0.3, 0.05)]
        busy = LpParty(name, model)
        for z, prices, rho in tasks:
            busy.best_response(z, prices, rho)
        z, prices, rho = tasks[-1]
        again = busy.best_response(z, prices, rho)
        fresh = LpParty(name, model).best_response(z, prices, rho)
        assert again.tobytes() == fresh.tobytes(), name


def test_a_best_response_that_cannot_be_computed_names_the_party() -> None:
    scenario = truck_example()
    model = scenario_models(scenario)["vendor"]
    party = LpParty("vendor", model, InteriorPointOptions(max_iter=2))
    with pytest.raises(
        SolverError,
        match=r"vendor's best response could not be computed: PIQP "
        r"status 'max_iter_reached' after 2 iterations \(primal residual",
    ):
        party.best_response(np.full(model.n_plan, 100.0), np.zeros(model.n_plan), 0.01)


def test_warm_plain_rounds_on_the_command_line(tmp_path: Path) -> None:
    # the plain ADMM stage of the warm runs: recorded in the document, recomputed by `verify`,
    # written into the split terms; out of range, one line and exit 2
    args = ["--products", "3", "--sites", "2", "--regions", "2", "--weeks", "2", "--vendors", "3"]
    scenario = tmp_path / "s.json"
    made = runner.invoke(app, ["negotiate", "generate", *args, "--seed", "5", "-o", str(scenario)])
    assert made.exit_code == 0, made.output
    for plain in ("0", "7"):
        target = tmp_path / f"{plain}.json"
        flags = ["--warm-plain-rounds", plain]
        run = runner.invoke(app, ["negotiate", "run", str(scenario), *flags, "-o", str(target)])
        assert run.exit_code == 0, run.output
        doc = json.loads(target.read_text())
        assert doc["provenance"]["parameters"]["warm_plain_rounds"] == int(plain)
        for p, money in doc["centralized_transfers"].items():
            assert abs(doc["transfers"][p] - money) <= doc["transfer_bounds"][p] + 1e-9, (plain, p)
        checked = runner.invoke(app, ["verify", str(target)])
        assert checked.exit_code == 0, checked.output
        out = tmp_path / f"split-{plain}"
        split = runner.invoke(app, ["negotiate", "split", str(scenario), *flags, "-o", str(out)])
        assert split.exit_code == 0, split.output
        terms = json.loads((out / "negotiation.json").read_text())
        assert terms["admm"]["warm_plain_rounds"] == int(plain)
    for command in ("run", "split"):
        bad = runner.invoke(app, ["negotiate", command, str(scenario), "--warm-plain-rounds", "-1"])
        assert bad.exit_code == 2 and "--warm-plain-rounds" in bad.output, bad.output
        assert "Traceback" not in bad.output


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("warm_plain_rounds", "x"),
        ("warm_plain_rounds", 1e300),
        ("warm_plain_rounds", -4),
        ("warm_plain_rounds", 2.5),
        ("eps_abs", None),
        ("max_rounds", [1]),
        ("activity_fee", "1"),
        ("warm_start_counterfactuals", "false"),
        ("tolerances.abs_tol", "x"),
    ],
)
def test_verify_refuses_malformed_protocol_parameters(
    tmp_path: Path, name: str, value: object
) -> None:
    # a hostile or damaged document: one line naming the parameter and exit 2, never a
    # traceback (a string "false" was read as true, "x" raised ValueError)
    target = tmp_path / "doc.json"
    run = runner.invoke(app, ["negotiate", "run", "--scenario", "truck-example", "-o", str(target)])
    assert run.exit_code == 0, run.output
    doc = json.loads(target.read_text())
    if name.startswith("tolerances."):
        doc["provenance"]["tolerances"][name.split(".")[1]] = value
        where = f"provenance.{name}"
    else:
        doc["provenance"]["parameters"][name] = value
        where = f"provenance.parameters.{name}"
    target.write_text(json.dumps(doc))
    checked = runner.invoke(app, ["verify", str(target)])
    assert checked.exit_code == 2, checked.output
    assert where in checked.output
    assert "Traceback" not in checked.output and len(checked.output.splitlines()) == 1


def test_verify_does_not_take_a_documents_looser_tolerances(tmp_path: Path) -> None:
    # a forged result that moves money and widens its recorded tolerances to hide it still
    # fails: the comparison is never looser than the mechanism's own tolerances
    target = tmp_path / "doc.json"
    run = runner.invoke(app, ["negotiate", "run", "--scenario", "truck-example", "-o", str(target)])
    assert run.exit_code == 0, run.output
    doc = json.loads(target.read_text())
    doc["transfers"]["vendor"] += 1000.0
    doc["provenance"]["tolerances"] = {"abs_tol": 1e300, "rel_tol": 1e300}
    target.write_text(json.dumps(doc))
    checked = runner.invoke(app, ["verify", str(target)])
    assert checked.exit_code == 1, checked.output
    assert "MISMATCH" in checked.output and "transfers" in checked.output
