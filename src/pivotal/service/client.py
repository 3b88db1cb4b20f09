"""A party's agent: connects out to the coordinator, answers its tasks from private data.

Pull model (works behind a firewall): the agent connects out, receives its own task, computes the
answer from its private cost model (:class:`~pivotal.negotiation.agents.LpParty`), sends it, and
stops when the negotiation ends. Only plans and scalar costs leave the process. Two transports
with the same messages: one WebSocket (``transport="ws"``, the default: one frame each way per
round) or long-polling HTTP requests (``transport="http"``, for networks that block WebSockets).

Robustness: an answer is kept until the next task, and posted again (unchanged) if the same task
comes back, e.g. after a coordinator restart or a lost reply; the coordinator ignores duplicates.
Connection failures, dropped streams and 5xx replies are retried with backoff for ``retry_for``
seconds.
"""

from __future__ import annotations

import json
import math
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from pivotal.errors import ConvergenceError, InputError, ServiceError
from pivotal.negotiation.agents import LpParty, Party
from pivotal.negotiation.deployment import config_from_document, load_private
from pivotal.negotiation.protocol import answer
from pivotal.negotiation.session import Phase, Task, TaskKind
from pivotal.service.wire import SCHEMA_VERSION

EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class AgentOptions:
    """How the agent talks to the coordinator."""

    poll_seconds: float = 20.0
    retry_for: float = 120.0
    request_timeout: float = 60.0
    verify: bool | ssl.SSLContext = True
    transport: Literal["ws", "http"] = "ws"
    max_frame_bytes: int = 64 * 1024 * 1024
    """Largest WebSocket frame taken from the coordinator (a costs task of a hub with many
    vendors is the largest message; a bigger frame closes the stream with 1009)."""


class Agent:
    """One party's agent (see the module docstring)."""

    def __init__(
        self,
        coordinator: str,
        party: str,
        token: str,
        private: Path,
        options: AgentOptions | None = None,
        *,
        on_event: EventCallback | None = None,
    ) -> None:
        self.party_name = party
        self.private = private
        self.options = options or AgentOptions()
        self.on_event = on_event
        self._client = httpx.Client(
            base_url=coordinator.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.options.request_timeout + self.options.poll_seconds,
            verify=self.options.verify,
        )
        self._coordinator = coordinator.rstrip("/")
        self._token = token
        self._party: LpParty | None = None
        self._answers: dict[tuple[str, int], dict[str, Any]] = {}  # kept until superseded
        self._seen_stage = -1  # furthest stage seen: status quo 0, runs 1, costs 2, done 3
        self._seen: dict[str, int] = {}  # furthest round seen per phase

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + self.options.retry_for
        delay = 0.1
        while True:
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                _stop_on_certificate(exc, self._coordinator)
                problem = f"cannot reach the coordinator ({exc.__class__.__name__}: {exc})"
            else:
                if response.status_code < 500:
                    if response.status_code in (401, 403):
                        raise self._refused(_detail(response))
                    return response
                problem = f"the coordinator answered {response.status_code}"
            if time.monotonic() > deadline:
                raise ServiceError(f"{problem}; gave up after {self.options.retry_for:g} s")
            time.sleep(delay)
            delay = min(2.0, delay * 2)

    def _refused(self, detail: str) -> InputError:
        return InputError(
            f"the coordinator refused the credential for '{self.party_name}': {detail}; "
            "check --party and --token-file",
            field="token",
        )

    def _party_model(self) -> LpParty:
        if self._party is None:
            response = self._request("GET", "/v1/terms")
            _expect(response, "reading the terms")
            config = config_from_document(response.json()["config"], source="coordinator terms")
            party = load_private(self.private, config)
            if party.name != self.party_name:
                raise InputError(
                    f"{self.private} holds the private data of '{party.name}', not of "
                    f"'{self.party_name}'; give this party's own file",
                    field="private",
                )
            self._party = party
        return self._party

    def answer(self, task: dict[str, Any]) -> dict[str, Any]:
        """The body answering a task and every task of its ``more`` (the only use of the
        private data; :func:`message_body`). An answer is kept while its task may come back (a
        coordinator restart, a lost reply, or a message listing it again beside a run that moved
        on) and sent again unchanged."""
        return message_body(self._party_model(), task, self._answers)

    def run(self) -> dict[str, Any]:
        """Answer tasks until the negotiation ends; return this party's result."""
        self._party_model()  # fail early on bad private data or a wrong token
        if self.options.transport == "ws":
            self._run_stream()
        else:
            self._run_polling()
        result = self._request("GET", f"/v1/parties/{self.party_name}/result")
        _expect(result, "fetching the result")
        doc: dict[str, Any] = result.json()
        return doc

    def check_not_rolled_back(self, task: dict[str, Any]) -> None:
        """Stop if the coordinator is behind a step this agent already saw.

        The coordinator commits every round before anyone sees the next one, so a task for a
        step means every step before it is in its database; a restarted coordinator is never
        behind what its agents saw unless its database went back in time (restored from an
        older copy, or a lost write-ahead log). Re-running those rounds silently would let the
        outcome depend on damage, so the agent stops and says so."""
        done = task["kind"] == "done"
        items = [task, *(task.get("more") or [])]
        stage = 3 if done else _STAGES.get(task["phase"].partition(":")[0], -1)
        if stage < 0:
            return
        behind = None
        if stage < self._seen_stage:
            behind = max(self._seen.items(), key=lambda kv: kv[1], default=("costs", 0))
        for item in items if not done else []:
            seen = self._seen.get(item["phase"], -1)
            if item["round"] < seen:
                behind = (item["phase"], seen)
        if behind is not None:
            now = "finished" if done else f"at {task['phase']} round {task['round']}"
            raise ServiceError(
                f"the coordinator is {now}, but this agent saw {behind[0]} round {behind[1]} "
                "committed before: its database was rolled back (restored from an older copy "
                "or its write-ahead log lost); stopped, so that no round is run twice (the "
                "operator must restore the latest database)"
            )
        self._seen_stage = max(self._seen_stage, stage)
        for item in items if not done else []:
            self._seen[item["phase"]] = max(self._seen.get(item["phase"], -1), item["round"])

    def _step(self, task: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to a task, or ``None`` once the negotiation is over."""
        self.check_not_rolled_back(task)
        kind = task["kind"]
        if kind == "failed":
            raise ConvergenceError(f"the negotiation failed: {task['message']}")
        if kind == "done":
            return None
        body = self.answer(task)
        if self.on_event is not None:
            self.on_event({"phase": task["phase"], "round": task["round"], "kind": kind})
        return body

    def _run_polling(self) -> None:
        me = self.party_name
        wait = {"wait": self.options.poll_seconds}
        task: dict[str, Any] | None = None
        while True:
            if task is None:
                response = self._request("GET", f"/v1/parties/{me}/task", params=wait)
                _expect(response, "fetching the task")
                task = response.json()
            if task["kind"] == "wait":
                self.check_not_rolled_back(task)
                task = None
                continue
            body = self._step(task)
            if body is None:
                return
            # the reply to an answer carries the next task (long poll): one request per round
            posted = self._request("POST", f"/v1/parties/{me}/answers", json=body, params=wait)
            if posted.status_code == 409:  # the negotiation moved on meanwhile
                task = None
                continue
            _expect(posted, "posting the answer")
            task = posted.json().get("next_task")

    def _stream_url(self) -> str:
        base = self._coordinator
        scheme = "wss" if base.startswith("https://") else "ws"
        return f"{scheme}://{base.split('://', 1)[1]}/v1/parties/{self.party_name}/stream"

    def _ssl(self) -> ssl.SSLContext | None:
        if not self._coordinator.startswith("https://"):
            return None
        verify = self.options.verify
        if isinstance(verify, ssl.SSLContext):
            return verify
        if verify:
            return ssl.create_default_context()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    def _run_stream(self) -> None:
        """The WebSocket exchange; reconnects (and re-sends the kept answer) after a drop."""
        deadline = time.monotonic() + self.options.retry_for
        delay = 0.1
        while True:
            try:
                with connect(
                    self._stream_url(),
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    ssl=self._ssl(),
                    open_timeout=self.options.request_timeout,
                    max_size=self.options.max_frame_bytes,
                ) as ws:
                    deadline = time.monotonic() + self.options.retry_for
                    delay = 0.1
                    while True:
                        frame = json.loads(ws.recv())
                        if "error" in frame:
                            if frame["error"] == 409:  # the current task follows
                                continue
                            raise ServiceError(
                                f"the coordinator rejected an answer ({frame['error']}): "
                                f"{frame['detail']}"
                            )
                        task = frame if "kind" in frame else frame["next_task"]
                        body = self._step(task)
                        if body is None:
                            return
                        ws.send(json.dumps(body))
            except InvalidStatus as exc:
                code = exc.response.status_code
                if code in (401, 403):
                    raise self._refused(exc.response.body.decode(errors="replace")) from None
                if code < 500:  # no stream endpoint, or a proxy in between refuses WebSockets
                    raise ServiceError(
                        f"the coordinator refused the WebSocket upgrade ({code}); if a proxy "
                        "blocks WebSockets, use --transport http"
                    ) from None
                problem = f"the coordinator answered {code} to the WebSocket upgrade"
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                _stop_on_certificate(exc, self._coordinator)
                sent = exc.sent if isinstance(exc, ConnectionClosed) else None
                if sent is not None and sent.code == 1009:  # the same frame would come again
                    raise ServiceError(
                        f"the coordinator sent a frame over {self.options.max_frame_bytes} "
                        "bytes; stopped"
                    ) from None
                problem = f"lost the stream to the coordinator ({exc.__class__.__name__}: {exc})"
            if time.monotonic() > deadline:
                raise ServiceError(f"{problem}; gave up after {self.options.retry_for:g} s")
            time.sleep(delay)
            delay = min(2.0, delay * 2)


_STAGES = {"status_quo": 0, "joint": 1, "without": 1, "costs": 2}
"""The order of a phase's stage (the runs go on together)."""


def session_task(task: dict[str, Any]) -> Task:
    """A wire task (a :class:`~pivotal.service.wire.TaskMessage` document) as the session's
    :class:`~pivotal.negotiation.session.Task`."""

    def array(values: Any) -> Any:
        return None if values is None else np.asarray(values, dtype=np.float64)

    bound = task.get("max_quantity")
    return Task(
        TaskKind(task["kind"]),
        Phase.parse(task["phase"]),
        task["round"],
        z=array(task.get("z")),
        prices=array(task.get("prices")),
        rho=None if task.get("rho") is None else float(task["rho"]),
        plans={k: array(v) for k, v in (task.get("plans") or {}).items()},
        values={k: array(v) for k, v in (task.get("values") or {}).items()},
        max_quantity=math.inf if bound is None else float(bound),
    )


def message_body(
    party: Party, task: dict[str, Any], kept: dict[tuple[str, int], dict[str, Any]]
) -> dict[str, Any]:
    """The wire answer to a task message: its own task's answer and, under ``more``, one per
    other open task it carries (the protocol runs go on together). ``kept`` holds answers by
    ``(phase, round)``: one already there is sent again unchanged, and those of steps the
    message no longer lists are dropped."""
    items = [task, *(task.get("more") or [])]
    for item in items:
        key = (item["phase"], item["round"])
        if key not in kept:
            full = item if item is task else {"kind": "best_response", **item}
            kept[key] = answer_body(party, full)
    keys = {(item["phase"], item["round"]) for item in items}
    for key in [k for k in kept if k not in keys]:
        del kept[key]  # superseded: that step is over
    body = dict(kept[(task["phase"], task["round"])])
    body["more"] = [
        {k: v for k, v in kept[(i["phase"], i["round"])].items() if k != "schema_version"}
        for i in items[1:]
    ]
    return body


def answer_body(party: Party, task: dict[str, Any]) -> dict[str, Any]:
    """The wire answer (an :class:`~pivotal.service.wire.Answer` document) to a wire task:
    :func:`pivotal.negotiation.protocol.answer` on the session's form of the task."""
    value = answer(party, session_task(task))
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "phase": task["phase"],
        "round": task["round"],
    }
    if isinstance(value, dict):
        body["costs"] = value
    else:
        body["plan"] = value.tolist()
    return body


def _stop_on_certificate(exc: BaseException, coordinator: str) -> None:
    """A certificate that cannot be verified does not get better by retrying: stop at once."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            raise ServiceError(
                f"cannot verify the certificate of {coordinator} ({seen.verify_message or seen}); "
                "give the coordinator's certificate with --ca-cert if it is self-signed"
            ) from None
        seen = seen.__cause__ or seen.__context__
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        raise ServiceError(
            f"cannot verify the certificate of {coordinator} ({exc}); give the coordinator's "
            "certificate with --ca-cert if it is self-signed"
        ) from None


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return str(detail)


def _expect(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise ServiceError(
            f"{what}: the coordinator answered {response.status_code}: {_detail(response)}"
        )
