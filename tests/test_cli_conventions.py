"""The command line behaves like gh, uv and ruff, and bad input is safe (issue 15, items 5, 7).

Every input-safety case checks the three promises: one line on stderr, exit 2, nothing written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import EXAMPLES
from pivotal.cli import COMMANDS, app

SEED = str(EXAMPLES / "seed_vcg_3x4.json")
MARKET = str(EXAMPLES / "market_seed.json")
runner = CliRunner()


def one_line_exit_2(result: Any) -> str:
    """The stderr of a rejected command: exactly one line, exit code 2, nothing on stdout."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    line: str = lines[0]
    return line


# ---------------------------------------------------------------------------------- conventions
def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"pivotal {version('pivotal')}\n"


def _commands(cmd: Any, ctx: Any, path: str) -> list[tuple[str, Any, Any]]:
    """Every command of the tree with its context (the loader imports each group on use)."""
    found = [(path, cmd, ctx)]
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            found += _commands(sub, type(ctx)(sub, info_name=name, parent=ctx), f"{path} {name}")
    return found


def all_commands() -> list[tuple[str, Any, Any]]:
    import typer

    root = typer.main.get_command(app)
    return _commands(root, type_ctx(root), "pivotal")


def type_ctx(root: Any) -> Any:
    from typer._click import Context

    return Context(root, info_name="pivotal")


def test_every_option_has_help_and_a_plain_metavar() -> None:
    for path, cmd, ctx in all_commands():
        text = cmd.get_help(ctx)
        assert "<" not in text and "{" not in text, f"{path}: typed metavar in\n{text}"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"{path} {param.opts}: no help text"
            if param.param_type_name == "argument":
                assert param.help and param.metavar, f"{path} {param.name}: no help or metavar"


def test_flags_are_bare_and_commands_in_the_order_a_user_needs_them() -> None:
    text = runner.invoke(app, ["auction", "run", "--help"]).stdout
    assert "  --json  " in text and "--approximate  " in text
    assert " auction run [OPTIONS] FILE\n" in text
    root = runner.invoke(app, ["--help"]).stdout
    listed = [line.split()[0] for line in root.split("Commands:")[1].strip().splitlines()]
    assert [n for n in listed if n in COMMANDS] == list(COMMANDS)
    assert list(COMMANDS)[:3] == ["auction", "market", "negotiate"]


def test_root_help_lists_each_group_with_its_own_help() -> None:
    import typer

    for name, (_, _, short) in COMMANDS.items():
        sub = typer.main.get_command(app).get_command(None, name)
        assert sub.get_short_help_str(limit=200).rstrip(".") == short.rstrip(".") or (
            name in {"report", "verify"}
        ), name


