"""The WebSocket stream: each connected party's task is pushed to it when the negotiation moves.

One coroutine per connection reads the party's answers; it never waits for the round to end.
When a change completes a round (or a phase, or the negotiation), a single broadcast task walks
the open streams and sends every party that has something to do its task, at most once per
task. An accepted answer's ``Ack`` is held until the party's next task and sent with it, so a
round costs one frame each way. Sending from one task, instead of waking one waiting coroutine
per party, is what keeps a round cheap with hundreds of parties.

Frames to one stream go out in order (a per-stream lock). A stream that does not take its
frames (its buffers are full for ``grace_seconds``) no longer holds up the broadcast: it is
left out of broadcasts and gets its tasks only when it sends something again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from pydantic_core import to_json

from pivotal.errors import InputError
from pivotal.negotiation.session import StaleMessageError
from pivotal.service.state import CoordinatorState
from pivotal.service.wire import Answer, StreamError, ack_document, field_errors

log = logging.getLogger("pivotal.service")
_GONE = (WebSocketDisconnect, RuntimeError, OSError)  # what sending to a closed stream raises


class _Outbox:
    """One open stream: what was sent last, the ack waiting for the next task."""

    __slots__ = ("ack", "closed", "lock", "party", "sent", "stalled", "websocket")

    def __init__(self, party: str, websocket: WebSocket) -> None:
        self.party = party
        self.websocket = websocket
        self.sent: tuple[object, ...] | None = None  # the session's position at the last task
        self.ack: tuple[str, str, int] | None = None  # (status, phase, round) to acknowledge
        self.lock = asyncio.Lock()
        self.closed = False
        self.stalled = False


class Streams:
    """The open streams of one coordinator (see the module docstring)."""

    def __init__(self, state: CoordinatorState, *, grace_seconds: float = 10.0) -> None:
        self.state = state
        self.grace_seconds = grace_seconds
        self._open: dict[_Outbox, None] = {}  # insertion-ordered set
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        state.listeners.append(self._changed)

    def _changed(self) -> None:
        """The negotiation moved (or the service is closing): one broadcast, soon."""
        if self._scheduled or not self._open:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven without an event loop (no stream can be open then)
            return
        self._scheduled = True
        task = loop.create_task(self._broadcast())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _broadcast(self) -> None:
        self._scheduled = False
        queue = [o for o in self._open if not o.stalled]
        at = 0
        while at < len(queue):
            try:
                async with asyncio.timeout(self.grace_seconds):  # one timer for the whole walk
                    while at < len(queue):
                        await self._deliver_or_drop(queue[at])
                        at += 1
            except TimeoutError:
                stuck = queue[at]
                stuck.stalled = True
                log.warning("party %s does not take its stream frames; left out", stuck.party)
                at += 1

    async def _deliver_or_drop(self, outbox: _Outbox) -> None:
        try:
            await self.deliver(outbox)
        except _GONE:
            outbox.closed = True
            self._open.pop(outbox, None)

    async def deliver(self, outbox: _Outbox) -> None:
        """Send the party its current task if it has one it was not sent yet (with the held
        ack); close the stream after the last task (1000) or on shutdown (1001)."""
        state = self.state
        async with outbox.lock:
            if outbox.closed:
                return
            if state.closing:
                outbox.closed = True
                await outbox.websocket.close(1001)
                return
            session = state.session
            if session.idle(outbox.party):
                return
            key = session.position
            if key == outbox.sent:
                return
            task = state.task_document(outbox.party)
            ack = outbox.ack
            reply: dict[str, Any] = task if ack is None else ack_document(*ack, task)
            await outbox.websocket.send_text(to_json(reply).decode())
            outbox.sent = key  # only once sent (a send cut short by the grace timer is not)
            if outbox.ack is ack:
                outbox.ack = None
            if task["kind"] in ("done", "failed"):
                outbox.closed = True
                await outbox.websocket.close(1000)

    async def serve(self, websocket: WebSocket, party: str) -> None:
        """Run one accepted stream until it closes."""
        outbox = _Outbox(party, websocket)
        self._open[outbox] = None
        try:
            await self.deliver(outbox)
            while not outbox.closed:
                data = await websocket.receive()
                if data["type"] == "websocket.disconnect":
                    return
                outbox.stalled = False  # it speaks again: broadcasts try it again
                error: StreamError | None = None
                try:
                    raw = data.get("text") or data.get("bytes") or ""
                    answer = Answer.model_validate_json(raw)
                    result = self.state.submit(party, answer)
                except ValidationError as exc:
                    error = StreamError(error=422, detail=field_errors(exc.errors()))
                except StaleMessageError as exc:
                    error = StreamError(error=409, detail=str(exc))
                except InputError as exc:
                    error = StreamError(error=422, detail=str(exc))
                if error is None:
                    outbox.ack = (result, answer.phase, answer.round)
                else:  # at once; the current task follows (again) when there is one
                    async with outbox.lock:
                        if not outbox.closed:
                            await outbox.websocket.send_text(error.model_dump_json())
                            outbox.sent = None
                await self.deliver(outbox)
        except WebSocketDisconnect:
            return
        finally:
            outbox.closed = True
            self._open.pop(outbox, None)
