"""A call's life cycle: open -> deadline passed -> (closing) -> closed -> published.

=============  =======================================================================
phase          what may happen
=============  =======================================================================
open           register, approve, submit, revise, withdraw; the operator may extend
               the deadline
deadline       (the deadline has passed, not yet closed) the operator closes
closing        the close is computing the outcome (in this process; a restart or a failed
               close goes back to ``deadline``); reports are frozen
closed         the outcome is computed and stored once; participants see their own
               result; the operator publishes
published      the record (outcome, report hashes, receipts' key) is public
=============  =======================================================================

Every transition that is not allowed raises :class:`CallStateError` (HTTP 409) with the server's
time, so that a late participant learns when the server received its request. A close that
fails (the solver, the engine, memory) raises :class:`CallCloseError`: nothing is stored, the
failure is in the event log, and the call can be closed again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pivotal.calls.terms import iso
from pivotal.errors import AuthError, PivotalError, StateError


class CallStateError(StateError):
    """An action the call's phase does not allow (HTTP 409); carries the server's time."""

    def __init__(self, message: str, *, server_time: datetime) -> None:
        super().__init__(f"{message} (server time {iso(server_time)})")
        self.server_time = server_time


class CallAuthError(AuthError):
    """A missing or unknown credential (401) or a credential without the right (403)."""


class CallCloseError(PivotalError, RuntimeError):
    """The close's computation failed (the solver or the engine raised, memory ran out): no
    outcome was stored and the call can be closed again. ``error`` names the exception's type,
    ``reason`` its message. Services answer HTTP 500 with both."""

    def __init__(self, message: str, *, error: str, reason: str) -> None:
        super().__init__(message)
        self.error = error
        self.reason = reason


class Phase(StrEnum):
    """Where a call is in its life cycle."""

    OPEN = "open"
    DEADLINE = "deadline"
    CLOSING = "closing"
    CLOSED = "closed"
    PUBLISHED = "published"


def phase_at(
    now: datetime, deadline: datetime, *, closed: bool, published: bool, closing: bool = False
) -> Phase:
    """The phase at ``now``."""
    if published:
        return Phase.PUBLISHED
    if closed:
        return Phase.CLOSED
    if closing:
        return Phase.CLOSING
    return Phase.OPEN if now < deadline else Phase.DEADLINE


def require_open(phase: Phase, now: datetime, deadline: datetime, what: str) -> None:
    """Submissions, revisions, withdrawals and registrations only while the call is open."""
    if phase is not Phase.OPEN:
        raise CallStateError(
            f"{what} refused: the deadline {iso(deadline)} has passed", server_time=now
        )


def require_extension(phase: Phase, now: datetime, deadline: datetime, new: datetime) -> None:
    """The deadline may only move later, and only before it passes."""
    require_open(phase, now, deadline, "extending the deadline")
    if new <= deadline:
        raise CallStateError(
            f"the new deadline {iso(new)} is not after the current one {iso(deadline)}; a "
            "deadline can only be extended",
            server_time=now,
        )


def require_closable(phase: Phase, now: datetime, deadline: datetime) -> None:
    """The close runs once, after the deadline, and one at a time."""
    if phase is Phase.OPEN:
        raise CallStateError(
            f"the call cannot close before its deadline {iso(deadline)}", server_time=now
        )
    if phase is Phase.CLOSING:
        raise closing_error(now)


def closing_error(now: datetime) -> CallStateError:
    """A close asked while one is computing (409): one computation, one outcome."""
    return CallStateError(
        "the close is already running; GET /v1/call shows the phase 'closed' once the outcome "
        "is stored",
        server_time=now,
    )


def require_closed(phase: Phase, now: datetime, what: str) -> None:
    """Results and publication come after the close."""
    if phase not in (Phase.CLOSED, Phase.PUBLISHED):
        raise CallStateError(f"{what} is available after the close", server_time=now)


def require_published(phase: Phase, now: datetime) -> None:
    """The public record exists once published."""
    if phase is not Phase.PUBLISHED:
        raise CallStateError("the outcome has not been published yet", server_time=now)


__all__ = [
    "CallAuthError",
    "CallCloseError",
    "CallStateError",
    "Phase",
    "closing_error",
    "phase_at",
    "require_closable",
    "require_closed",
    "require_extension",
    "require_open",
    "require_published",
]
