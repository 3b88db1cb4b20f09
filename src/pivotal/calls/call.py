"""A call served: its terms, store and key, and every action of the operator, the participants
and the public. No web framework here: the HTTP app (:mod:`pivotal.service.call_app`) maps these
methods to endpoints and their errors to status codes.

Sealing: no method returns a report's content, or its hash, before the close; the operator's
views carry counts, names, roles and whether a participant has a current report. The report
hashes appear in the event log after the close and in the published record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pivotal.calls.close import assemble, own_result, public_outcome, run_close
from pivotal.calls.lifecycle import (
    CallAuthError,
    CallCloseError,
    CallStateError,
    Phase,
    closing_error,
    phase_at,
    require_closable,
    require_closed,
    require_extension,
    require_open,
    require_published,
)
from pivotal.calls.receipts import CallKey, receipt
from pivotal.calls.reports import validate_report
from pivotal.calls.store import CallStore, Event, Participant, Pending
from pivotal.calls.terms import CallTerms, check_name, iso, utc_now
from pivotal.engine import Engine
from pivotal.errors import InputError
from pivotal.names import OPERATOR, token_hash

RECORD_KIND = "pivotal-call-record"
CLOSE_FAILED = "close_failed"
"""The event a failed close leaves in the log (its detail: ``error``, ``reason``)."""
_FIELD_SHOWN = 100
_REASON_SHOWN = 1000
Clock = Callable[[], datetime]


class Call:
    """One call (see the module docstring)."""

    def __init__(self, store: CallStore, *, clock: Clock = utc_now) -> None:
        self.store = store
        self.clock = clock
        self.terms: CallTerms = store.terms()
        # every receipt carries it; the terms may list 10^4 invitations: hashed once
        self.terms_hash = self.terms.sha256()
        self.key = CallKey.from_bytes(store.private_key())
        deadline = store.meta("deadline")
        if deadline is None:
            raise InputError(f"{store.path}: the deadline is missing", field="db")
        self.deadline = datetime.fromisoformat(deadline.replace("Z", "+00:00"))
        self._tokens = store.credential_hashes()
        self._participants = {p.name: p for p in store.participants()}
        # the public status counts them on every request: kept, not recounted (O(participants))
        self._approved = sum(1 for p in self._participants.values() if p.status == "approved")
        self._reported = store.has_report()
        self._outcome: dict[str, Any] | None = store.meta_json("outcome")
        self._record: dict[str, Any] | None = store.meta_json("record")
        self.refused_unauthenticated = 0
        # the reports are frozen once the close starts: a report checked before the deadline
        # but still waiting for its commit (GroupCommit) is refused then, without a receipt,
        # rather than stored after the close read the reports (receipted but not in the outcome)
        self._seal = threading.Lock()
        self._frozen = self._outcome is not None
        # one close computes at a time (it may run in a worker thread while the other methods
        # answer): ``_closing`` shows the phase "closing" meanwhile. Neither is stored: after a
        # restart (or a failed close) the call is back in "deadline" and can be closed again
        self._close_lock = threading.Lock()
        self._closing = False

    @classmethod
    def create(
        cls,
        path: Path,
        terms: CallTerms,
        *,
        clock: Clock = utc_now,
        publish: Callable[[dict[str, str]], None] | None = None,
    ) -> tuple[Call, dict[str, str]]:
        """A new call; returns it and the credentials (operator and invited), shown once.
        ``publish`` gets them before the database commits them (:meth:`CallStore.create`)."""
        key = CallKey.generate()
        store, tokens = CallStore.create(
            path, terms, key.private_bytes(), iso(clock()), publish=publish
        )
        return cls(store, clock=clock), tokens

    @classmethod
    def open(cls, path: Path, *, clock: Clock = utc_now) -> Call:
        """An existing call (after a restart: nothing is lost, nothing changes)."""
        return cls(CallStore.open(path), clock=clock)

    # ------------------------------------------------------------------ state
    def phase(self, now: datetime | None = None) -> Phase:
        """The phase now."""
        return phase_at(
            now or self.clock(),
            self.deadline,
            closed=self._outcome is not None,
            published=self._record is not None,
            closing=self._closing,
        )

    @property
    def participants(self) -> dict[str, Participant]:
        """Participants by name."""
        return self._participants

    # ------------------------------------------------------------------ credentials
    def authenticate(self, token: str | None) -> str:
        """The participant (or ``operator``) a credential belongs to; 401 otherwise."""
        if not token:
            self.refused_unauthenticated += 1
            raise CallAuthError(401, "missing bearer token")
        owner = self._tokens.get(token_hash(token))  # a dict on 256-bit hashes: no timing leak
        if owner is None:
            self.refused_unauthenticated += 1
            raise CallAuthError(401, "unknown bearer token")
        return owner

    def require_operator(self, token: str | None) -> None:
        """The operator's credential (401/403)."""
        owner = self.authenticate(token)
        if owner != OPERATOR:
            exc = CallAuthError(403, "this action is for the operator's token only")
            self.refuse(owner, exc)
            raise exc

    def require_participant(self, token: str | None, name: str) -> Participant:
        """The credential of participant ``name`` (401/403)."""
        owner = self.authenticate(token)
        p = self._participants.get(name)
        if owner != name or p is None:  # the operator is no participant, even as "operator"
            who = "the operator" if owner == OPERATOR else "another participant"
            exc = CallAuthError(403, f"this token belongs to {who}, not to participant '{name}'")
            self.refuse(owner, exc)
            raise exc
        return p

    # ------------------------------------------------------------------ participants
    def register(self, name: str, role: str) -> tuple[str, str]:
        """A new participant (public, while the call is open and its terms allow it); returns
        its credential (shown once) and its status (approved, or pending the operator)."""
        now = self.clock()
        require_open(self.phase(now), now, self.deadline, "registration")
        if self.terms.registration != "open":
            raise CallAuthError(403, "this call is by invitation only")
        check_name(name)
        if role not in self.terms.roles_allowed():
            raise InputError(
                f"role '{role}' is not open in this call; use one of "
                f"{list(self.terms.roles_allowed())}",
                field="role",
            )
        if name in self._participants:
            raise CallStateError(f"'{name}' is already registered", server_time=now)
        if len(self._participants) >= self.terms.max_participants:
            raise CallStateError(
                f"the call is full ({self.terms.max_participants} participants)", server_time=now
            )
        status = "approved" if self.terms.approval == "automatic" else "pending"
        token, seq = self.store.register(iso(now), name, role, status)
        self._participants[name] = Participant(name, role, status, seq)
        self._tokens[token_hash(token)] = name
        self._approved += status == "approved"
        return token, status

    def _registration(
        self, token: str | None, name: str, what: str
    ) -> tuple[Participant, datetime]:
        """The registration the operator decides on (``what``: approval or rejection), while
        the call is open, and the time of the decision."""
        self.require_operator(token)
        now = self.clock()
        require_open(self.phase(now), now, self.deadline, what)
        p = self._participants.get(name)
        if p is None:
            raise InputError(f"no participant named '{name}'", field="name")
        return p, now

    def approve(self, token: str | None, name: str) -> None:
        """The operator approves a pending registration."""
        p, now = self._registration(token, name, "approval")
        if p.status == "rejected":
            raise CallStateError(f"'{name}' was rejected; it cannot be approved", server_time=now)
        if p.status != "approved":
            self.store.set_status(iso(now), name, "approved")
            self._participants[name] = Participant(p.name, p.role, "approved", p.registered_seq)
            self._approved += 1

    def reject(self, token: str | None, name: str) -> None:
        """The operator rejects a pending registration: its credential can never submit, and
        the name stays taken (a rejected party cannot come back under it). An approved
        participant cannot be rejected: it may hold a sealed report, which the operator must
        not be able to drop unseen."""
        p, now = self._registration(token, name, "rejection")
        if p.status == "approved":
            raise CallStateError(
                f"'{name}' is approved; only a pending registration can be rejected",
                server_time=now,
            )
        if p.status != "rejected":
            self.store.set_status(iso(now), name, "rejected")
            self._participants[name] = Participant(p.name, p.role, "rejected", p.registered_seq)

    # ------------------------------------------------------------------ reports
    def submit(self, token: str | None, name: str, body: Any) -> dict[str, Any]:
        """Submit or revise ``name``'s sealed report; returns the signed receipt.

        Raises ``CallAuthError`` (401/403), ``CallStateError`` (409: after the deadline) or
        ``InputError`` (422: the field and the reason); each refusal is logged (without the
        report's content).
        """
        return self.commit([self.prepare_submit(token, name, body)])[0]

    def withdraw(self, token: str | None, name: str) -> dict[str, Any]:
        """Withdraw ``name``'s report (it takes no part unless it submits again)."""
        return self.commit([self.prepare_withdraw(token, name)])[0]

    def prepare_submit(self, token: str | None, name: str, body: Any) -> Pending:
        """Check the credential, the phase and the report; nothing is stored yet (see
        :meth:`commit`)."""
        p = self.require_participant(token, name)
        now = self.clock()
        try:
            if p.status != "approved":
                raise CallAuthError(403, not_approved(p))
            require_open(self.phase(now), now, self.deadline, "the submission")
            report = validate_report(self.terms, name, p.role, body)
        except (CallAuthError, CallStateError, InputError) as exc:
            self.refuse(name, exc, now)
            raise
        return Pending(name, report.entry, report.sha256, iso(now))

    def prepare_withdraw(self, token: str | None, name: str) -> Pending:
        """Check a withdrawal (see :meth:`prepare_submit`)."""
        p = self.require_participant(token, name)
        now = self.clock()
        try:
            if p.status != "approved":
                raise CallAuthError(403, not_approved(p))
            require_open(self.phase(now), now, self.deadline, "the withdrawal")
            if name not in self._reported:
                raise CallStateError(f"'{name}' has no report to withdraw", server_time=now)
        except (CallAuthError, CallStateError) as exc:
            self.refuse(name, exc, now)
            raise
        return Pending(name, None, None, iso(now))

    def commit(self, pending: list[Pending]) -> list[dict[str, Any]]:
        """Store checked reports and withdrawals in ONE transaction (group commit: one disk
        sync for every request that arrived meanwhile) and return their signed receipts, in
        order. The receipts exist only once the transaction has committed."""

        def sign(seq: int, action: str, item: Pending) -> dict[str, Any]:
            return receipt(
                self.key,
                call=self.terms.name,
                terms_hash=self.terms_hash,
                participant=item.participant,
                action=action,
                seq=seq,
                report_sha256=item.sha256,
                server_time=item.at,
            )

        with self._seal:
            if self._frozen:
                now = self.clock()
                exc = CallStateError(
                    "the call was closed before this request was stored; no receipt was issued",
                    server_time=now,
                )
                for item in pending:
                    self.refuse(item.participant, exc, now)
                raise exc
            receipts = self.store.put_reports(pending, sign)
            for item in pending:
                if item.entry is None:
                    self._reported.discard(item.participant)
                else:
                    self._reported.add(item.participant)
        return receipts

    def refuse(self, name: str | None, exc: Exception, now: datetime | None = None) -> None:
        """Log a refused request: who, the status and the field, never the content."""
        status = getattr(exc, "status", None) or (409 if isinstance(exc, CallStateError) else 422)
        detail: dict[str, Any] = {"status": status}
        if isinstance(exc, InputError) and exc.field:
            detail["field"] = exc.field[:_FIELD_SHOWN]  # a key the participant chose: bounded
        self.store.log(iso(now or self.clock()), "refused", name, detail, durable=False)

    def receipt_of(self, token: str | None, name: str) -> dict[str, Any] | None:
        """The participant's latest receipt."""
        self.require_participant(token, name)
        return self.store.last_receipt(name)

    # ------------------------------------------------------------------ operator
    def extend(self, token: str | None, new: datetime) -> None:
        """Move the deadline later, before it passes."""
        self.require_operator(token)
        now = self.clock()
        try:
            new = new.astimezone(UTC)
        except (OverflowError, ValueError):
            raise InputError("the new deadline is out of range", field="deadline") from None
        require_extension(self.phase(now), now, self.deadline, new)
        self.store.set_deadline(iso(now), iso(self.deadline), iso(new))
        self.deadline = new

    def close(self, token: str | None, *, engine: Engine | None = None) -> dict[str, Any]:
        """Compute the outcome once from the stored reports (after the deadline).

        Safe to call from a worker thread while the other methods answer: one close computes
        at a time, the phase is "closing" meanwhile, and a close asked then gets
        ``CallStateError`` (409). Reports are frozen from the start. A computation that fails
        (the solver or the engine raises, memory runs out) logs a ``close_failed`` event with
        its reason and raises :class:`CallCloseError`; nothing is stored and the call can be
        closed again. ``engine`` runs an auction's counterfactual solves.
        """
        self.require_operator(token)
        now = self.clock()
        if not self._close_lock.acquire(blocking=False):
            raise closing_error(now)
        try:
            require_closable(self.phase(now), now, self.deadline)
            self._frozen = True  # no commit starts after this (checked under the seal) ...
            with self._seal:  # ... and one under way ends before the reports are read
                pass
            if self._outcome is None:
                self._closing = True
                try:
                    self._outcome = self._compute_outcome(engine)
                finally:
                    self._closing = False
        finally:
            self._close_lock.release()
        return self.summary()

    def freeze(self, token: str | None) -> None:
        """The close's first step, without waiting (the HTTP app takes it on its event loop
        before the computation goes to a worker thread): after the deadline, the operator's
        request refuses every report not stored yet, without a receipt."""
        self.require_operator(token)
        now = self.clock()
        phase = self.phase(now)
        if phase is Phase.OPEN:
            require_closable(phase, now, self.deadline)
        self._frozen = True

    def _compute_outcome(self, engine: Engine | None) -> dict[str, Any]:
        """Run the mechanism on the stored reports and store its outcome (the close)."""
        try:
            document = assemble(self.terms, self.store.reports())
            outcome = run_close(self.terms, document, engine=engine)
            summary = {"reports": len(self._reported), "void": outcome.get("void")}
            self.store.set_outcome(iso(self.clock()), outcome, summary)
        except Exception as exc:  # any failure: logged, answered, and the close can be retried
            error = type(exc).__name__
            reason = (str(exc) or error)[:_REASON_SHOWN]
            try:
                self.store.log(
                    iso(self.clock()), CLOSE_FAILED, None, {"error": error, "reason": reason}
                )
            except Exception as log_exc:  # the reply still says why
                reason += f" (and the event could not be logged: {log_exc})"
            raise CallCloseError(
                f"the close failed ({error}: {reason}); no outcome was stored and the call "
                "can be closed again",
                error=error,
                reason=reason,
            ) from exc
        return outcome

    def outcome(self, token: str | None) -> dict[str, Any]:
        """The whole outcome, for the operator, after the close."""
        self.require_operator(token)
        now = self.clock()
        require_closed(self.phase(now), now, "the outcome")
        assert self._outcome is not None
        return self._outcome

    def publish(self, token: str | None) -> dict[str, Any]:
        """Publish the signed record (after the close; once)."""
        self.require_operator(token)
        now = self.clock()
        require_closed(self.phase(now), now, "publication")
        if self._record is None:
            record = self.key.sign(self._record_body(iso(now)))
            self.store.set_record(iso(now), record)
            self._record = record
        return self._record

    def _record_body(self, published_at: str) -> dict[str, Any]:
        assert self._outcome is not None
        terms = self.terms.public_document()
        terms["deadline"] = iso(self.deadline)
        reports = [
            {
                "participant": name,
                "role": self._participants[name].role,
                "seq": seq,
                "sha256": sha,
            }
            for name, seq, sha in self.store.report_hashes()
        ]
        return {
            "kind": RECORD_KIND,
            "schema_version": 1,
            "terms": terms,
            "public_key": self.key.public_hex,
            "closed_at": self.store.meta("closed_at"),
            "published_at": published_at,
            "reports": reports,
            "outcome": public_outcome(self._outcome, publish_reports=self.terms.publish_reports),
        }

    def record(self) -> dict[str, Any]:
        """The published record (public, after publication)."""
        now = self.clock()
        require_published(self.phase(now), now)
        assert self._record is not None
        return self._record

    def own_result(self, token: str | None, name: str) -> dict[str, Any]:
        """The participant's own result (after the close) and its report's hash."""
        self.require_participant(token, name)
        now = self.clock()
        require_closed(self.phase(now), now, "the result")
        assert self._outcome is not None
        last = self.store.last_receipt(name)
        return {
            "call": self.terms.name,
            "participant": name,
            "kind": self.terms.kind,
            "took_part": name in self._reported,
            "report_sha256": None if last is None else last.get("report_sha256"),
            **own_result(self.terms, self._outcome, name),
        }

    # ------------------------------------------------------------------ views
    def summary(self) -> dict[str, Any]:
        """Public status: terms, time left, counts (never a report or its hash)."""
        now = self.clock()
        return {
            "call": self.terms.name,
            "kind": self.terms.kind,
            "phase": self.phase(now).value,
            "server_time": iso(now),
            "deadline": iso(self.deadline),
            "seconds_left": max(0.0, (self.deadline - now).total_seconds()),
            "participants": self._approved,
            "public_key": self.key.public_hex,
        }

    def operator_view(self, token: str | None) -> dict[str, Any]:
        """Registrations and the count of submissions, without their content."""
        self.require_operator(token)
        return {
            **self.summary(),
            "submissions": len(self._reported),
            "refused_unauthenticated": self.refused_unauthenticated,
            "registrations": [
                {
                    "name": p.name,
                    "role": p.role,
                    "status": p.status,
                    "has_report": p.name in self._reported,
                }
                for p in self._participants.values()
            ],
        }

    def events(self, token: str | None, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The event log for the operator; report hashes, and the field a refused report was
        refused for (``bids[5].value`` tells it had six bids), are withheld until the close."""
        self.require_operator(token)
        sealed = self.phase() in (Phase.OPEN, Phase.DEADLINE, Phase.CLOSING)
        return [_event_view(e, sealed) for e in self.store.events(after, limit)]

    def me(self, token: str | None, name: str) -> dict[str, Any]:
        """A participant's own status: role, approval, whether it has a current report."""
        p = self.require_participant(token, name)
        return {
            **self.summary(),
            "name": p.name,
            "role": p.role,
            "status": p.status,
            "has_report": name in self._reported,
            "receipt": self.store.last_receipt(name),
        }


def not_approved(p: Participant) -> str:
    """Why a participant that is not approved may not submit or withdraw."""
    if p.status == "rejected":
        return f"'{p.name}' was rejected by the operator"
    return f"'{p.name}' is waiting for the operator's approval"


def _event_view(e: Event, sealed: bool) -> dict[str, Any]:
    detail = e.detail
    if sealed and e.kind == "refused":  # the field of a refused report tells of its shape
        detail = {k: v for k, v in detail.items() if k != "field"}
    if sealed and "receipt" in detail:
        r = dict(detail["receipt"])
        r.pop("report_sha256", None)
        r.pop("signature", None)
        detail = {"receipt": r}
    return {"seq": e.seq, "at": e.at, "kind": e.kind, "participant": e.participant, **detail}


__all__ = ["CLOSE_FAILED", "RECORD_KIND", "Call", "Clock"]
