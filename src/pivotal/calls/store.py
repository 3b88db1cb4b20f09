"""A call's database: SQLite in WAL mode, every change one transaction, events append-only.

Tables: ``meta`` (the terms, the current deadline, the outcome and the published record as JSON),
``signing_key`` (the call's Ed25519 private key), ``participants`` (name, role, status and the
SHA-256 of the credential, never the credential), ``reports`` (each participant's current sealed
report and its hash) and ``events``, the log: registration, approval, submission, revision,
withdrawal, refused request, deadline extension, close and publication, in order, with the signed
receipt of each accepted report. Triggers refuse any UPDATE or DELETE on ``events``.

A receipt is issued only after the transaction that stores its report has committed, with
``synchronous=FULL``: a receipt in a participant's hands means the report is on disk. The
database and its ``-wal`` and ``-shm`` files are created 0600 whatever the umask (SQLite gives
the side files the main file's mode).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic_core import from_json, to_json

from pivotal.calls.terms import CallTerms, terms_from_document
from pivotal.errors import InputError
from pivotal.fileio import create_private_file
from pivotal.names import OPERATOR, new_token, token_hash

STORE_FORMAT = "call-1"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE signing_key (id INTEGER PRIMARY KEY CHECK (id = 1), private BLOB NOT NULL);
CREATE TABLE participants (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, status TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE, registered_seq INTEGER NOT NULL
);
CREATE TABLE reports (
    participant TEXT PRIMARY KEY REFERENCES participants(name),
    seq INTEGER NOT NULL, report TEXT NOT NULL, sha256 TEXT NOT NULL
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL,
    participant TEXT, detail TEXT NOT NULL
);
CREATE INDEX events_by_participant ON events(participant, seq);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
"""


@dataclass(frozen=True)
class Participant:
    """A registered or invited participant (no credential, no report)."""

    name: str
    role: str
    status: str  # "approved", "pending" (the operator's decision) or "rejected"
    registered_seq: int


@dataclass(frozen=True)
class Event:
    """One line of the event log."""

    seq: int
    at: str
    kind: str
    participant: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class Pending:
    """A checked report (or, with ``entry=None``, a withdrawal) waiting for its commit."""

    participant: str
    entry: dict[str, Any] | None
    sha256: str | None
    at: str


@dataclass(frozen=True)
class StoredReport:
    """A participant's current report."""

    participant: str
    seq: int
    entry: dict[str, Any]
    sha256: str


