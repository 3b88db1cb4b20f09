"""The repository is self-contained: a plain clone with nothing beside it collects and runs.

The test clones the committed HEAD into an empty temporary folder, so a test that reads a file
outside the repository (the project's ``shared/`` folder beside a checkout, say) fails here even
where that folder exists, as it does on the developers' machines and in CI.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED_CASES


def _fixture_users() -> list[str]:
    """Node ids of the tests that take the ``shared_cases`` fixture (only that fixture)."""
    ids = []
    for path in sorted((REPO / "tests").glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                args = [a.arg for a in node.args.args]
                if args == ["shared_cases"]:
                    ids.append(f"tests/{path.name}::{node.name}")
    return ids


def _git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _pytest(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # the clone's own package comes first on the path (the venv's editable install points at
    # the checkout this test runs from)
    env = {**os.environ, "PYTHONPATH": str(clone / "src")}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=400,
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    empty = tmp_path_factory.mktemp("empty")
    dest = empty / "pivotal"
    head = _git("rev-parse", "HEAD", cwd=REPO)
    _git("clone", "--quiet", "--no-checkout", str(REPO), str(dest), cwd=empty)
    _git("checkout", "--quiet", head, cwd=dest)
    assert sorted(p.name for p in empty.iterdir()) == ["pivotal"]
    return dest


def test_reference_cases_live_in_the_repository() -> None:
    assert SHARED_CASES.is_relative_to(REPO)
    assert (SHARED_CASES / "README.md").is_file()
    assert _fixture_users(), "no test takes shared_cases: the clone test would prove nothing"


def test_plain_clone_collects_every_test(clone: Path) -> None:
    here = _pytest(REPO, "--collect-only", "-q")
    there = _pytest(clone, "--collect-only", "-q")
    assert there.returncode == 0, there.stdout[-3000:] + there.stderr[-3000:]

    def count(proc: subprocess.CompletedProcess[str]) -> int:
        found = re.search(r"(\d+) tests? collected", proc.stdout)
        assert found is not None, proc.stdout[-2000:]
        return int(found.group(1))

    # uncommitted test files are not in the clone: compare with the committed ones only
    committed = set(_git("ls-files", "tests", cwd=REPO).splitlines())
    if {p.relative_to(REPO).as_posix() for p in (REPO / "tests").glob("test_*.py")} <= committed:
        assert count(there) == count(here)


def test_plain_clone_sets_up_the_case_fixture_and_reads_a_case(clone: Path) -> None:
    # --setup-only runs the fixtures of every test that takes the cases (not the slow bodies)
    users = _fixture_users()
    setup = _pytest(clone, "-q", "--setup-only", *users)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    read = _pytest(clone, "-q", "tests/test_seed_auction.py::test_seed_vcg_matches_reference")
    assert read.returncode == 0, read.stdout[-3000:] + read.stderr[-3000:]
    assert "1 passed" in read.stdout


def test_library_exports_what_a_user_needs() -> None:
    import pivotal.auctions
    import pivotal.markets
    import pivotal.negotiation
    from pivotal.results import Tolerances
    from pivotal.solvers import SolverOptions

    for module in (pivotal.auctions, pivotal.markets, pivotal.negotiation):
        missing = [name for name in module.__all__ if getattr(module, name, None) is None]
        assert not missing, (module.__name__, missing)
    assert pivotal.auctions.SolverOptions is SolverOptions
    assert pivotal.auctions.Tolerances is Tolerances is pivotal.markets.Tolerances
    assert pivotal.negotiation.Tolerances is Tolerances
    expected = {"simulate", "Scenario", "AdmmSettings", "load_scenario", "NegotiationOutcome"}
    assert expected <= set(pivotal.negotiation.__all__)
    assert set(pivotal.negotiation.__all__) == set(pivotal.negotiation._EXPORTS)
