"""The coordinator service's state: a negotiation session, its database and its credentials.

Every change goes through :meth:`CoordinatorState.submit`. The answers of the open round are
held in memory and written, together with the round they complete, in one SQLite transaction
before the next round's tasks become visible (group commit: one transaction per round, not per
answer). A crash before that loses only answers to the open round, which the agents post again
(each keeps its last answer until it gets a new task). On start, the state replays the stored
answers into a fresh session; the session is deterministic, so a restarted coordinator continues
exactly where the old one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.errors import AuthError, InputError, PivotalError, StoreError
from pivotal.names import OPERATOR, token_hash
from pivotal.negotiation.coordinator import RoundRecord
from pivotal.negotiation.deployment import NegotiationConfig, config_from_document
from pivotal.negotiation.result import negotiation_result
from pivotal.negotiation.session import (
    UNRECORDED,
    NegotiationSession,
    Phase,
    StaleMessageError,
    Task,
)
from pivotal.negotiation.transfers import NegotiationOutcome, settle
from pivotal.results import sha256_of
from pivotal.service.store import RoundRow, Store, Value
from pivotal.service.wire import (
    SCHEMA_VERSION,
    Answer,
    OwnResidual,
    ResidualPoint,
    Status,
    TaskMessage,
)

log = logging.getLogger("pivotal.service")


class CoordinatorState:
    """A negotiation served over HTTP (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        stored = store.config()
        admm = stored.get("admm")
        if isinstance(admm, dict):
            # terms written before a field existed: resume with the behaviour they ran with
            stored = {**stored, "admm": {**UNRECORDED, **admm}}
        self.config: NegotiationConfig = config_from_document(stored, source=str(store.path))
        self._hashes = store.credential_hashes()
        self.parties = frozenset(self.config.parties)
        self._replaying = True
        # every round's plan and prices go to the database, not to memory
        terms = self.config.terms(keep_plans=False)
        self.session = NegotiationSession(terms, on_round=self._on_round)
        self.residuals: list[ResidualPoint] = []
        # absolute residuals: (phase, round, primal, dual) and each party's own, per round
        self._absolute: list[tuple[str, int, float, float]] = []
        self._own: list[tuple[Any, Any]] = []
        self._party_index = {p: i for i, p in enumerate(self.config.parties)}
        self._pending_answers: list[tuple[str, int, str, Value]] = []
        self._pending_rounds: list[RoundRow] = []
        self._outcome: NegotiationOutcome | None = None
        self._outcome_doc: dict[str, Any] | None = None
        replayed = 0
        damaged = (
            f"{store.path}: replaying the stored answers does not reproduce the stored rounds; "
            "the database was changed by hand or written by another version of pivotal"
        )
        try:
            for a in store.answers():
                self.session.submit(a.party, Phase.parse(a.phase), a.round, a.value)
                replayed += 1
        except StoreError:
            raise
        except PivotalError as exc:
            raise InputError(f"{damaged} ({exc})") from None
        self._replaying = False
        if self._absolute != store.round_residuals():
            raise InputError(damaged)
        self._changed = asyncio.Event()
        self.listeners: list[Callable[[], None]] = []  # called at every change (e.g. streams)
        self.closing = False
        self.on_finish: Callable[[CoordinatorState], None] | None = None
        self.on_lost_commit: Callable[[StoreError], None] | None = None
        """What the process does when a completed round cannot be committed (the server stops
        the process so that a restart replays; without it the :class:`StoreError` is raised)."""
        self.round_opened = time.monotonic()
        self._position = self.session.position
        if replayed:
            log.info(
                "resumed from %s: %d answers replayed, at %s round %d (%s)",
                store.path,
                replayed,
                self.session.phase,
                self.session.round,
                self.session.status,
            )

    # ------------------------------------------------------------------ credentials
    def authenticate(self, token: str | None, party: str | None) -> str:
        """The party a bearer token belongs to; ``party`` (if given) must be that party.

        Raises
        ------
        AuthError
            401 for a missing or unknown token, 403 for another party's resource.
        """
        if not token:
            raise AuthError(401, "missing bearer token")
        digest = token_hash(token)
        if party is not None and hmac.compare_digest(digest, self._hashes.get(party, "")):
            return party
        owner = None
        for name, expected in self._hashes.items():  # constant time per comparison, no early exit
            if hmac.compare_digest(digest, expected):
                owner = name
        if owner is None:
            raise AuthError(401, "unknown bearer token")
        if party is not None and owner != party:
            raise AuthError(403, f"this token belongs to another party, not '{party}'")
        return owner

    # ------------------------------------------------------------------ progress
    def _on_round(self, run: Phase, record: RoundRecord) -> None:
        phase = str(run)
        point = ResidualPoint(
            phase=phase,
            round=record.round,
            primal_ratio=float(f"{record.primal_residual / record.eps_primal:.3g}"),
            dual_ratio=float(f"{record.dual_residual / record.eps_dual:.3g}"),
        )
        self.residuals.append(point)
        self._absolute.append((phase, record.round, record.primal_residual, record.dual_residual))
        self._own.append((record.party_primal, record.party_dual))
        if self._replaying:
            return
        self._pending_rounds.append(
            RoundRow(
                phase=phase,
                round=record.round,
                primal=record.primal_residual,
                dual=record.dual_residual,
                eps_primal=record.eps_primal,
                eps_dual=record.eps_dual,
                rho=record.rho,
                plan=np.concatenate(record.plan),
                prices=np.concatenate(
                    [record.prices[p] for p in self.config.parties if p in record.prices]
                ),
            )
        )

    def own_residuals(self, party: str) -> list[OwnResidual]:
        """A party's own absolute residuals per round (for its token only)."""
        i = self._party_index[party]
        return [
            OwnResidual(
                phase=point.phase,
                round=point.round,
                primal=float(primal[i]) if primal is not None else float("nan"),
                dual=float(dual[i]) if dual is not None else float("nan"),
            )
            for point, (primal, dual) in zip(self.residuals, self._own, strict=True)
        ]

    def status(self) -> Status:
        """Public progress."""
        s = self.session
        seconds = time.monotonic() - self.round_opened
        missing = list(s.missing())
        state: Any = s.status
        if state == "running" and missing and seconds > self.config.round_deadline_seconds:
            state = "waiting"
        return Status(
            negotiation=self.config.name,
            status=state,
            phase=str(s.phase),
            round=s.round,
            parties=list(self.config.parties),
            waiting_for=missing,
            seconds_in_round=seconds,
            round_deadline_seconds=self.config.round_deadline_seconds,
            message=s.message,
            residuals=self.residuals,
            runs={str(p): r for p, r in s.runs.items()},
        )

    def task(self, party: str) -> TaskMessage:
        """A party's current task as a wire message."""
        # built from the session's own values (already checked): no re-validation of the lists
        return TaskMessage.model_construct(**self.task_document(party))

    def task_document(self, party: str) -> dict[str, Any]:
        """A party's current task as the plain JSON document of a :class:`TaskMessage` (every
        field, in the model's order): the WebSocket stream serializes it directly."""
        tasks = self.session.tasks(party)
        t: Task = tasks[0] if tasks else self.session.task(party)
        return {
            "schema_version": SCHEMA_VERSION,
            "negotiation": self.config.name,
            "party": party,
            "kind": t.kind,
            "phase": str(t.phase),
            "round": t.round,
            "z": None if t.z is None else t.z.tolist(),
            "prices": None if t.prices is None else t.prices.tolist(),
            "rho": t.rho,
            "plans": {k: v.tolist() for k, v in t.plans.items()},
            "values": {k: v.tolist() for k, v in t.values.items()},
            "max_quantity": t.max_quantity if t.kind == "costs" else None,
            "more": [
                {
                    "phase": str(m.phase),
                    "round": m.round,
                    "z": None if m.z is None else m.z.tolist(),
                    "prices": None if m.prices is None else m.prices.tolist(),
                    "rho": m.rho,
                }
                for m in tasks[1:]
            ],
            "message": self.session.message,
        }

    async def wait_while(self, blocked: Callable[[], bool], seconds: float) -> None:
        """Long poll: return once ``blocked()`` is false (checked after every change of the
        negotiation), the service closes, or ``seconds`` have passed."""
        deadline = time.monotonic() + seconds
        while blocked() and not self.closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.next_change(), timeout=remaining)

    def next_change(self) -> Coroutine[Any, Any, bool]:
        """An awaitable that returns at the next change of the negotiation (or shutdown).

        The event is taken when this is called, not when the awaitable first runs: a caller
        that checks the state and then calls this cannot miss a change in between (as it could
        with ``asyncio.wait_for``, which starts the awaitable in a task of its own)."""
        return self._changed.wait()

    def wake_all(self) -> None:
        """Release every waiting request (a change or shutdown)."""
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in self.listeners:
            listener()

    # ------------------------------------------------------------------ answers
    def submit(self, party: str, answer: Answer) -> str:
        """Apply an answer; once it completes a round (or ends a phase or the negotiation), the
        round's answers and the round are committed in one transaction, before anyone can see
        the next round.

        Raises
        ------
        StaleMessageError
            For another phase or round than the current one.
        InputError
            For an answer of the wrong form.
        """
        value: Value
        if answer.plan is not None:
            value = np.asarray(answer.plan, dtype=np.float64)
        elif answer.costs is not None:
            value = dict(answer.costs)
        else:
            raise InputError("an answer needs 'plan' or 'costs'")
        s = self.session
        result = self._submit_one(party, answer.phase, answer.round, value)
        for item in answer.more:  # the other runs' answers, each taken on its own
            try:
                self._submit_one(party, item.phase, item.round, np.asarray(item.plan))
            except StaleMessageError:  # that run moved on meanwhile: its current task follows
                continue
        position = s.position
        if position != self._position or s.status != "running":
            self.flush()
            self._position = position
            self.round_opened = time.monotonic()
            if s.status != "running":
                log.info("negotiation %s: %s %s", self.config.name, s.status, s.message)
                if self.on_finish is not None:
                    self.on_finish(self)
            self.wake_all()
        return result

    def _submit_one(self, party: str, phase: str, round_: int, value: Value) -> str:
        try:
            run = Phase.parse(phase)
        except InputError:
            raise StaleMessageError(
                f"the answer is for {phase} round {round_}, which is no phase of this negotiation"
            ) from None
        result = self.session.submit(party, run, round_, value)
        if result == "accepted":
            self._pending_answers.append((phase, round_, party, value))
        return result

    def flush(self) -> None:
        """Write the held answers and completed rounds in one transaction (at the end of every
        round, and on shutdown)."""
        if not self._pending_answers and not self._pending_rounds:
            return
        try:
            with self.store.transaction():
                self.store.add_answers(self._pending_answers)
                for row in self._pending_rounds:
                    self.store.add_round(row)
        except sqlite3.Error as exc:  # the session moved on but the database did not
            lost = StoreError(f"cannot commit to {self.store.path} ({exc})")
            if self.on_lost_commit is None:
                raise lost from None
            self.on_lost_commit(lost)
        self._pending_answers.clear()
        for row in self._pending_rounds:
            log.info("%s", row.describe())
        self._pending_rounds.clear()

    # ------------------------------------------------------------------ results
    def outcome(self) -> NegotiationOutcome:
        """The settled outcome (once done)."""
        if self._outcome is None:
            if self.session.status != "done":
                raise StaleMessageError(
                    f"the negotiation is not finished ({self.session.status}, "
                    f"{self.session.phase} round {self.session.round})"
                )
            self._outcome = settle(
                self.session,
                seconds=0.0,
                input_sha256=sha256_of(self.config.model_dump(mode="json")),
            )
        return self._outcome

    def outcome_document(self) -> dict[str, Any]:
        """The full outcome as the CLI's JSON document (the operator's view)."""
        if self._outcome_doc is None:
            self._outcome_doc = negotiation_result(
                self.outcome(), self.config.blocks(), self.config.name
            )
        return self._outcome_doc

    def is_operator(self, party: str) -> bool:
        """Whether a credential is the operator's."""
        return party == OPERATOR


