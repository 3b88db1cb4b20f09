"""A party's agent: connects out to the coordinator, answers its tasks from private data.

Pull model (works behind a firewall): the agent long-polls its own task, computes the answer
from its private cost model (:class:`~pivotal.negotiation.agents.LpParty`), posts it, and stops
when the negotiation ends. Only plans and scalar costs leave the process.

Robustness: an answer is kept until the next task, and posted again (unchanged) if the same task
comes back, e.g. after a coordinator restart or a lost reply; the coordinator ignores duplicates.
Connection failures and 5xx replies are retried with backoff for ``retry_for`` seconds.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from pivotal.errors import ConvergenceError, InputError, ServiceError
from pivotal.negotiation.agents import LpParty
from pivotal.negotiation.deployment import config_from_document, load_private
from pivotal.service.wire import SCHEMA_VERSION

EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class AgentOptions:
    """How the agent talks to the coordinator."""

    poll_seconds: float = 20.0
    retry_for: float = 120.0
    request_timeout: float = 60.0
    verify: bool | ssl.SSLContext = True


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
        self._party: LpParty | None = None
        self._last: tuple[tuple[str, int], dict[str, Any]] | None = None

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
                problem = f"cannot reach the coordinator ({exc.__class__.__name__}: {exc})"
            else:
                if response.status_code < 500:
                    if response.status_code in (401, 403):
                        raise InputError(
                            f"the coordinator refused the credential for '{self.party_name}': "
                            f"{_detail(response)}; check --party and --token-file",
                            field="token",
                        )
                    return response
                problem = f"the coordinator answered {response.status_code}"
            if time.monotonic() > deadline:
                raise ServiceError(f"{problem}; gave up after {self.options.retry_for:g} s")
            time.sleep(delay)
            delay = min(2.0, delay * 2)

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
        """The body answering a task (the only use of the private data)."""
        key = (task["phase"], task["round"])
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        party = self._party_model()
        body: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "phase": key[0], "round": key[1]}
        if task["kind"] == "status_quo":
            body["plan"] = party.preferred_plan().tolist()
        elif task["kind"] == "best_response":
            z = np.asarray(task["z"], dtype=np.float64)
            prices = np.asarray(task["prices"], dtype=np.float64)
            body["plan"] = party.best_response(z, prices, float(task["rho"])).tolist()
        elif task["kind"] == "costs":
            body["costs"] = {
                label: party.cost_at(np.asarray(plan, dtype=np.float64))
                for label, plan in task["plans"].items()
            }
        else:
            raise InputError(f"cannot answer a '{task['kind']}' task")
        self._last = (key, body)
        return body

    def run(self) -> dict[str, Any]:
        """Answer tasks until the negotiation ends; return this party's result."""
        me = self.party_name
        self._party_model()  # fail early on bad private data or a wrong token
        wait = {"wait": self.options.poll_seconds}
        task: dict[str, Any] | None = None
        while True:
            if task is None:
                response = self._request("GET", f"/v1/parties/{me}/task", params=wait)
                _expect(response, "fetching the task")
                task = response.json()
            kind = task["kind"]
            if kind == "wait":
                task = None
                continue
            if kind == "failed":
                raise ConvergenceError(f"the negotiation failed: {task['message']}")
            if kind == "done":
                result = self._request("GET", f"/v1/parties/{me}/result")
                _expect(result, "fetching the result")
                doc: dict[str, Any] = result.json()
                return doc
            body = self.answer(task)
            # the reply to an answer carries the next task (long poll): one request per round
            posted = self._request("POST", f"/v1/parties/{me}/answers", json=body, params=wait)
            if self.on_event is not None:
                self.on_event({"phase": task["phase"], "round": task["round"], "kind": kind})
            if posted.status_code == 409:  # the negotiation moved on meanwhile
                task = None
                continue
            _expect(posted, "posting the answer")
            task = posted.json().get("next_task")


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