class CallStore:
    """One call's database (see the module docstring). Not thread-safe: one writer."""

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path = path
        self._db = db
        # one connection shared by the event loop (reads, small writes) and the group-commit
        # thread: a transaction holds the lock from BEGIN to COMMIT, a read holds it while it
        # runs, so no read sees a transaction half-way
        self._lock = threading.RLock()
        self._checkpointer: tuple[threading.Event, threading.Thread] | None = None

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @classmethod
    def create(
        cls,
        path: Path,
        terms: CallTerms,
        private_key: bytes,
        now: str,
        *,
        publish: Callable[[dict[str, str]], None] | None = None,
    ) -> tuple[CallStore, dict[str, str]]:
        """A new call database; returns it and the fresh credentials of the operator and the
        invited participants (stored only as hashes). ``publish`` gets the credentials before
        the transaction that stores their hashes commits; if it fails, nothing is left."""
        if path.exists() or path.is_symlink():
            raise InputError(f"{path} already exists", field="db")
        try:
            os.close(create_private_file(path))
        except OSError as err:
            raise InputError(f"cannot create {path}: {err.strerror or err}", field="db") from None
        store: CallStore | None = None
        try:
            store = cls(path, cls._connect(path))
            store._db.executescript(_SCHEMA)
            tokens = {OPERATOR: new_token()}
            with store.transaction():
                store._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("terms", json.dumps(terms.public_document(), sort_keys=True)),
                        ("deadline", terms.public_document()["deadline"]),
                        ("store_format", STORE_FORMAT),
                        ("created_at", now),
                        ("operator_token_sha256", token_hash(tokens[OPERATOR])),
                    ],
                )
                store._db.execute("INSERT INTO signing_key VALUES (1, ?)", (private_key,))
                for inv in terms.invited:
                    tokens[inv.name] = new_token()
                    seq = store._event(now, "invitation", inv.name, {"role": inv.role})
                    store._db.execute(
                        "INSERT INTO participants VALUES (?, ?, 'approved', ?, ?)",
                        (inv.name, inv.role, token_hash(tokens[inv.name]), seq),
                    )
                store._event(now, "creation", None, {"call": terms.name})
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
    def open(cls, path: Path) -> CallStore:
        """An existing call database (damage is named in one line)."""
        if not path.is_file():
            raise InputError(f"{path} does not exist", field="db")
        try:
            store = cls(path, cls._connect(path))
            fmt = store.meta("store_format")
            store.terms()
            store.private_key()
            # a participant's latest receipt without a scan of the whole log (a database made
            # before the index existed gets it here, once)
            store._db.execute(
                "CREATE INDEX IF NOT EXISTS events_by_participant ON events(participant, seq)"
            )
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{path} is not a pivotal call database ({exc})", field="db") from None
        if fmt != STORE_FORMAT:
            raise InputError(
                f"{path} is not a pivotal call database (format {fmt!r}, expected "
                f"{STORE_FORMAT!r})",
                field="db",
            )
        return store

    def checkpoint_in_background(self, interval: float = 1.0) -> None:
        """Move the write-ahead log into the database from a thread of its own, every
        ``interval`` seconds, instead of in the commit that crosses SQLite's threshold: that
        commit (and every submission waiting for it) would wait for the database file's sync
        too (10,000 submissions on this machine's disk: p99 70-918 ms with the checkpoint in
        the commit, 18 ms without; ``benchmarks/call_load.py``). A passive checkpoint on a
        second connection never blocks a writer; a crash at any moment leaves the log to be
        replayed at the next open, as before. :meth:`close` stops the thread."""
        if self._checkpointer is not None:
            return
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        stop = threading.Event()
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

        def run() -> None:
            try:
                while not stop.wait(interval):
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                db.close()

        thread = threading.Thread(target=run, name="call-checkpoint", daemon=True)
        thread.start()
        self._checkpointer = (stop, thread)

    def close(self) -> None:
        """Stop the background checkpoints, if any, and close the connection."""
        if self._checkpointer is not None:
            stop, thread = self._checkpointer
            stop.set()
            thread.join()
            self._checkpointer = None
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``with store.transaction():`` commits on success, rolls back on an exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ------------------------------------------------------------------ reading
    def meta(self, key: str) -> str | None:
        """A ``meta`` value."""
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return None if not rows else str(rows[0][0])

    def meta_json(self, key: str) -> Any:
        """A ``meta`` value holding JSON (None if absent)."""
        text = self.meta(key)
        if text is None:
            return None
        try:
            return from_json(text)
        except ValueError:
            raise InputError(f"{self.path}: meta '{key}' is damaged", field="db") from None

    def terms(self) -> CallTerms:
        """The public terms."""
        doc = self.meta_json("terms")
        if doc is None:
            raise InputError(f"{self.path} holds no call", field="db")
        return terms_from_document(doc, source=str(self.path))

    def private_key(self) -> bytes:
        """The call's signing key."""
        rows = self._read("SELECT private FROM signing_key")
        row = rows[0] if rows else None
        if row is None or not isinstance(row[0], bytes) or len(row[0]) != 32:
            raise InputError(f"{self.path}: the call's signing key is missing or damaged")
        return bytes(row[0])

    def participants(self) -> list[Participant]:
        """Every participant in registration order."""
        rows = self._read(
            "SELECT name, role, status, registered_seq FROM participants ORDER BY registered_seq"
        )
        return [Participant(str(n), str(r), str(s), int(q)) for n, r, s, q in rows]

    def credential_hashes(self) -> dict[str, str]:
        """SHA-256 of each credential -> participant (the operator's under ``operator``)."""
        out = {str(h): str(n) for n, h in self._read("SELECT name, token_sha256 FROM participants")}
        op = self.meta("operator_token_sha256")
        if op:
            out[op] = OPERATOR
        return out

    def reports(self) -> list[StoredReport]:
        """Every current report, by participant name."""
        rows = self._read(
            "SELECT participant, seq, report, sha256 FROM reports ORDER BY participant"
        )
        return [StoredReport(str(p), int(q), from_json(r), str(h)) for p, q, r, h in rows]

    def report_hashes(self) -> list[tuple[str, int, str]]:
        """``(participant, seq, sha256)`` of every current report, by participant name."""
        rows = self._read("SELECT participant, seq, sha256 FROM reports ORDER BY participant")
        return [(str(p), int(q), str(h)) for p, q, h in rows]

    def report_count(self) -> int:
        """Number of current reports."""
        return int(self._read("SELECT count(*) FROM reports")[0][0])

    def has_report(self) -> set[str]:
        """Participants with a current report."""
        return {str(r[0]) for r in self._read("SELECT participant FROM reports")}

    def events(self, after: int = 0, limit: int = 1000) -> list[Event]:
        """Events with ``seq > after``, oldest first."""
        rows = self._read(
            "SELECT seq, at, kind, participant, detail FROM events WHERE seq > ? ORDER BY seq "
            "LIMIT ?",
            (after, limit),
        )
        return [Event(int(s), str(a), str(k), p, json.loads(d)) for s, a, k, p, d in rows]

    def last_receipt(self, participant: str) -> dict[str, Any] | None:
        """The participant's latest receipt (submission, revision or withdrawal)."""
        rows = self._read(
            "SELECT detail FROM events WHERE participant = ? AND kind IN "
            "('submission', 'revision', 'withdrawal') ORDER BY seq DESC LIMIT 1",
            (participant,),
        )
        if not rows:
            return None
        receipt: dict[str, Any] = json.loads(rows[0][0])["receipt"]
        return receipt

    # ------------------------------------------------------------------ writing
    def _event(self, at: str, kind: str, participant: str | None, detail: dict[str, Any]) -> int:
        cur = self._db.execute(
            "INSERT INTO events (at, kind, participant, detail) VALUES (?, ?, ?, ?)",
            (at, kind, participant, json.dumps(detail, sort_keys=True)),
        )
        return int(cur.lastrowid or 0)

    def next_seq(self) -> int:
        """The sequence number the next event will get (inside a transaction)."""
        row = self._db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(row[0]) + 1

    def log(
        self,
        at: str,
        kind: str,
        participant: str | None,
        detail: dict[str, Any],
        *,
        durable: bool = True,
    ) -> int:
        """Append one event in its own transaction. ``durable=False`` (refused requests) commits
        without waiting for the disk (``synchronous=NORMAL``; WAL keeps the file consistent):
        the event reaches the disk with the next durable commit, so a crash may lose the
        refusals logged since then, never a receipt; and a flood of refusals does not cost a
        disk sync each (about 4 ms, on the event loop) when the participants' submissions need
        the disk."""
        with self._lock:
            if not durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                with self.transaction():
                    return self._event(at, kind, participant, detail)
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    def register(self, at: str, name: str, role: str, status: str) -> tuple[str, int]:
        """Add a participant; returns its fresh credential and its registration's event."""
        token = new_token()
        with self.transaction():
            seq = self._event(at, "registration", name, {"role": role, "status": status})
            self._db.execute(
                "INSERT INTO participants VALUES (?, ?, ?, ?, ?)",
                (name, role, status, token_hash(token), seq),
            )
        return token, seq

    def set_status(self, at: str, name: str, status: Literal["approved", "rejected"]) -> None:
        """Approve or reject a pending participant (an ``approval`` or ``rejection`` event)."""
        kind = "approval" if status == "approved" else "rejection"
        with self.transaction():
            self._event(at, kind, name, {})
            self._db.execute("UPDATE participants SET status = ? WHERE name = ?", (status, name))

    def put_reports(
        self, pending: list[Pending], sign: Callable[[int, str, Pending], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Store reports (or, with ``entry=None``, withdrawals) in one transaction and return
        their signed receipts; ``sign(seq, action, item)`` builds a receipt. Committed before
        return."""
        out: list[dict[str, Any]] = []
        with self.transaction():
            seq = self.next_seq() - 1
            current: dict[str, bool] = {}
            for item in pending:
                name = item.participant
                if name not in current:
                    current[name] = (
                        self._db.execute(
                            "SELECT 1 FROM reports WHERE participant = ?", (name,)
                        ).fetchone()
                        is not None
                    )
                seq += 1
                if item.entry is None:
                    action, kind = "withdraw", "withdrawal"
                else:
                    action, kind = (
                        ("revise", "revision") if current[name] else ("submit", "submission")
                    )
                signed = sign(seq, action, item)
                self._db.execute(
                    "INSERT INTO events (seq, at, kind, participant, detail) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (seq, item.at, kind, name, json.dumps({"receipt": signed}, sort_keys=True)),
                )
                if item.entry is None:
                    self._db.execute("DELETE FROM reports WHERE participant = ?", (name,))
                else:
                    self._db.execute(
                        "INSERT INTO reports VALUES (?, ?, ?, ?) ON CONFLICT(participant) DO "
                        "UPDATE SET seq = excluded.seq, report = excluded.report, "
                        "sha256 = excluded.sha256",
                        (name, seq, json.dumps(item.entry, sort_keys=True), item.sha256),
                    )
                current[name] = item.entry is not None
                out.append(signed)
        return out

    def set_deadline(self, at: str, old: str, new: str) -> None:
        """Record an extension."""
        with self.transaction():
            self._event(at, "extension", None, {"from": old, "to": new})
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'deadline'", (new,))

    def set_outcome(self, at: str, outcome: dict[str, Any], summary: dict[str, Any]) -> None:
        """Store the close's outcome (once)."""
        with self.transaction():
            if self.meta("outcome") is not None:
                raise InputError(f"{self.path}: the call is already closed")
            self._event(at, "close", None, summary)
            self._db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("outcome", to_json(outcome).decode()), ("closed_at", at)],
            )

    def set_record(self, at: str, record: dict[str, Any]) -> None:
        """Store the published record (once)."""
        with self.transaction():
            self._event(at, "publication", None, {"record_signature": record["signature"]})
            self._db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("record", to_json(record).decode()), ("published_at", at)],
            )


__all__ = [
    "OPERATOR",
    "CallStore",
    "Event",
    "Participant",
    "Pending",
    "StoredReport",
]
