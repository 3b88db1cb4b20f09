"""Persistence of a negotiation in SQLite (WAL): public terms, credential hashes, every accepted
answer, every completed round.

What is stored is what the coordinator may know: the public terms, SHA-256 hashes of the party
credentials, the plans parties post (with phase and round), their scalar costs at named plans,
and per round the consensus plan, the prices and the residuals. Answers are the source of truth:
the session is deterministic, so replaying them in acceptance order rebuilds the state exactly;
the round records are kept for inspection and are checked against the replay.

Plans are stored as BLOBs of little-endian float64 (``numpy.frombuffer(blob, "<f8")`` reads
one back): exact, and several times cheaper to write than JSON text on the per-round path. A
round's ``plan`` is the consensus plan's blocks in the terms' block order; its ``prices`` are
the prices of every party in the round concatenated in the terms' party order (a vendor held at
its status quo has none). Scalar costs are JSON text.

Answers are written the way they are committed, a step at a time: one ``answers`` row holds
the answers accepted for one step (phase and round) in acceptance order, ``parties`` naming
them (a JSON list), with either ``plans`` (their plans concatenated, ``sizes`` giving each
length) or ``costs`` (a JSON list of label -> cost mappings). A step whose answers were written
in two parts (at a shutdown, say) has two rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.arrays import FloatArray
from pivotal.errors import InputError, StoreError
from pivotal.fileio import create_private_file
from pivotal.names import OPERATOR, new_token, token_hash

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS credentials (party TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    seq INTEGER PRIMARY KEY,
    phase TEXT NOT NULL, round INTEGER NOT NULL,
    parties TEXT NOT NULL, sizes TEXT, plans BLOB, costs TEXT, received_at REAL NOT NULL,
    CHECK ((plans IS NULL) != (costs IS NULL) AND (plans IS NULL) = (sizes IS NULL))
);
CREATE TABLE IF NOT EXISTS rounds (
    phase TEXT NOT NULL, round INTEGER NOT NULL,
    primal REAL NOT NULL, dual REAL NOT NULL, eps_primal REAL NOT NULL, eps_dual REAL NOT NULL,
    rho REAL NOT NULL, plan BLOB NOT NULL, prices BLOB NOT NULL, committed_at REAL NOT NULL,
    PRIMARY KEY (phase, round)
);
"""
STORE_FORMAT = "3"
"""The layout above (``meta.store_format``); 2: plans as float64 BLOBs, a step's answers in one
row; 3: the costs answers also hold the value queries that certify the money (a format-2
negotiation cannot replay into a certified outcome). A database of another format is refused,
not misread."""


Value = FloatArray | dict[str, float]
"""An answer's content: a plan, or scalar costs at named plans."""


@dataclass(frozen=True)
class StoredAnswer:
    """One accepted answer."""

    phase: str
    round: int
    party: str
    value: Value


@dataclass(frozen=True)
class RoundRow:
    """A completed protocol round as the store keeps it: its run and number, the residuals and
    their tolerances, the penalty, and the consensus plan and prices it ended with."""

    phase: str
    round: int
    primal: float
    dual: float
    eps_primal: float
    eps_dual: float
    rho: float
    plan: FloatArray
    prices: FloatArray

    def describe(self) -> str:
        """One log line: the residuals against their tolerances and the penalty."""
        return (
            f"{self.phase} round {self.round}: primal {self.primal:.3g} (tol "
            f"{self.eps_primal:.3g}), dual {self.dual:.3g} (tol {self.eps_dual:.3g}), rho "
            f"{self.rho:.3g}"
        )


