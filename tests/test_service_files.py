"""Names and files of the services (issue 14, item 2): party names match one pattern and the
roles' names are reserved, refused before anything is created; the database, its side files,
the token files and the outcome are 0600 and the tokens folder 0700 under umask 022; token
files are created exclusively and never through a symlink; credentials reach their files before
the database commits them, or nothing is left."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from _service import CLI, _env, deploy
from pivotal.errors import InputError
from pivotal.fileio import write_secrets, write_text_atomic
from pivotal.names import NAME_PATTERN
from pivotal.negotiation.scenario import truck_example


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def serve_coordinator(root: Path, config: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The coordinator's command on a new database; a refusal ends it at once (a server that
    started would time out here, failing the test)."""
    args = [*CLI, "serve", "coordinator", "--db", str(root / "n.sqlite"), "--config", str(config)]
    args += ["--tokens-dir", str(root / "tokens"), "--host", "127.0.0.1", "--port", "0"]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=_env(), **kwargs)


def truck_config(root: Path) -> dict[str, Any]:
    d = deploy(root / "terms", truck_example())
    doc: dict[str, Any] = json.loads(d.config.read_text())
    return doc


@pytest.mark.parametrize(
    ("hub", "vendor", "said"),
    [
        ("retailer", "operator", "'operator' is reserved"),
        ("../x", "vendor", "'../x' is not allowed"),
        ("retailer", "a/b", "'a/b' is not allowed"),
        ("retailer", "v" * 300, "(300 characters) is not allowed"),
        ("vendor", "Vendor", "'Vendor' is not allowed"),  # two names differing only in case
    ],
    ids=["operator", "dotdot", "slash", "300-chars", "case"],
)
def test_bad_party_names_are_refused_before_anything_is_created(
    tmp_path: Path, hub: str, vendor: str, said: str
) -> None:
    doc = truck_config(tmp_path)
    doc["hub"] = hub
    doc["vendors"][0]["name"] = vendor
    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "bad.json"
    config.write_text(json.dumps(doc))
    before = files_under(tmp_path)
    run = serve_coordinator(work, config, cwd=work)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and "Traceback" not in run.stderr, run.stderr
    assert run.stdout == ""
    assert files_under(tmp_path) == before  # no database, no tokens folder, nothing


def test_bad_participant_name_refused_by_the_call_server(tmp_path: Path) -> None:
    """The open call follows the same pattern (one definition, :mod:`pivotal.names`)."""
    terms = {
        "name": "c",
        "kind": "market",
        "good": "kits",
        "unit": "kit",
        "deadline": "2099-01-01T00:00:00Z",
        "invited": [{"name": "operator", "role": "buyer"}],
    }
    config = tmp_path / "call.json"
    config.write_text(json.dumps(terms))
    before = files_under(tmp_path)
    args = [*CLI, "serve", "call", "--config", str(config), "--db", str(tmp_path / "c.sqlite")]
    args += ["--tokens-dir", str(tmp_path / "tokens"), "--port", "0"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60, env=_env())
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "'operator' is reserved" in run.stderr
    assert files_under(tmp_path) == before


def test_the_documented_pattern() -> None:
    import re

    ok = ["a", "vendor1", "v-2_x", "0", "a" * 64]
    bad = ["", "A", "-a", "_a", "a" * 65, "a b", "a.b", "a/b", "é", "a\n"]
    assert all(re.fullmatch(NAME_PATTERN, n) for n in ok)
    assert not any(re.fullmatch(NAME_PATTERN, n) for n in bad)


def test_file_modes_under_umask_022(tmp_path: Path) -> None:
    """The coordinator started with umask 022: its database, -wal and -shm (while it runs), the
    token files are 0600 and the tokens folder 0700."""
    d = deploy(tmp_path, truck_example())
    proc = subprocess.Popen(
        [*CLI, "serve", "coordinator", "--db", str(d.db), "--config", str(d.config),
         "--tokens-dir", str(tmp_path / "tokens"), "--host", "127.0.0.1", "--port", "0",
         "--no-access-log"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(), umask=0o022,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("listening on "):
                break
        side = [Path(f"{d.db}{s}") for s in ("", "-wal", "-shm")]
        assert all(p.exists() for p in side), sorted(files_under(tmp_path))
        assert {str(p): mode(p) for p in side} == {str(p): 0o600 for p in side}
        assert mode(tmp_path / "tokens") == 0o700
        tokens = sorted((tmp_path / "tokens").iterdir())
        assert [p.name for p in tokens] == ["operator.token", "retailer.token", "vendor.token"]
        assert all(mode(p) == 0o600 for p in tokens)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


def test_outcome_file_is_private_under_umask_022(tmp_path: Path) -> None:
    """The outcome (``-o``) is written by :func:`write_text_atomic`: 0600 whatever the umask."""
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "outcome.json", "{}\n")
    finally:
        os.umask(old)
    assert mode(tmp_path / "outcome.json") == 0o600


def test_a_planted_symlink_in_the_tokens_folder_is_refused(tmp_path: Path) -> None:
    d = deploy(tmp_path, truck_example())
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "vendor.token").symlink_to(victim)
    run = serve_coordinator(tmp_path, d.config)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "already holds credentials" in run.stderr
    assert victim.read_text() == "precious\n" and mode(victim) == 0o644
    assert not (tmp_path / "n.sqlite").exists()
    assert [p.name for p in tokens.iterdir()] == ["vendor.token"]
    # a symlink planted after the check (a race) is refused by the exclusive, no-follow open;
    # the files written before it are removed
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "vendor.token").symlink_to(victim)
    with pytest.raises(InputError, match="already exists"):
        write_secrets(fresh, {"retailer": "r-secret", "vendor": "v-secret", "operator": "o"})
    assert [p.name for p in fresh.iterdir()] == ["vendor.token"]
    assert victim.read_text() == "precious\n"
    # a dangling symlink too: nothing is created at its target
    (fresh / "x.token").symlink_to(tmp_path / "target")
    with pytest.raises(InputError, match="already exists"):
        write_secrets(fresh, {"x": "secret"})
    assert not (tmp_path / "target").exists()


def test_credentials_reach_their_files_before_the_database_commits(tmp_path: Path) -> None:
    """If the credentials cannot be written, the database is not created (no half-created
    negotiation whose tokens exist only on a scrolled-away screen)."""
    from pivotal.service.state import open_state

    d = deploy(tmp_path, truck_example())
    seen: list[set[str]] = []

    def fail(tokens: dict[str, str]) -> None:
        import sqlite3

        with sqlite3.connect(d.db) as db:  # another reader sees no committed credential yet
            seen.append({r[0] for r in db.execute("SELECT party FROM credentials")})
        raise InputError("cannot write the tokens")

    with pytest.raises(InputError, match="cannot write the tokens"):
        open_state(d.db, d.config, publish=fail)
    assert seen == [set()]
    assert not any(Path(f"{d.db}{s}").exists() for s in ("", "-wal", "-shm"))
    # a tokens folder that cannot hold the files: the command leaves nothing behind
    work = tmp_path / "work"
    work.mkdir()
    (work / "tokens").mkdir()
    (work / "tokens" / "retailer.token").mkdir()  # a *.token entry in the way (a folder)
    run = serve_coordinator(work, d.config)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not (work / "n.sqlite").exists()
