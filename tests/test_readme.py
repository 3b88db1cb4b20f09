"""The README's quickstart runs: Python blocks are executed, console lines are run."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO

README = (REPO / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
CONSOLE_LINES = [
    line[2:]
    for block in re.findall(r"```console\n(.*?)```", README, re.S)
    for line in block.splitlines()
    if line.startswith("$ ")
]


def test_readme_has_examples() -> None:
    assert PYTHON_BLOCKS and CONSOLE_LINES


@pytest.mark.parametrize("block", PYTHON_BLOCKS)
def test_python_block(block: str) -> None:
    exec(compile(block, "README.md", "exec"), {})


@pytest.mark.parametrize("line", CONSOLE_LINES)
def test_console_line(line: str) -> None:
    args = shlex.split(line)
    assert args[0] == "pivotal"
    proc = subprocess.run(
        [sys.executable, "-m", "pivotal", *args[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
