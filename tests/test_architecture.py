"""The import-layering contract (docs/architecture.md), checked by import-linter.

The contract lives in ``pyproject.toml`` (``[tool.importlinter]``). The second test plants
violations in a copy of the package and checks that the same contract catches each of them, so
the check cannot pass vacuously.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def lint_imports(cwd: Path, package_root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the repository's contract on the package found in ``package_root``."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("lint-imports")),
            "--no-cache",
            str(REPO / "pyproject.toml"),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_package_keeps_its_layering_contract() -> None:
    result = lint_imports(REPO, REPO / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("auctions/bids.py", "import pivotal.cli", "Layers"),
        ("markets/curves.py", "import pivotal.service.app", "Layers"),
        ("results.py", "import pivotal.auctions", "Layers"),
        ("report/html.py", "import pivotal.service.app", "Reports do not depend on the services"),
        ("negotiation/admm.py", "import osqp", "Only pivotal.solvers imports a solver package"),
        ("auctions/clarke.py", "import matplotlib", "Only pivotal.report imports plotting"),
        ("report/figures.py", "import fastapi", "Only pivotal.service imports the web framework"),
        ("markets/clarke.py", "import rich", "Only pivotal.cli imports the terminal UI"),
        ("report/auction.py", "import pivotal.auctions.payment_rules", "Reports never solve"),
        ("report/market.py", "import pivotal.markets.clarke", "Reports never solve"),
        ("report/negotiation.py", "import pivotal.verify", "Reports never solve"),
    ],
)
def test_a_planted_violation_is_caught(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    copy = tmp_path / "src"
    shutil.copytree(REPO / "src" / "pivotal", copy / "pivotal")
    target = copy / "pivotal" / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    result = lint_imports(tmp_path, copy)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout
