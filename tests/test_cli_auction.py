"""The `pivotal auction` commands: output documents, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import EXAMPLES
from pivotal.cli import app

SEED = str(EXAMPLES / "seed_vcg_3x4.json")
runner = CliRunner()


def test_run_json_document() -> None:
    result = runner.invoke(app, ["auction", "run", SEED, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["allocation"] == {"2": ["B", "C"], "3": ["A"]}
    assert doc["payments"] == {"1": 0, "2": 9, "3": 5, "4": 0}
    assert doc["welfare"] == 26 and doc["revenue"] == 14
    assert doc["utilities"]["2"] == 7
    assert doc["provenance"]["solver"] == "highs"
    assert len(doc["provenance"]["input_sha256"]) == 64
    assert doc["comparison"]["sequential_second_price"]["revenue"] == 13


def test_run_table_and_order() -> None:
    result = runner.invoke(app, ["auction", "run", SEED, "--order", "C,B,A"])
    assert result.exit_code == 0, result.output
    assert "welfare 26" in result.stdout and "revenue 14" in result.stdout


def test_run_writes_output_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    result = runner.invoke(app, ["auction", "run", SEED, "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["welfare"] == 26


def test_compare_prints_both_mechanisms() -> None:
    result = runner.invoke(app, ["auction", "compare", SEED, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["vcg"]["revenue"] == 14
    assert doc["sequential_second_price"]["revenue"] == 13
    assert doc["efficiency_loss"] == 0
    table = runner.invoke(app, ["auction", "compare", SEED])
    assert "efficiency loss of the sequential auction: 0" in table.stdout


def test_audit_exit_codes() -> None:
    ok = runner.invoke(app, ["auction", "audit", SEED, "--random", "2", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["passed"] is True
    bad = runner.invoke(
        app, ["auction", "audit", SEED, "--random", "2", "--payments", "pay-as-bid"]
    )
    assert bad.exit_code == 1
    assert "profitable misreports" in bad.stdout


BAD_INPUTS = {
    "unknown_item": (
        {"items": ["A"], "bids": [{"bidder": "1", "bundle": ["Z"], "value": 1}]},
        "names item 'Z'",
    ),
    "negative": (
        {"items": ["A"], "bids": [{"bidder": "1", "bundle": ["A"], "value": -1}]},
        "negative value",
    ),
    "non_numeric": (
        {"items": ["A"], "bids": [{"bidder": "1", "bundle": ["A"], "value": "x"}]},
        "expected a number",
    ),
    "empty_bundle": (
        {"items": ["A"], "bids": [{"bidder": "1", "bundle": [], "value": 1}]},
        "bundle is empty",
    ),
    "duplicate_bundle": (
        {
            "items": ["A"],
            "bids": [
                {"bidder": "1", "bundle": ["A"], "value": 1},
                {"bidder": "1", "bundle": ["A"], "value": 2},
            ],
        },
        "bids twice on bundle",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_one_line_exit_2(name: str, tmp_path: Path) -> None:
    doc, message = BAD_INPUTS[name]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    target = tmp_path / "result.json"
    result = runner.invoke(app, ["auction", "run", str(path), "-o", str(target)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [path]


def test_malformed_json_and_missing_file_in_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args, message in (
        ([str(bad)], "malformed JSON"),
        ([str(tmp_path / "missing.json")], "file not found"),
        ([SEED, "--order", "A,B,Q"], "names item 'Q'"),
        ([SEED, "--time-limit", "-1"], "--time-limit must be positive"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "pivotal", "auction", "run", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.count("\n") == 1 and message in proc.stderr
        assert proc.stdout == ""


def test_run_core_payments_and_engine() -> None:
    result = runner.invoke(
        app, ["auction", "run", SEED, "--payments", "core-vcg-nearest", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["payments"]["2"] == pytest.approx(11.5) and doc["payments"]["3"] == pytest.approx(
        7.5
    )
    assert doc["provenance"]["parameters"]["mrc_revenue"] == pytest.approx(19)
    bad = runner.invoke(app, ["auction", "run", SEED, "--engine", "gpu"])
    assert bad.exit_code == 2 and "unknown engine 'gpu'" in bad.stderr


def test_audit_reports_core_membership() -> None:
    result = runner.invoke(app, ["auction", "audit", SEED, "--random", "0"])
    assert result.exit_code == 0, result.output
    assert "NOT in the core" in result.stdout and "{1, 4}" in result.stdout


def test_unwritable_output_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(
        app, ["auction", "generate", "--goods", "5", "--bids", "8", "-o", str(blocker / "x.txt")]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "is not a folder" in result.stderr


def test_json_and_output_together_print_and_write(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    result = runner.invoke(app, ["auction", "run", SEED, "--json", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(target.read_text())