def test_help_loads_no_solver_numpy_or_rich() -> None:
    # the measured target (pivotal --help under 0.3 s) rests on this: benchmarks/cli_startup.py
    code = (
        "import sys\n"
        "from pivotal.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'numpy', 'scipy', 'highspy', 'osqp', 'rich', 'matplotlib', 'plotly'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["auction", "run"], "missing argument 'FILE'"),
        (["auction", "run", SEED, "--payments", "foo"], "--payments: 'foo' is not one of"),
        (["auction", "run", SEED, "--jsn"], "no such option: --jsn"),
        (["auction", "run", SEED, "--json=1"], "does not take a value"),
        (["auctio"], "no such command 'auctio'"),
        (["auction", "audit", SEED, "--random", "-1"], "--random:"),
        (["market", "generate", "--producers", "x"], "--producers:"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args: list[str], expected: str) -> None:
    assert expected in one_line_exit_2(runner.invoke(app, args))


def test_usage_error_from_the_installed_command_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pivotal", "auction", "run"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: missing argument 'FILE' (see 'pivotal auction run --help')\n"


# ---------------------------------------------------------------------------------- stdin
def test_dash_reads_standard_input() -> None:
    for path in (SEED, str(EXAMPLES / "seed_vcg_3x4.csv")):
        result = runner.invoke(app, ["auction", "run", "-", "--json"], input=Path(path).read_text())
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["revenue"] == 14  # the seed's published VCG revenue
    result = runner.invoke(app, ["market", "run", "-", "--json"], input=Path(MARKET).read_text())
    assert result.exit_code == 0, result.stderr
    # closed form (examples/README.md): supply q = p - 2, demand q = 10 - p: p* = 6, q = 4
    assert json.loads(result.stdout)["price"] == pytest.approx(6.0)
    assert json.loads(result.stdout)["source"]["input"] == "standard input"


# ---------------------------------------------------------------------------------- safety
def test_csv_bundle_typo_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "typo.csv").write_text("bidder,A,B,C,A+b\n1,5,4,2,15\n")
    (tmp_path / "other.csv").write_text("bidder,A,B,A+C\n1,5,4,15\n")
    for name, item in (("typo.csv", "'b'"), ("other.csv", "'C'")):
        out = tmp_path / f"{name}.json"
        line = one_line_exit_2(
            runner.invoke(app, ["auction", "run", str(tmp_path / name), "-o", str(out)])
        )
        assert item in line and not out.exists()
    # a table of bundles only names its items in the bundles: no typo to catch there
    (tmp_path / "bundles.csv").write_text("bidder,A+B,B+C\n1,5,4\n2,3,6\n")
    ok = runner.invoke(app, ["auction", "run", str(tmp_path / "bundles.csv"), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["welfare"] == 6


def test_names_are_never_markup_or_emoji(tmp_path: Path) -> None:
    bids = [
        {"bidder": "1", "bundle": ["A"], "value": 3},
        {"bidder": "[bold]1", "bundle": ["B"], "value": 2},
        {"bidder": ":fire:", "bundle": ["[red]C"], "value": 1},
    ]
    path = tmp_path / "names.json"
    path.write_text(json.dumps({"items": ["A", "B", "[red]C"], "bids": bids}))
    result = runner.invoke(app, ["auction", "run", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "[bold]1" in result.stdout and ":fire:" in result.stdout and "[red]C" in result.stdout
    assert "\N{FIRE}" not in result.stdout
    bad = runner.invoke(app, ["auction", "run", SEED, "--engine", "processes:abc"])
    line = one_line_exit_2(bad)
    assert "processes:abc" in line and "\N{SMILING FACE WITH SMILING EYES}" not in line


def test_output_folder_is_never_created(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "deeper" / "r.json"
    line = one_line_exit_2(runner.invoke(app, ["auction", "run", SEED, "-o", str(target)]))
    assert "does not exist" in line and str(tmp_path / "missing" / "deeper") in line
    assert list(tmp_path.iterdir()) == []
    for args in (
        ["market", "generate", "-o", str(target)],
        ["negotiate", "generate", "-o", str(target)],
        ["auction", "generate", "--goods", "3", "--bids", "4", "-o", str(target)],
        ["report", SEED, "-o", str(tmp_path / "missing" / "report")],
        ["negotiate", "split", "--scenario", "truck-example", "-o", str(tmp_path / "a" / "b")],
        ["market", "run", MARKET, "--report", str(tmp_path / "missing" / "report")],
    ):
        one_line_exit_2(runner.invoke(app, args))
        assert list(tmp_path.iterdir()) == [], args


def test_output_naming_a_folder_names_the_problem_and_leaks_no_temporary_file(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    line = one_line_exit_2(runner.invoke(app, ["market", "run", MARKET, "-o", str(folder)]))
    assert f"cannot write {folder}: it is a folder" in line
    assert ".results." not in line and "tmp" not in line.replace(str(tmp_path), "")
    assert list(folder.iterdir()) == []


def test_read_only_folder_is_named(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    line = one_line_exit_2(
        runner.invoke(app, ["market", "run", MARKET, "-o", str(folder / "r.json")])
    )
    assert "permission denied" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["negotiate", "run", MARKET], "market file, not a negotiation scenario: run `pivotal"),
        (["auction", "run", MARKET], "a market file, not an auction file: run `pivotal market run"),
        (["market", "run", SEED], "an auction file, not a market file: run `pivotal auction run"),
        (["report", MARKET], "is a market file, not a result: run `pivotal market run"),
        (["verify", SEED], "is an auction file, not a result: run `pivotal auction run"),
    ],
)  # fmt: skip
def test_a_file_of_another_kind_is_named(args: list[str], expected: str, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    output = ["-o", str(tmp_path / "report")] if args[0] == "report" else []
    line = one_line_exit_2(runner.invoke(app, [*args, *output]))
    assert expected in line and not out.exists() and list(tmp_path.iterdir()) == []


def test_result_given_as_input_is_named(tmp_path: Path) -> None:
    result = tmp_path / "market-result.json"
    assert runner.invoke(app, ["market", "run", MARKET, "-o", str(result)]).exit_code == 0
    line = one_line_exit_2(runner.invoke(app, ["market", "run", str(result)]))
    assert "is a market result, not a market file: run `pivotal report" in line


# ---------------------------------------------------------------------------------- numbers
def test_activity_fee_larger_than_the_gain_is_warned() -> None:
    result = runner.invoke(
        app,
        ["negotiate", "run", "--scenario", "truck-example", "--no-check", "--activity-fee", "1e5"],
    )
    assert result.exit_code == 0, result.stderr
    # the truck example's vendor saves about 886 (README); a fee of 100,000 leaves it ~99,114 short
    assert "warning: the activity fee 100,000 leaves vendor" in result.stderr
    assert "worse off than its status quo" in result.stderr
    quiet = runner.invoke(
        app,
        ["negotiate", "run", "--scenario", "truck-example", "--no-check", "--activity-fee", "1"],
    )
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr


def test_tables_round_to_the_tolerance_and_json_keeps_full_precision() -> None:
    table = runner.invoke(
        app,
        ["negotiate", "run", "--scenario", "truck-example", "--no-check"],
        env={"COLUMNS": "200"},
    )
    doc = json.loads(
        runner.invoke(
            app, ["negotiate", "run", "--scenario", "truck-example", "--no-check", "--json"]
        ).stdout
    )
    joint = doc["costs"]["vendor"]["joint"]
    assert joint != round(joint)  # ADMM noise in the document (full precision kept)
    assert f"{round(joint):,}" in table.stdout and f"{joint}" not in table.stdout
    assert "-0 " not in table.stdout and "-0.0" not in table.stdout
    assert "amounts rounded to the result's tolerance (abs 0.001 + rel 0.0001" in table.stdout
