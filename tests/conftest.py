"""Shared test fixtures: paths to the repository's examples and its reference cases."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the public reference cases live in the repository (tests/cases/README.md gives their sources):
# a plain clone with nothing beside it runs the whole suite
SHARED_CASES = REPO / "tests" / "cases"
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def shared_cases() -> Path:
    """``tests/cases``: reference auctions with independently computed answers."""
    if not (SHARED_CASES / "README.md").is_file():
        pytest.fail(f"reference cases not found at {SHARED_CASES} (they belong to the repository)")
    return SHARED_CASES
