"""The coordinator's HTTP API (FastAPI), served by uvicorn.

Public: ``/`` (the live status page, a few kilobytes: plotly.js is a separate asset under its
content hash, gzip-compressed and cached for a year), ``/health``, ``/status?since=K&wait=S``
(progress and residuals only; long poll until round K+1 completes), ``/openapi.json``. No
interactive ``/docs`` (it would load outside scripts) and no redirects.
Per party (bearer token): ``GET /v1/terms``, ``GET /v1/parties/{party}/task?wait=S`` (long
poll), ``POST /v1/parties/{party}/answers?wait=S`` (the reply carries the next task, so an agent
needs one request per round), ``GET /v1/parties/{party}/result``, and the WebSocket
``/v1/parties/{party}/stream`` (tasks pushed, answers read; see :mod:`pivotal.service.stream`).
Operator (the ``operator`` token): ``GET /v1/outcome``.

Errors: 401 missing/unknown token (checked before a body is read), 403 another party's
resource, 404 unknown path, 409 an answer for a stale phase or round (or a result before the
end), 413 a body over the limit, 422 a malformed body (the message names the field), 431
request headers too large or too many. Limits on strangers: :mod:`pivotal.service.http`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPBearer

from pivotal.errors import AuthError, InputError
from pivotal.negotiation.result import party_share
from pivotal.negotiation.session import StaleMessageError
from pivotal.results import package_version
from pivotal.service.http import StaticAsset, harden, inline_hashes, page_response
from pivotal.service.state import CoordinatorState
from pivotal.service.stream import Streams
from pivotal.service.wire import (
    Ack,
    Answer,
    ErrorMessage,
    Health,
    PartyResult,
    Status,
    TaskMessage,
    Terms,
    bearer_token,
    field_errors,
)

DEFAULT_MAX_BODY = 8 * 1024 * 1024
PUBLIC_WAITS = 64  # public /status long polls held at once; beyond, /status answers at once
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorMessage} for code in (401, 403, 409, 413, 422)
}


class _Bearer(HTTPBearer):
    """The bearer scheme in the published schema, parsed by :func:`bearer_token` (the same rules
    as the WebSocket upgrade's)."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return bearer_token(request.headers.get("authorization"))


_bearer = _Bearer(auto_error=False)
Wait = Annotated[float, Query(ge=0, le=30.0, description="Long-poll seconds.")]
Token = Annotated[str | None, Depends(_bearer)]


def served_app(
    state: CoordinatorState, *, max_body_bytes: int = DEFAULT_MAX_BODY, tls: bool = False
) -> Any:
    """What uvicorn serves: :func:`create_app` behind the shared layers (security headers; the
    token checked before a body is read, :class:`pivotal.service.http.Gate`)."""

    def refuse(token: str | None, path: str) -> str | None:
        parts = path.split("/")  # /v1/parties/{party}/...: the party's own hash first, in O(1)
        party = parts[3] if len(parts) > 3 and parts[2] == "parties" else None
        try:
            state.authenticate(token, party)
        except AuthError as exc:
            return str(exc) if exc.status == 401 else None
        return None

    app = create_app(state, max_body_bytes=max_body_bytes)
    return harden(app, tls=tls, private=("/v1/",), refuse=refuse)


class _LivePage:
    """The ``/`` page and its plotly.js asset, built once on first use (in a thread: reading,
    hashing and compressing 4.8 MB)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.html = ""
        self.csp = ""
        self.plotly: StaticAsset | None = None
        self._lock = asyncio.Lock()

    def _build(self) -> None:
        from pivotal.report.html import live_status_page
        from pivotal.report.render import plotly_js

        self.plotly = StaticAsset("plotly", ".js", "text/javascript", plotly_js().encode())
        self.html = live_status_page(self.name, plotly_src=self.plotly.url)
        scripts = " ".join(inline_hashes(self.html))  # the page's own two inline scripts
        self.csp = (
            f"default-src 'none'; script-src 'self' {scripts}; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )  # plotly.js sets styles from script: 'unsafe-inline' for styles only

    async def ready(self) -> _LivePage:
        async with self._lock:
            if self.plotly is None:
                await asyncio.to_thread(self._build)
        return self


def create_app(state: CoordinatorState, *, max_body_bytes: int = DEFAULT_MAX_BODY) -> FastAPI:
    """The coordinator's FastAPI app over a state (see the module docstring): the public, the
    party and the operator routers, each behind its authentication dependency; served behind
    :func:`served_app`'s layers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.closing = True
        state.wake_all()
        state.flush()
        state.store.close()

    app = FastAPI(
        title="pivotal coordinator",
        version=package_version("pivotal"),
        description=__doc__,
        lifespan=lifespan,
        max_body_size=max_body_bytes,  # 413 beyond it, declared or streamed
        docs_url=None,  # the interactive docs load scripts from a CDN: off
        redoc_url=None,
        redirect_slashes=False,  # a redirect would be built from the Host header
    )
    app.state.coordinator = state  # what the authentication dependencies read
    _error_replies(app)
    app.include_router(_public_routes(state))
    app.include_router(_party_routes(state))
    app.include_router(_operator_routes(state))
    return app


def _error_replies(app: FastAPI) -> None:
    """Domain errors as HTTP replies: 401/403 (with the bearer challenge), 409, 422."""

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        return _denial(exc)

    @app.exception_handler(StaleMessageError)
    async def _stale(request: Request, exc: StaleMessageError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        loc = ["body", exc.field] if exc.field else ["body"]
        return JSONResponse(
            {"detail": [{"loc": loc, "msg": str(exc), "type": "value_error"}]}, status_code=422
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": field_errors(exc.errors())}, status_code=422)


def _denial(exc: AuthError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)


def _state(request: Request) -> CoordinatorState:
    state: CoordinatorState = request.app.state.coordinator
    return state


def _own_party(state: CoordinatorState, token: str | None, party: str) -> str:
    """``party``, if ``token`` is its own (401 unknown token, 403 another party's resource)."""
    state.authenticate(token, party)
    if party not in state.parties:
        raise AuthError(403, f"'{party}' is not a party")
    return party


def _optional_caller(request: Request, token: Token) -> str | None:
    """The caller's credential name, or None for a stranger (no token)."""
    return None if token is None else _state(request).authenticate(token, None)


def _any_caller(request: Request, token: Token) -> str:
    """Any credential (a party or the operator)."""
    return _state(request).authenticate(token, None)


def _party_caller(request: Request, party: str, token: Token) -> str:
    """The party named in the path, holding its own token."""
    return _own_party(_state(request), token, party)


def _operator_caller(request: Request, token: Token) -> str:
    """The operator's credential only."""
    state = _state(request)
    who = state.authenticate(token, None)
    if not state.is_operator(who):
        raise AuthError(403, "the whole outcome is for the operator's token only")
    return who


Caller = Annotated[str | None, Depends(_optional_caller)]
Party = Annotated[str, Depends(_party_caller)]


def _public_routes(state: CoordinatorState) -> APIRouter:
    """``/``, its asset, ``/health`` and ``/status``: progress, never numbers."""
    router = APIRouter()
    live_page = _LivePage(state.config.name)
    public_waits = [0]

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def live(request: Request) -> Response:
        """The live status page: status and residual plot, refreshed from ``/status``."""
        page = await live_page.ready()
        return page_response(request, page.html, page.csp)

    @router.get("/assets/{name}", include_in_schema=False)
    async def asset(name: str, request: Request) -> Response:
        """plotly.js under its content hash: compressed, cached for a year."""
        plotly = (await live_page.ready()).plotly
        if plotly is None or name != plotly.name:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return plotly.response(request)

    @router.get("/health")
    async def health() -> Health:
        """Liveness."""
        return Health()

    @router.get("/status", responses={401: {"model": ErrorMessage}})
    async def status(
        party: Caller,
        since: Annotated[int | None, Query(ge=0, description="Rounds the caller has seen.")] = None,
        wait: Wait = 0.0,
    ) -> Status:
        """Progress: phase, round, who is awaited, and per round each residual relative to its
        tolerance (nothing from which a norm of plans, prices or costs can be recovered). With
        a party's bearer token, also that party's own absolute residuals. With ``since`` and
        ``wait``, hold the request until more than ``since`` rounds are complete or the
        negotiation ends (the live page refreshes once per round this way)."""
        if party is None and public_waits[0] >= PUBLIC_WAITS:
            wait = 0.0  # strangers cannot hold more than PUBLIC_WAITS connections this way
        if since is not None and wait > 0:
            public_waits[0] += party is None
            try:
                await state.wait_while(
                    lambda: len(state.residuals) <= since and state.session.status == "running",
                    wait,
                )
            finally:
                public_waits[0] -= party is None
        public = state.status()
        if party is None or party not in state.parties:
            return public
        return public.model_copy(update={"own_residuals": state.own_residuals(party)})

    return router


def _party_routes(state: CoordinatorState) -> APIRouter:
    """Each party's terms, tasks, answers, stream and result, behind its own token."""
    router = APIRouter(prefix="/v1", responses=_ERRORS)
    streams = Streams(state)

    async def next_task(party: str, wait: float) -> TaskMessage:
        await state.wait_while(lambda: state.session.idle(party), wait)
        return state.task(party)

    @router.get("/terms", dependencies=[Depends(_any_caller)])
    async def terms() -> Terms:
        """The public terms (any party)."""
        return Terms(config=state.config.model_dump(mode="json"))

    # the hot endpoints serialize their reply themselves (pydantic's JSON, no re-validation)
    @router.get("/parties/{party}/task", response_model=TaskMessage)
    async def task(party: Party, wait: Wait = 0.0) -> Response:
        """The party's current task; with ``wait``, hold the request (long poll) until there is
        something to do or ``wait`` seconds have passed."""
        message = await next_task(party, wait)
        return Response(message.model_dump_json(), media_type="application/json")

    @router.post("/parties/{party}/answers", response_model=Ack)
    async def answers(party: Party, answer: Answer, wait: Wait = 0.0) -> Response:
        """Post the answer to the current task (posting it twice is harmless). With ``wait``,
        the reply also carries the party's next task (long poll, as for ``/task``)."""
        result = state.submit(party, answer)
        following = await next_task(party, wait) if wait > 0 else None
        ack = Ack(status=result, phase=answer.phase, round=answer.round, next_task=following)  # type: ignore[arg-type]
        return Response(ack.model_dump_json(), media_type="application/json")

    @router.websocket("/parties/{party}/stream")
    async def stream(websocket: WebSocket, party: str) -> None:
        """The task/answer exchange over one WebSocket (:mod:`pivotal.service.stream`): tasks
        pushed as the negotiation moves, answers read as they come, one frame each way a round."""
        try:
            _own_party(state, bearer_token(websocket.headers.get("authorization")), party)
        except AuthError as exc:
            await websocket.send_denial_response(_denial(exc))
            return
        await websocket.accept()
        await streams.serve(websocket, party)

    @router.get("/parties/{party}/result")
    async def result(party: Party) -> PartyResult:
        """The party's share of the outcome (after the end)."""
        share = party_share(state.outcome(), party)
        return PartyResult(
            negotiation=state.config.name,
            party=party,
            plan=list(share.plan),
            status_quo_plan=list(share.status_quo_plan),
            costs=dict(share.costs),
            transfer=share.transfer,
            gain=share.gain,
            gain_without_fee=share.gain_without_fee,
            bound=share.bound,
            rounds=share.rounds,
        )

    return router


def _operator_routes(state: CoordinatorState) -> APIRouter:
    """The whole outcome, for the operator's token only."""
    router = APIRouter(prefix="/v1", responses=_ERRORS, dependencies=[Depends(_operator_caller)])

    @router.get("/outcome")
    async def outcome() -> dict[str, Any]:
        """The whole outcome (the operator's token only)."""
        return state.outcome_document()

    return router
