"""One exception hierarchy: library messages name parameters, the command line adds its flag;
each kind of error has its exit code (2 bad input or damaged store, 4 state, 1 otherwise)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from conftest import EXAMPLES
from pivotal.calls.lifecycle import CallAuthError, CallStateError
from pivotal.cli import app
from pivotal.cli.common import handle_errors
from pivotal.engine import engine_from_spec
from pivotal.errors import AuthError, InputError, PivotalError, StateError, StoreError
from pivotal.negotiation.session import StaleMessageError

runner = CliRunner()


def test_library_messages_name_parameters_and_the_cli_names_the_flag() -> None:
    with pytest.raises(InputError) as caught:
        engine_from_spec("processes:abc")
    assert "--" not in str(caught.value) and caught.value.field == "engine"
    result = runner.invoke(
        app, ["auction", "run", str(EXAMPLES / "seed_vcg_3x4.json"), "--engine", "processes:abc"]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("(option --engine)"), result.stderr


def test_service_errors_share_the_hierarchy() -> None:
    assert issubclass(StaleMessageError, StateError) and issubclass(CallStateError, StateError)
    assert issubclass(CallAuthError, AuthError)
    for cls in (StateError, AuthError, StoreError):
        assert issubclass(cls, PivotalError)
    assert AuthError(403, "not yours").status == 403


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputError("bad"), 2),
        (StoreError("the database is damaged"), 2),
        (StateError("the negotiation is not finished"), 4),
        (AuthError(401, "missing bearer token"), 1),
    ],
)
def test_each_kind_of_error_has_its_exit_code(error: PivotalError, code: int) -> None:
    probe = typer.Typer()

    @probe.command()
    @handle_errors
    def fail() -> None:
        raise error

    result = runner.invoke(probe, [])
    assert result.exit_code == code
    assert result.stderr.strip() == f"error: {error}"
