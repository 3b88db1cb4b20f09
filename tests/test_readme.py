"""The README works as written: every block runs the way a user would run it.

- ``python`` blocks are executed;
- every ``console`` block's ``$`` commands run in order, each in ``bash`` with the venv's ``bin``
  first on PATH (what ``. .venv/bin/activate`` does), in a temporary folder that holds the
  repository's ``examples/`` and ``docs/`` (links) and ``.venv``, so that nothing is written
  into the checkout;
- the ``bash`` block of the service (a coordinator and two agents) is run as a user would run
  it in three terminals: the coordinator is started, the agents run to the end, the outcome
  file is checked and the coordinator is stopped.

Two substitutions keep parallel runs apart and are the only changes to the commands: ``/tmp/``
becomes this test's temporary folder, and the service's port 8765 a free port.

Also here: the scenario format that the README points to (``docs/scenario-format.md``) holds a
valid scenario, and documents every field the reader accepts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

README = (REPO / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
CONSOLE_BLOCKS = re.findall(r"```console\n(.*?)```", README, re.S)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.S)
SCENARIO_DOC = REPO / "docs" / "scenario-format.md"
BIN = Path(sys.executable).parent


def commands(block: str, prompt: str = "") -> list[str]:
    """The commands of a block (``prompt`` lines only, if given), continuation lines joined."""
    lines = [ln[len(prompt) :] for ln in block.splitlines() if ln.startswith(prompt) or not prompt]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [" ".join(c.split()) for c in joined.splitlines() if c.strip()]


CONSOLE_COMMANDS = [c for block in CONSOLE_BLOCKS for c in commands(block, "$ ")]
SERVICE_COMMANDS = [c for block in BASH_BLOCKS for c in commands(block)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    for name in ("examples", "docs"):
        (root / name).symlink_to(REPO / name)
    (root / ".venv").symlink_to(Path(sys.prefix))
    (root / "tmp").mkdir()
    return root


def shell(command: str, workdir: Path, port: int | None = None) -> str:
    """The command as this test runs it (see the module docstring)."""
    command = command.replace("/tmp/", f"{workdir / 'tmp'}/")
    return command if port is None else command.replace("8765", str(port))


def user_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_readme_has_every_kind_of_block() -> None:
    assert PYTHON_BLOCKS and CONSOLE_COMMANDS and SERVICE_COMMANDS
    assert all(c.startswith(("pivotal ", ". .venv/bin/activate")) for c in CONSOLE_COMMANDS)
    set_up = re.search(r"## Set-up\n\n(.*?)\n\n", README, re.S)
    assert set_up is not None
    assert [ln.split("#")[0].strip() for ln in set_up.group(1).splitlines()] == [
        "make demo",
        "make test",
    ]


@pytest.mark.parametrize("block", PYTHON_BLOCKS)
def test_python_block(block: str) -> None:
    exec(compile(block, "README.md", "exec"), {})


def test_console_blocks_run_as_written(workdir: Path) -> None:
    """Every ``$`` command in order (later ones use files earlier ones wrote)."""
    failures = []
    for command in CONSOLE_COMMANDS:
        proc = subprocess.run(
            ["bash", "-c", shell(command, workdir)],
            cwd=workdir,
            env=user_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            failures.append(f"$ {command}\n  exit {proc.returncode}: {proc.stderr.strip()[-800:]}")
    assert not failures, "\n".join(failures)
    version = subprocess.run(
        ["bash", "-c", "pivotal --version"], env=user_env(), capture_output=True, text=True
    )
    assert re.fullmatch(r"pivotal \d+\.\d+\.\d+\S*\n", version.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_service_block_runs_as_written(workdir: Path) -> None:
    """The coordinator and both agents of the README, after the README's ``negotiate split``."""
    split = next(c for c in CONSOLE_COMMANDS if " negotiate split " in c)
    port = free_port()
    env = user_env()
    run = subprocess.run(
        ["bash", "-c", shell(split, workdir)], cwd=workdir, env=env, capture_output=True
    )
    assert run.returncode == 0, run.stderr
    coordinator_cmd, *agent_cmds = (shell(c, workdir, port) for c in SERVICE_COMMANDS)
    assert "serve coordinator" in coordinator_cmd and len(agent_cmds) == 2
    # a fresh database: the README's commands create one (and --tokens-dir needs a new one)
    for leftover in (workdir / "tmp").glob("truck.sqlite*"):
        leftover.unlink()
    log = (workdir / "coordinator.log").open("w")
    coordinator = subprocess.Popen(
        ["bash", "-c", f"exec {coordinator_cmd}"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while "listening on" not in (workdir / "coordinator.log").read_text():
            assert coordinator.poll() is None, (workdir / "coordinator.log").read_text()
            assert time.monotonic() < deadline, "the coordinator did not start in 120 s"
            time.sleep(0.2)
        agents = [
            subprocess.Popen(
                ["bash", "-c", f"exec {cmd}"],
                cwd=workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for cmd in agent_cmds
        ]
        for agent in agents:
            out, err = agent.communicate(timeout=300)
            assert agent.returncode == 0, err
            assert "after" in out and "rounds" in out, out
        outcome = workdir / "tmp" / "truck" / "outcome.json"
        deadline = time.monotonic() + 60
        while not outcome.exists():
            assert time.monotonic() < deadline, "no outcome file"
            time.sleep(0.2)
        doc = json.loads(outcome.read_text())
        # the README's truck example: the vendor ships via Dallas and keeps the saving (~886)
        assert doc["gains"]["vendor"] > 800
    finally:
        os.killpg(coordinator.pid, signal.SIGTERM)
        try:
            coordinator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(coordinator.pid, signal.SIGKILL)
            coordinator.wait()
        log.close()


# ---------------------------------------------------------------------------------- scenario doc
def test_scenario_format_examples_are_valid_scenarios(tmp_path: Path) -> None:
    from pivotal.errors import InputError
    from pivotal.negotiation import load_scenario, scenario_from_document, truck_example
    from pivotal.negotiation.cost_models import scenario_models

    text = SCENARIO_DOC.read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    (matrix,) = re.findall(r"```csv\n(.*?)```", text, re.S)
    assert len(blocks) == 3
    scenario = scenario_from_document(json.loads(blocks[0]), source=str(SCENARIO_DOC))
    assert scenario.to_dict() == truck_example().to_dict()  # the built-in it says it is
    # by coordinates: the metros' own coordinates, so the same costs
    by_coordinates = scenario_models(scenario_from_document(json.loads(blocks[1])))
    for party, model in scenario_models(scenario).items():
        assert (by_coordinates[party].c == model.c).all()
    # by a distance matrix in a CSV file beside the scenario
    (tmp_path / "truck-miles.csv").write_text(matrix)
    (tmp_path / "truck.json").write_text(blocks[2])
    assert load_scenario(tmp_path / "truck.json").distances is not None
    (tmp_path / "truck-miles.csv").write_text(matrix.replace(",940", ","))
    with pytest.raises(InputError) as err:
        load_scenario(tmp_path / "truck.json")
    assert "no road distance between 'Cincinnati' and 'Dallas' (factory 'CIN' to site 'DAL')" in (
        " ".join(text.split())
    )
    assert "no road distance between 'Cincinnati' and 'Dallas' (factory 'CIN' to site 'DAL')" in (
        str(err.value)
    )


def test_scenario_format_documents_every_field() -> None:
    from pivotal.negotiation import scenario as module

    text = SCENARIO_DOC.read_text()
    models = {
        "": module.ScenarioIn,
        "retailer.": module.RetailerIn,
        "vendors[].": module.VendorIn,
    }
    for prefix, model in models.items():
        for name in model.model_fields:
            assert f"`{prefix}{name}" in text, f"{prefix}{name} is not documented"
    for model in (module.SiteIn, module.RegionIn, module.FactoryIn, module.LaneIn, module.PlaceIn):
        for name in model.model_fields:
            assert f"`{name}`" in text, f"{model.__name__}.{name} is not documented"
    assert "docs/scenario-format.md" in README