def open_state(
    db: Path,
    config_path: Path | None,
    *,
    publish: Callable[[dict[str, str]], None] | None = None,
) -> tuple[CoordinatorState, dict[str, str]]:
    """Open an existing database, or create one from a config (returning fresh credentials;
    ``publish`` gets them before the database commits them, see :meth:`Store.create`).

    Raises
    ------
    StoreError
        For a damaged database, whatever the damage (one line naming the file and what is
        wrong, never a traceback).
    InputError
        For a database of another negotiation or version, or a bad config.
    """
    try:
        return _open_state(db, config_path, publish)
    except PivotalError:
        raise
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{db} is damaged ({exc}); restore the database from a copy") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        # the file's contents are outside input: anything unreadable in them is damage
        raise StoreError(
            f"{db} is damaged ({exc.__class__.__name__}: {exc}); restore the database from a copy"
        ) from None


def _open_state(
    db: Path, config_path: Path | None, publish: Callable[[dict[str, str]], None] | None
) -> tuple[CoordinatorState, dict[str, str]]:
    from pivotal.negotiation.deployment import load_config

    if db.exists():
        store = Store.open(db)
        if config_path is not None:
            given = load_config(config_path).model_dump(mode="json")
            stored = config_from_document(store.config(), source=str(db))
            if given != stored.model_dump(mode="json"):
                raise InputError(
                    f"{db} holds another negotiation than {config_path}; use a new --db or the "
                    "same config",
                    field="config",
                )
        return CoordinatorState(store), {}
    if config_path is None:
        raise InputError(f"{db} does not exist; give --config to start a new negotiation")
    config = load_config(config_path)
    store, tokens = Store.create(
        db, config.model_dump(mode="json"), list(config.parties), publish=publish
    )
    return CoordinatorState(store), tokens
