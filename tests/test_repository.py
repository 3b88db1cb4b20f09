"""The repository is self-contained: a plain clone with nothing beside it collects and runs.

The test clones the committed HEAD into an empty temporary folder, so a test that reads a file
outside the repository (the project's ``shared/`` folder beside a checkout, say) fails here even
where that folder exists, as it does on the developers' machines and in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED_CASES

# the test files that read the reference cases: they run in the clone, not only collect
CASE_READERS = sorted(
    p.name
    for p in (REPO / "tests").glob("test_*.py")
    if "shared_cases" in p.read_text() or "SHARED_CASES" in p.read_text()
)


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
    assert CASE_READERS, "no test reads the reference cases: the clone test would prove nothing"


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


def test_plain_clone_runs_the_tests_that_read_the_reference_cases(clone: Path) -> None:
    proc = _pytest(clone, "-q", "-x", *(f"tests/{name}" for name in CASE_READERS))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout
