"""The coordinator service's wire schema (version 1), as pydantic models.

Every message in either direction carries ``schema_version``; a request with another version is
rejected with 422 naming the field. The schema is published at ``/openapi.json``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
SchemaVersion = Literal[1]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def _exact_int(value: Any) -> Any:
    """No ``true`` or ``1.0`` for an integer (``Literal[1]`` alone accepts both)."""
    if type(value) is not int:
        raise ValueError(f"expected the integer 1, got {value!r}")
    return value


StrictVersion = Annotated[Literal[1], BeforeValidator(_exact_int)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)
    schema_version: SchemaVersion = 1


class Health(_Out):
    """``GET /health``."""

    status: Literal["ok"] = "ok"


class ResidualPoint(BaseModel):
    """One ADMM round's progress: each residual relative to its tolerance (the round converged
    when both are at most 1), to three significant digits.

    Public, so nothing absolute: the tolerances are ``sqrt(p) eps_abs + eps_rel ||z||`` and
    ``sqrt(p) eps_abs + eps_rel ||prices||`` and the penalty starts at ``3 / mean(z0)``, so
    publishing them, or the absolute residuals beside their ratios, would reveal the norms of
    the plan and the prices (on the truck example, the retailer's private demand of 5,000)."""

    phase: str
    round: int
    primal_ratio: float
    dual_ratio: float


class OwnResidual(BaseModel):
    """One round's residuals of a party's own copy of the plan (``GET /status`` with the
    party's token): ``primal = ||x_i - z_i||``, ``dual = rho ||z_i - z_i_old||``, absolute."""

    phase: str
    round: int
    primal: float
    dual: float


class Status(_Out):
    """``GET /status``: public progress of the negotiation, never plans, prices or costs."""

    negotiation: str
    status: Literal["running", "waiting", "done", "failed"]
    phase: str
    round: int
    parties: list[str]
    waiting_for: list[str]
    seconds_in_round: float
    round_deadline_seconds: float
    message: str = ""
    residuals: list[ResidualPoint] = []
    runs: dict[str, int] = {}
    """Every protocol run under way (they run together) and its current round."""
    own_residuals: list[OwnResidual] | None = None
    """With a party's bearer token only: that party's own absolute residuals per round."""


class TaskItem(BaseModel):
    """Another open best-response task of the party, in another protocol run (the runs go on
    together: one message carries every run's task)."""

    phase: str
    round: int
    z: list[float]
    prices: list[float]
    rho: float


class TaskMessage(_Out):
    """``GET /v1/parties/{party}/task``: what the party is asked to do now.

    ``best_response``: post ``plan = argmin C(x) + prices'x + (rho/2)||x - z||^2``;
    ``status_quo``: post the plan you would choose alone (the hub); ``costs``: post your cost
    at each plan in ``plans`` and, under each label of ``values``, your value
    ``min C(x) + nu'x`` over ``0 <= x <= max_quantity`` at those prices ``nu`` (what certifies
    the money); ``wait``: ask again; ``done``/``failed``: the negotiation is over.
    """

    negotiation: str
    party: str
    kind: Literal["status_quo", "best_response", "costs", "wait", "done", "failed"]
    phase: str
    round: int
    z: list[float] | None = None
    prices: list[float] | None = None
    rho: float | None = None
    plans: dict[str, list[float]] = {}
    values: dict[str, list[float]] = {}
    max_quantity: float | None = None
    more: list[TaskItem] = []
    """The party's other open best-response tasks (answer each in ``Answer.more``)."""
    message: str = ""


class AnswerItem(BaseModel):
    """The plan answering one of ``TaskMessage.more``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    phase: Name
    round: int = Field(ge=0, le=10**9)
    plan: list[FiniteFloat] = Field(max_length=10**6)


class Answer(BaseModel):
    """``POST /v1/parties/{party}/answers``: a party's answer to its current task.

    Strict: a number is a JSON number (an integer is taken as a float), never a string or a
    boolean; ``round`` and ``schema_version`` are JSON integers."""

    model_config = ConfigDict(extra="forbid", strict=True)
    schema_version: StrictVersion
    phase: Name
    round: int = Field(ge=0, le=10**9)
    plan: list[FiniteFloat] | None = Field(default=None, max_length=10**6)
    costs: dict[Name, FiniteFloat] | None = Field(default=None, max_length=10**4)
    more: list[AnswerItem] = Field(default=[], max_length=10**3)
    """Answers to the task's ``more`` items (each is taken as a separate answer)."""

    @model_validator(mode="after")
    def _one_kind(self) -> Answer:
        if (self.plan is None) == (self.costs is None):
            raise ValueError("give exactly one of 'plan' and 'costs'")
        return self


class Ack(_Out):
    """The reply to an answer."""

    status: Literal["accepted", "duplicate"]
    phase: str
    round: int
    next_task: TaskMessage | None = None


class StreamError(_Out):
    """An error frame on the WebSocket stream (the connection stays open).

    ``error`` is the HTTP status the same mistake gets over plain HTTP: 409 for a stale phase or
    round (the current task follows), 422 for a malformed answer (``detail`` names the field).
    """

    error: Literal[409, 422]
    detail: str | list[dict[str, object]]


def ack_document(
    status: str, phase: str, round_: int, next_task: dict[str, Any] | None
) -> dict[str, Any]:
    """An :class:`Ack` as its plain JSON document (fields in the model's order), for a hot path
    that serializes without building the model; ``next_task`` is a ``TaskMessage`` document."""
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "phase": phase,
        "round": round_,
        "next_task": next_task,
    }


class PartyResult(_Out):
    """``GET /v1/parties/{party}/result``: a party's own share of the outcome."""

    negotiation: str
    party: str
    plan: list[float]
    status_quo_plan: list[float]
    costs: dict[str, float]
    transfer: float
    gain: float
    gain_without_fee: float
    bound: float = 0.0
    """The certified error of ``transfer`` and ``gain``: the exact VCG amounts are within it."""
    rounds: int


class Terms(_Out):
    """``GET /v1/terms``: the public terms (the coordinator's config)."""

    config: dict[str, object]


class ErrorMessage(BaseModel):
    """An error reply."""

    detail: str | list[dict[str, object]]


_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9\-._~+/]+=*)")


def bearer_token(header: str | None) -> str | None:
    """The credential of an ``Authorization`` header, for HTTP and WebSocket alike.

    Accepted: the scheme ``Bearer`` (any case), exactly one space, then one token68 (RFC 6750
    section 2.1: letters, digits, ``-._~+/``, trailing ``=``). Anything else (another scheme,
    two spaces, surrounding or inner blanks, an empty token) is no credential (401)."""
    if header is None:
        return None
    found = _BEARER.fullmatch(header)
    return None if found is None else found.group(1)


def field_errors(errors: Any) -> list[dict[str, Any]]:
    """pydantic validation errors as 422 details, with the field path in the message."""
    return [
        {
            "loc": list(e.get("loc", ())),
            "msg": f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}",
            "type": e.get("type", "value_error"),
        }
        for e in errors
    ]
