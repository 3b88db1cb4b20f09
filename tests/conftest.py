"""Shared test fixtures: paths to the repository's examples and the project's shared cases."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CASES = REPO.parent / "shared" / "cases"
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def shared_cases() -> Path:
    """``../shared/cases`` beside the checkout (CI clones main with shared/ beside it)."""
    if not SHARED_CASES.is_dir():
        pytest.fail(f"shared cases not found at {SHARED_CASES}")
    return SHARED_CASES
