"""The open call's HTTP API (FastAPI) and its pages, served by uvicorn (:mod:`.call_server`).

Public: ``GET /health``, ``GET /v1/call`` (terms without the invitations, phase, server time,
time left, number of participants, the receipts' public key), ``GET /v1/terms`` (the terms as
given), ``POST /v1/register`` (while the terms allow it),
``GET /v1/record`` (after publication), the pages ``/``, ``/participant`` and ``/operator``,
``/openapi.json``.

Participant (its bearer token): ``GET /v1/participants/{name}`` (own status and latest receipt),
``PUT /v1/participants/{name}/report`` (submit or revise; the reply is the signed receipt),
``DELETE /v1/participants/{name}/report`` (withdraw), ``GET /v1/participants/{name}/receipt``,
``GET /v1/participants/{name}/result`` (after the close).

Operator (the ``operator`` token): ``GET /v1/operator`` (registrations and the count of
submissions, never their content), ``GET /v1/operator/events``, ``POST
/v1/operator/participants/{name}/approve`` and ``.../reject``, ``POST /v1/operator/deadline``
(extend),
``POST /v1/operator/close``, ``GET /v1/operator/outcome``, ``POST /v1/operator/publish``.

The close computes in a worker thread (an auction's counterfactual solves on the engine given):
the server answers every other request meanwhile, and the public status shows the phase
``closing``. A close asked while one runs waits for that one and gets its answer (the outcome
is computed once). A close that fails answers 500 with ``error`` and ``reason``, the failure is
in the event log, and the call can be closed again.

Errors: 401 missing/unknown token, 403 a token without the right, 404 unknown path, 409 an
action the phase does not allow (a submission after the deadline: the reply carries the
server's time), 413 a body over the limit, 422 a malformed report (``loc`` names the field, the
message the reason), 500 a close whose computation failed (``error``, ``reason``). The token is
checked before a report's body is read.

Sealed: before the close no endpoint or page returns a report, its hash or anything computed
from it, whoever asks.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import to_json

from pivotal.calls.call import Call
from pivotal.calls.lifecycle import CallAuthError, CallCloseError, CallStateError
from pivotal.calls.store import Pending
from pivotal.engine import Engine
from pivotal.errors import InputError
from pivotal.markets.market import BuyerIn, ProducerIn
from pivotal.results import package_version
from pivotal.service.call_pages import ASSETS, page
from pivotal.service.http import CSP_PAGES, harden
from pivotal.service.wire import ErrorMessage, field_errors

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_REGISTRATIONS_PER_MINUTE = 60
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorMessage} for code in (401, 403, 409, 413, 422)
}
_REGISTER_ERRORS = {**_ERRORS, 429: {"model": ErrorMessage}}


class CloseFailed(BaseModel):
    """The reply to a close whose computation failed (500): nothing was stored."""

    detail: str
    error: str = Field(description="The type of the exception the computation raised.")
    reason: str = Field(description="Its message.")


_CLOSE_ERRORS: dict[int | str, dict[str, Any]] = {**_ERRORS, 500: {"model": CloseFailed}}
_bearer = HTTPBearer(auto_error=False)
Token = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class Registration(BaseModel):
    """``POST /v1/register``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64)
    role: Literal["producer", "buyer", "bidder"]


class Registered(BaseModel):
    """The reply to a registration: the credential is shown once."""

    name: str
    role: str
    status: Literal["approved", "pending"]
    token: str


class Deadline(BaseModel):
    """``POST /v1/operator/deadline``: the new (later) deadline, with a time zone."""

    model_config = ConfigDict(extra="forbid")
    deadline: AwareDatetime


class BundleBid(BaseModel):
    """One XOR bid of an auction report."""

    model_config = ConfigDict(extra="forbid")
    bundle: list[str] = Field(min_length=1)
    value: float


class AuctionReport(BaseModel):
    """An auction report: the participant's XOR bids."""

    model_config = ConfigDict(extra="forbid")
    bids: list[BundleBid] = Field(min_length=1)


def _report_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The request body of ``PUT .../report`` for the OpenAPI schema (the body is read after
    the token is checked, so FastAPI does not parse it itself) and the schemas it refers to."""
    producer = ProducerIn.model_json_schema(ref_template="#/components/schemas/{model}")
    buyer = BuyerIn.model_json_schema(ref_template="#/components/schemas/{model}")
    auction = AuctionReport.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = {}
    for s in (producer, buyer, auction):
        schemas.update(s.pop("$defs", {}))
    for s in (producer, buyer):
        s["properties"].pop("name", None)
        s["required"] = [r for r in s.get("required", []) if r != "name"]
    body = {"anyOf": [producer, buyer, auction]}
    extra = {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}
    return extra, schemas


_REPORT_SCHEMA, _REPORT_DEFS = _report_schema()


class SharedClose:
    """The close runs in a worker thread (:meth:`Call.close`), once: a close asked while one
    runs awaits the same computation; one asked after a failure starts a new one. The
    computation goes on when the client that asked for it goes away."""

    def __init__(self, call: Call, engine: Engine | None) -> None:
        self.call = call
        self.engine = engine
        self._task: asyncio.Future[dict[str, Any]] | None = None

    async def __call__(self, token: str | None) -> dict[str, Any]:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(
                asyncio.to_thread(self.call.close, token, engine=self.engine)
            )
            self._task.add_done_callback(_retrieved)
        return await asyncio.shield(self._task)


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Mark a task's exception as seen (its requests got it, or went away)."""
    if not task.cancelled():
        task.exception()


class RegistrationLimit:
    """At most ``per_minute`` registration attempts a minute from one client address (a bucket of
    that many, refilled continuously), so that a stranger cannot fill the call with names (every
    registration, pending or approved, takes a place up to ``max_participants``) nor stall the
    server with a disk sync per registration. The addresses remembered are bounded: beyond
    ``max_addresses``, the least recently seen is forgotten (its bucket was refilled or it is a
    flood of addresses, which the connection cap bounds)."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 65_536,
    ) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, address: str) -> float:
        """Spend one attempt for ``address``: 0 if allowed, else the seconds until the next."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        left, then = self._buckets.pop(address, (float(self.per_minute), now))
        left = min(float(self.per_minute), left + (now - then) * self.per_minute / 60.0)
        wait = 0.0
        if left >= 1.0:
            left -= 1.0
        else:
            wait = (1.0 - left) * 60.0 / self.per_minute
        self._buckets[address] = (left, now)
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        return wait


class GroupCommit:
    """Submissions that arrive together are stored together. Each request is checked on the
    event loop (:meth:`Call.prepare_submit`: credential, phase, report) and queued; one commit
    at a time runs in a worker thread and takes everything queued since the last one, in one
    transaction with one disk sync; each request then gets its receipt. While a commit waits
    for the disk, the event loop goes on reading and checking the next requests."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self._queue: list[tuple[Pending, asyncio.Future[dict[str, Any]]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None  # a reference keeps the task alive

    async def __call__(self, item: Pending) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if not self._running:
            self._running = True
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    receipts = await asyncio.to_thread(
                        self.call.commit, [item for item, _ in batch]
                    )
                except Exception as exc:  # rolled back: no receipt for anyone in the batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), signed in zip(batch, receipts, strict=True):
                    if not future.done():
                        future.set_result(signed)
        finally:
            self._running = False


def served_call_app(
    call: Call,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    tls: bool = False,
    registrations_per_minute: int = DEFAULT_REGISTRATIONS_PER_MINUTE,
    engine: Engine | None = None,
) -> Any:
    """What uvicorn serves: :func:`create_call_app` behind the shared layers of
    :mod:`pivotal.service.http` (security headers; the token checked before a body is read)."""

    def refuse(token: str | None, path: str) -> str | None:
        try:
            call.authenticate(token)
        except CallAuthError as exc:
            return str(exc)
        return None

    app = create_call_app(
        call,
        max_body_bytes=max_body_bytes,
        registrations_per_minute=registrations_per_minute,
        engine=engine,
    )
    private = ("/v1/participants/", "/v1/operator/")
    return harden(app, tls=tls, private=private, refuse=refuse, csp=CSP_PAGES)


def create_call_app(
    call: Call,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    registrations_per_minute: int = DEFAULT_REGISTRATIONS_PER_MINUTE,
    engine: Engine | None = None,
) -> FastAPI:
    """The call's FastAPI app (see the module docstring): the public, the participant and the
    operator routers, the last two behind their authentication dependency, and the pages;
    served behind :func:`served_call_app`'s layers. ``registrations_per_minute`` bounds the
    registration attempts from one client address (:class:`RegistrationLimit`; 0: no bound);
    ``engine`` runs an auction close's counterfactual solves (in the close's thread by
    default). The app closes ``engine`` when it shuts down: a served call ends its process by
    re-raising the SIGTERM it caught (uvicorn), before its caller's ``with`` block could, and
    a process pool's workers would outlive the server."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if engine is not None:
            await asyncio.to_thread(engine.close)

    app = FastAPI(
        title=f"pivotal call {call.terms.name}",
        lifespan=lifespan,
        version=package_version("pivotal"),
        description=__doc__,
        docs_url=None,  # the interactive docs load scripts from outside: off
        redoc_url=None,
        redirect_slashes=False,  # a redirect would be built from the Host header
        max_body_size=max_body_bytes,
    )
    _error_replies(app)
    app.include_router(_public_routes(call, RegistrationLimit(registrations_per_minute)))
    app.include_router(_participant_routes(call, GroupCommit(call), max_body_bytes))
    app.include_router(_operator_routes(call, SharedClose(call, engine)))
    app.include_router(_page_routes(call))
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(_REPORT_DEFS)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _error_replies(app: FastAPI) -> None:
    """Domain errors as HTTP replies: 401/403 (with the bearer challenge), 409 (with the
    server's time), 422 (the field), 500 (a failed close: its error and reason)."""

    @app.exception_handler(CallAuthError)
    async def _auth(request: Request, exc: CallAuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(CallStateError)
    async def _state(request: Request, exc: CallStateError) -> JSONResponse:
        server_time = exc.server_time.isoformat().replace("+00:00", "Z")
        return JSONResponse({"detail": str(exc), "server_time": server_time}, status_code=409)

    @app.exception_handler(CallCloseError)
    async def _close_failed(request: Request, exc: CallCloseError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "error": exc.error, "reason": exc.reason}, status_code=500
        )

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        loc = ["body", exc.field] if exc.field else ["body"]
        return JSONResponse(
            {"detail": [{"loc": loc, "msg": str(exc), "type": "value_error"}]}, status_code=422
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": field_errors(exc.errors())}, status_code=422)


def _tok(token: HTTPAuthorizationCredentials | None) -> str | None:
    return None if token is None else token.credentials


def _public_routes(call: Call, registration_limit: RegistrationLimit) -> APIRouter:
    """Liveness, the status, the terms, registration and the published record: no token."""
    router = APIRouter()

    @router.get("/health")
    async def health() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    # the terms are static: serialized once. The status the pages poll every 3 s carries them
    # without the list of invitations (which grows with the call: 337 KiB and 10 ms a request
    # with 10,000 invited), and its number instead; GET /v1/terms has the whole document
    terms_document = call.terms.public_document()
    status_terms = {k: v for k, v in terms_document.items() if k != "invited"}
    terms_bytes = to_json(terms_document)
    published: list[bytes] = []  # the record's JSON, once published (it never changes)

    @router.get("/v1/call")
    async def status() -> dict[str, Any]:
        """Public: the terms (without the invitations: see ``/v1/terms``), the phase, the
        server's time, the time left, the number of participants and of invitations, and the
        receipts' public key."""
        return {
            **call.summary(),
            "invitations": len(call.terms.invited),
            "terms": status_terms,
        }

    @router.get("/v1/terms")
    async def terms() -> Response:
        """Public: the call's terms as given, with the invitations (the deadline is the
        original one; ``/v1/call`` has the current deadline)."""
        return Response(terms_bytes, media_type="application/json")

    @router.post("/v1/register", responses=_REGISTER_ERRORS, status_code=201)
    async def register(body: Registration, request: Request) -> Registered:
        """Register (when the terms allow it); the credential is shown once. Too many attempts
        from one address get 429 with ``Retry-After``."""
        address = request.client.host if request.client is not None else "unknown"
        wait = registration_limit.take(address)
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            return JSONResponse(  # type: ignore[return-value]
                {
                    "detail": f"too many registrations from {address}: "
                    f"{registration_limit.per_minute} a minute; retry in {seconds} s"
                },
                status_code=429,
                headers={"Retry-After": str(seconds)},
            )
        token, st = call.register(body.name, body.role)
        return Registered(name=body.name, role=body.role, status=st, token=token)  # type: ignore[arg-type]

    @router.get("/v1/record", responses=_ERRORS)
    async def record() -> Response:
        """The published record (after publication): outcome, report hashes, signature."""
        if not published:
            published.append(to_json(call.record()))
        return Response(published[0], media_type="application/json")

    return router


def _participant_routes(call: Call, group_commit: GroupCommit, max_body_bytes: int) -> APIRouter:
    """Each participant's status, report, receipt and result, behind its own token (checked
    by the router's dependency before anything else, a report's body included)."""

    def own_token(name: str, token: Token) -> None:
        call.require_participant(_tok(token), name)

    router = APIRouter(prefix="/v1/participants", dependencies=[Depends(own_token)])

    @router.get("/{name}", responses=_ERRORS)
    async def me(name: str, token: Token) -> dict[str, Any]:
        """The participant's own status and latest receipt."""
        return call.me(_tok(token), name)

    @router.put("/{name}/report", responses=_ERRORS, openapi_extra=_REPORT_SCHEMA)
    async def submit(name: str, request: Request, token: Token) -> dict[str, Any]:
        """Submit or revise the sealed report; the reply is the signed receipt. The token is
        checked before the body is read."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            call.refuse(name, CallAuthError(413, "body too large"))
            return JSONResponse(
                {"detail": f"the body is over {max_body_bytes} bytes"}, status_code=413
            )  # type: ignore[return-value]
        raw = await request.body()
        try:
            body = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            error = InputError(f"the body is not JSON: {exc}", field="(body)")
            call.refuse(name, error)
            raise error from None
        return await group_commit(call.prepare_submit(_tok(token), name, body))

    @router.delete("/{name}/report", responses=_ERRORS)
    async def withdraw(name: str, token: Token) -> dict[str, Any]:
        """Withdraw the report; the reply is the signed receipt of the withdrawal."""
        return await group_commit(call.prepare_withdraw(_tok(token), name))

    @router.get("/{name}/receipt", responses=_ERRORS)
    async def receipt(name: str, token: Token) -> dict[str, Any]:
        """The latest receipt (``receipt`` is null before the first submission)."""
        return {"receipt": call.receipt_of(_tok(token), name)}

    @router.get("/{name}/result", responses=_ERRORS)
    async def result(name: str, token: Token) -> dict[str, Any]:
        """The participant's own result (after the close)."""
        return call.own_result(_tok(token), name)

    return router


def _operator_routes(call: Call, shared_close: SharedClose) -> APIRouter:
    """Registrations, the event log, approvals, the deadline, the close, the outcome and the
    publication, behind the operator's token (the router's dependency)."""

    def operator_token(token: Token) -> None:
        call.require_operator(_tok(token))

    router = APIRouter(prefix="/v1/operator", dependencies=[Depends(operator_token)])

    @router.get("", responses=_ERRORS)
    async def operator(token: Token) -> dict[str, Any]:
        """Registrations and the count of submissions (never their content)."""
        return call.operator_view(_tok(token))

    @router.get("/events", responses=_ERRORS)
    async def events(
        token: Token,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        """The event log after ``after`` (report hashes withheld until the close)."""
        return call.events(_tok(token), after, limit)

    @router.post("/participants/{name}/approve", responses=_ERRORS)
    async def approve(name: str, token: Token) -> dict[str, Any]:
        """Approve a pending registration."""
        call.approve(_tok(token), name)
        return call.operator_view(_tok(token))

    @router.post("/participants/{name}/reject", responses=_ERRORS)
    async def reject(name: str, token: Token) -> dict[str, Any]:
        """Reject a pending registration (its credential can never submit; the name stays
        taken)."""
        call.reject(_tok(token), name)
        return call.operator_view(_tok(token))

    @router.post("/deadline", responses=_ERRORS)
    async def extend(body: Deadline, token: Token) -> dict[str, Any]:
        """Extend the deadline (before it passes)."""
        call.extend(_tok(token), body.deadline)
        return call.summary()

    @router.post("/close", responses=_CLOSE_ERRORS)
    async def close(token: Token) -> dict[str, Any]:
        """Close the call (after the deadline): the mechanism runs once on the stored reports,
        in a worker thread (meanwhile the phase is ``closing`` and the server answers). A close
        asked while one runs gets that one's answer. A failed computation answers 500 with its
        reason; the call can be closed again."""
        call.freeze(_tok(token))  # here, on the event loop: no commit queued now is stored
        return await shared_close(_tok(token))

    @router.get("/outcome", responses=_ERRORS)
    async def outcome(token: Token) -> dict[str, Any]:
        """The whole outcome (after the close)."""
        return call.outcome(_tok(token))

    @router.post("/publish", responses=_ERRORS)
    async def publish(token: Token) -> dict[str, Any]:
        """Publish the signed record (after the close)."""
        return call.publish(_tok(token))

    return router


def _page_routes(call: Call) -> APIRouter:
    """The public, participant and operator pages and their assets (no outside scripts)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def public_page() -> HTMLResponse:
        return HTMLResponse(page("public", call.terms.name))

    @router.get("/participant", response_class=HTMLResponse)
    async def participant_page() -> HTMLResponse:
        return HTMLResponse(page("participant", call.terms.name))

    @router.get("/operator", response_class=HTMLResponse)
    async def operator_page() -> HTMLResponse:
        return HTMLResponse(page("operator", call.terms.name))

    @router.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})

    @router.get("/assets/{name}")
    async def asset(name: str) -> Response:
        found = ASSETS.get(name)
        if found is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        media, text = found
        return Response(text, media_type=media, headers={"Cache-Control": "max-age=3600"})

    return router


def _no_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} is not allowed")


__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_REGISTRATIONS_PER_MINUTE",
    "RegistrationLimit",
    "create_call_app",
    "served_call_app",
]