class Store:
    """One negotiation's database.

    Use :meth:`create` for a new database (it issues the credentials) and :meth:`open` for an
    existing one.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def _configure(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across process kills

    @classmethod
    def create(
        cls,
        path: Path,
        config: dict[str, Any],
        parties: list[str],
        *,
        publish: Callable[[dict[str, str]], None] | None = None,
    ) -> tuple[Store, dict[str, str]]:
        """A new database for a negotiation; returns it and one fresh credential per party
        (plus ``operator``), which are stored only as hashes.

        The database file is created 0600 whatever the umask (SQLite gives its ``-wal`` and
        ``-shm`` the same mode), exclusively and never through a symlink. ``publish`` gets the
        credentials before the transaction that stores their hashes commits (to write them to
        files, say); if it fails, or anything else does, nothing is left: the files are
        removed and the error raised."""
        if path.exists() or path.is_symlink():
            raise InputError(f"{path} already exists", field="db")
        try:
            os.close(create_private_file(path))
        except OSError as err:
            raise InputError(f"cannot create {path}: {err.strerror or err}", field="db") from None
        store: Store | None = None
        try:
            store = cls(path, cls._connect(path))
            store._configure()
            store._db.executescript(_SCHEMA)
            tokens = {p: new_token() for p in [*parties, OPERATOR]}
            with store.transaction():
                store._db.execute(
                    "INSERT INTO meta VALUES ('config', ?), ('created_at', ?), ('store_format', ?)",
                    (json.dumps(config, sort_keys=True), str(time.time()), STORE_FORMAT),
                )
                store._db.executemany(
                    "INSERT INTO credentials VALUES (?, ?)",
                    [(p, token_hash(t)) for p, t in tokens.items()],
                )
                if publish is not None:
                    publish(tokens)
        except BaseException:
            if store is not None:
                store.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            raise
        return store, tokens

    @classmethod
    def open(cls, path: Path) -> Store:
        """An existing database."""
        if not path.is_file():
            raise InputError(f"{path} does not exist", field="db")
        store = cls(path, cls._connect(path))
        try:  # read before anything is written to the file
            store.config()
            row = store._db.execute("SELECT value FROM meta WHERE key = 'store_format'").fetchone()
        except sqlite3.DatabaseError as exc:
            store.close()
            raise InputError(f"{path} is not a pivotal negotiation database ({exc})") from None
        except (InputError, StoreError):
            store.close()
            raise
        found = "1" if row is None else str(row[0])
        if found == STORE_FORMAT:
            try:
                tables = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master")}
            except sqlite3.DatabaseError as exc:
                store.close()
                raise StoreError(f"{path} is damaged ({exc})") from None
            missing = [t for t in TABLES if t not in tables]
            if missing:
                store.close()
                raise StoreError(
                    f"{path} is damaged: table {', '.join(repr(t) for t in missing)} is missing; "
                    "restore the database from a copy"
                )
        if found != STORE_FORMAT:
            store.close()
            raise InputError(
                f"{path} was written by another version of pivotal (store format {found}, this "
                f"version reads {STORE_FORMAT}); finish that negotiation with the version that "
                "started it, or start a new one with a new --db",
                field="db",
            )
        store._configure()
        return store

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    class _Transaction:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, kind: object, value: object, tb: object) -> None:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")

    def transaction(self) -> Store._Transaction:
        """``with store.transaction():`` commits on success, rolls back on an exception."""
        return Store._Transaction(self._db)

    def damaged(self, what: str) -> StoreError:
        """The one-line error for a damaged part of the database."""
        return StoreError(f"{self.path} is damaged: {what}; restore the database from a copy")

    def _json(self, text: Any, what: str) -> Any:
        """A stored JSON text read back; anything else is damage."""
        if not isinstance(text, str):
            raise self.damaged(f"{what} is not JSON text (found {type(text).__name__})")
        try:
            return json.loads(text)
        except ValueError as exc:
            raise self.damaged(f"{what} is not JSON ({exc})") from None

    def config(self) -> dict[str, Any]:
        """The public terms."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        if row is None:
            raise InputError(f"{self.path} holds no negotiation")
        value = self._json(row[0], "meta 'config'")
        if not isinstance(value, dict):
            raise self.damaged("meta 'config' is not a JSON object")
        return value

    def credential_hashes(self) -> dict[str, str]:
        """Party -> SHA-256 of its credential."""
        rows = self._db.execute("SELECT party, token_sha256 FROM credentials").fetchall()
        if not all(isinstance(p, str) and isinstance(h, str) and len(h) == 64 for p, h in rows):
            raise self.damaged("a credentials row is not a party name and a SHA-256 hash")
        return dict(rows)

    def add_answers(self, answers: list[tuple[str, int, str, Value]]) -> None:
        """Record accepted answers ``(phase, round, party, value)`` in acceptance order (inside
        a transaction): one row per run of answers to the same step and of the same kind."""
        now = time.time()
        rows: list[tuple[str, int, str, str | None, bytes | None, str | None, float]] = []
        for (phase, round_, is_costs), group in groupby(
            answers, key=lambda a: (a[0], a[1], isinstance(a[3], dict))
        ):
            run = list(group)
            parties = json.dumps([party for _, _, party, _ in run])
            if is_costs:
                costs = json.dumps([v for _, _, _, v in run])
                rows.append((phase, round_, parties, None, None, costs, now))
            else:
                plans = [np.asarray(v, dtype=np.float64) for _, _, _, v in run]
                sizes = json.dumps([len(v) for v in plans])
                rows.append(
                    (phase, round_, parties, sizes, plan_blob(np.concatenate(plans)), None, now)
                )
        self._db.executemany(
            "INSERT INTO answers (phase, round, parties, sizes, plans, costs, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def answers(self) -> Iterator[StoredAnswer]:
        """Every accepted answer in acceptance order."""
        rows = self._db.execute(
            "SELECT phase, round, parties, sizes, plans, costs FROM answers ORDER BY seq"
        )
        for phase, round_, parties, sizes, plans, costs in rows:
            where = f"answers row {phase} {round_}"
            names = self._json(parties, f"{where}: 'parties'")
            values: Sequence[Value] = []
            if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                raise self.damaged(f"{where}: 'parties' is not a JSON list of names")
            if not (isinstance(phase, str) and type(round_) is int):
                raise self.damaged(f"{where}: phase or round of the wrong type")
            if plans is None:
                values = self._json(costs, f"{where}: 'costs'")
                if not (isinstance(values, list) and all(_is_costs(v) for v in values)):
                    raise self.damaged(f"{where}: 'costs' is not a JSON list of label -> number")
            else:
                lengths = self._json(sizes, f"{where}: 'sizes'")
                if not (
                    isinstance(plans, bytes)
                    and len(plans) % 8 == 0
                    and isinstance(lengths, list)
                    and all(type(n) is int and n >= 0 for n in lengths)
                ):
                    raise self.damaged(f"{where}: the plans or their sizes are damaged")
                flat = plan_array(plans)
                whole = len(lengths) == len(names) and sum(lengths) == len(flat)
                values = np.split(flat, np.cumsum(lengths)[:-1]) if whole else []
            if len(values) != len(names):
                raise InputError(f"{self.path}: {where} is damaged")
            for party, value in zip(names, values, strict=True):
                yield StoredAnswer(phase, round_, party, value)

    def add_round(self, row: RoundRow) -> None:
        """Record a completed round (inside a transaction)."""
        self._db.execute(
            "INSERT INTO rounds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.phase,
                row.round,
                row.primal,
                row.dual,
                row.eps_primal,
                row.eps_dual,
                row.rho,
                plan_blob(row.plan),
                plan_blob(row.prices),
                time.time(),
            ),
        )

    def round_residuals(self) -> list[tuple[str, int, float, float]]:
        """``(phase, round, primal, dual)`` of every completed round, in commit order."""
        rows = self._db.execute("SELECT phase, round, primal, dual FROM rounds ORDER BY rowid")
        out = []
        for p, r, a, b in rows:
            if not (isinstance(p, str) and type(r) is int and _is_number(a) and _is_number(b)):
                raise self.damaged(f"rounds row {p!r} {r!r} holds values of the wrong type")
            out.append((p, r, float(a), float(b)))
        return out


TABLES = ("meta", "credentials", "answers", "rounds")


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _is_costs(x: Any) -> bool:
    return isinstance(x, dict) and all(isinstance(k, str) and _is_number(v) for k, v in x.items())


def plan_blob(plan: FloatArray) -> bytes:
    """A plan as stored: little-endian float64 bytes."""
    return np.ascontiguousarray(plan, dtype="<f8").tobytes()


def plan_array(blob: bytes) -> FloatArray:
    """A stored plan read back (a writable copy)."""
    return np.frombuffer(blob, dtype="<f8").astype(np.float64)
