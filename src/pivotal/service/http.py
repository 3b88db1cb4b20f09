"""What both servers (the negotiation coordinator and the open call) do about strangers at the
port: the socket, uvicorn's settings, a connection protocol with read timeouts and a connection
cap, and the ASGI layers every response passes through.

- **Headers** are limited in size (:data:`MAX_HEADER_BYTES`, 431 beyond it, checked while they
  arrive) and count (:data:`MAX_HEADERS`, 431).
- **Read timeouts**: a request's headers must arrive within ``header_seconds`` of the connection
  (or of the first byte after a keep-alive pause), its body within ``body_seconds`` of the
  headers; otherwise the connection is closed. An idle keep-alive connection is closed after
  :data:`KEEP_ALIVE_SECONDS`. A long poll or a WebSocket, once its request is read, is not cut.
- **Connection cap**: at ``max_connections`` open connections, a new one closes the oldest
  connection that is still waiting for a request's headers (else the oldest idle keep-alive
  connection); when there is none, the new connection is closed. Connections whose request is
  being answered (agents' long polls, their WebSockets, ``/health``) are never the ones closed.
- **Token before body**: a request with a body to a private path gets its 401 before a byte of
  the body is read, and the connection is closed (:class:`Gate`); the body size limit (413,
  declared or streamed) is FastAPI's ``max_body_size``.
- **Security headers** on every response (:class:`SecurityHeaders`): a content security policy
  without outside sources, ``nosniff``, ``frame-ancestors 'none'``, no referrer; HSTS under TLS;
  ``no-store`` on the API.
- **Forwarded headers** (``X-Forwarded-For``/``-Proto``) are trusted only from the proxies
  given (none by default), and a server bound beyond loopback without TLS says so in one line.
- **Static assets** (:class:`StaticAsset`) are served under a content hash, gzip-compressed and
  cacheable for a year, so a page that uses a large library costs its size once per browser.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import ipaddress
import logging
import re
import resource
import socket
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar

import h11
import uvicorn
from fastapi import Request
from fastapi.responses import Response
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from pivotal.service.wire import bearer_token

MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 100
HEADER_SECONDS = 10.0
BODY_SECONDS = 30.0
KEEP_ALIVE_SECONDS = 5
MAX_CONNECTIONS = 1024

CSP_API = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
CSP_PAGES = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
IMMUTABLE = "public, max-age=31536000, immutable"


# ---------------------------------------------------------------------------------- socket
def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port=0`` picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def warn_without_tls(log: logging.Logger, what: str, host: str, tls: bool) -> None:
    """One warning line when serving beyond loopback without TLS."""
    if not tls and not is_loopback(host):
        log.warning(
            "serving %s on %s without TLS: tokens and data cross the network in clear; give "
            "--tls-cert and --tls-key",
            what,
            host,
        )


def _room_for(connections: int) -> None:
    """Raise the soft limit on open files to what the connection cap needs (up to the hard
    limit): the default of 1024 on many systems would stop accepting before the cap."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        ceiling = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, ceiling), hard))


# ---------------------------------------------------------------------------------- protocol
@dataclass(frozen=True)
class Limits:
    """What one connection may cost (see the module docstring)."""

    max_connections: int = MAX_CONNECTIONS
    max_header_bytes: int = MAX_HEADER_BYTES
    max_headers: int = MAX_HEADERS
    header_seconds: float = HEADER_SECONDS
    body_seconds: float = BODY_SECONDS


class _Bounded(H11Protocol):
    """uvicorn's h11 protocol with read deadlines and the connection cap. Subclassed once per
    server by :func:`protocol_for` (the class holds that server's waiting connections)."""

    limits: ClassVar[Limits]
    # connections waiting for a request's headers, and idle keep-alive connections, oldest
    # first (OrderedDicts: taking the first of a plain dict after many deletions at its front
    # walks over their slots)
    waiting: ClassVar[OrderedDict[_Bounded, None]]
    idle: ClassVar[OrderedDict[_Bounded, None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: Any = None  # the armed timer (asyncio.TimerHandle)
        self._reading: str = ""  # what the deadline is for: "headers", "body" or ""

    # ---- the cap
    def connection_made(self, transport: Any) -> None:
        full = len(self.connections) >= self.limits.max_connections
        victims = self.waiting or self.idle  # a half-sent request first, then a pause
        if full and victims:
            oldest, _ = victims.popitem(last=False)
            oldest._close()
            full = False
        super().connection_made(transport)
        if full:  # every open connection is being answered: this one waits for none
            self.transport.close()
            return
        self._expect("headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._expect("")
        super().connection_lost(exc)

    def _close(self) -> None:
        self._expect("")
        if not self.transport.is_closing():
            self.transport.close()

    # ---- deadlines
    def _expect(self, what: str) -> None:
        """Arm the deadline for reading ``what`` (keep one already running for the same)."""
        self.idle.pop(self, None)
        if what == "headers":
            self.waiting.setdefault(self, None)
        else:
            self.waiting.pop(self, None)
        if what == self._reading:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._reading = what
        if what:
            seconds = self.limits.header_seconds if what == "headers" else self.limits.body_seconds
            self._deadline = self.loop.call_later(seconds, self._close)

    def _follow(self) -> None:
        """Set the deadline from what h11 is waiting for from the client."""
        if self.transport is None or self.transport.is_closing():
            self._expect("")
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            self._expect("headers")
        elif state is h11.SEND_BODY:
            self._expect("body")
        else:
            self._expect("")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.get_protocol() is self:  # not upgraded to a WebSocket
            self._follow()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._expect("")
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            self._expect("")
        elif self.conn.their_state is h11.IDLE:  # a keep-alive pause: uvicorn's timer runs;
            # the connection may be closed for a newcomer (after those waiting for headers)
            self._expect("")
            self.idle[self] = None

    def send_400_response(self, msg: str) -> None:
        if len(self.conn.trailing_data[0]) > self.limits.max_header_bytes:
            self._send_error(431, "request headers too large")
        else:
            super().send_400_response(msg)

    def _send_error(self, status: int, msg: str) -> None:
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
        body = msg.encode()
        head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()
        head += b"".join(k + b": " + v + b"\r\n" for k, v in headers)
        head += b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
        self.transport.write(head + body)
        self._close()


def protocol_for(limits: Limits) -> type[H11Protocol]:
    """The HTTP protocol class for one server with these limits."""

    class BoundedH11Protocol(_Bounded):
        pass

    BoundedH11Protocol.limits = limits
    BoundedH11Protocol.waiting = OrderedDict()
    BoundedH11Protocol.idle = OrderedDict()
    return BoundedH11Protocol


def hardened_config(
    app: Any,
    *,
    tls_cert: Path | None,
    tls_key: Path | None,
    access_log: bool,
    limits: Limits = Limits(),  # noqa: B008 (frozen)
    forwarded_allow_ips: Iterable[str] = (),
    **uvicorn_options: Any,
) -> uvicorn.Config:
    """uvicorn's settings for a public endpoint (see the module docstring); ``uvicorn_options``
    are passed on (WebSocket settings)."""
    proxies = [ip for ip in forwarded_allow_ips if ip]
    _room_for(limits.max_connections)
    log_config = copy.deepcopy(LOGGING_CONFIG)  # the access log on stderr too, not on stdout
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return uvicorn.Config(
        app,
        log_config=log_config,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        access_log=access_log,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        http=protocol_for(limits),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        proxy_headers=bool(proxies),  # X-Forwarded-* only from the proxies given
        forwarded_allow_ips=proxies or None,
        server_header=False,
        log_level="info",
        **uvicorn_options,
    )


# ---------------------------------------------------------------------------------- ASGI layers
Refusal = Callable[[str | None, str], str | None]
"""``(token, path) -> message``: why a request to a private path is refused (401), or None."""


class Gate:
    """The first ASGI layer: too many headers get 431; a request to a ``private`` path that
    carries a body gets 401 before the body is read when ``refuse`` finds its token wanting
    (``Connection: close``: the body is never read)."""

    def __init__(
        self,
        app: Any,
        *,
        private: tuple[str, ...],
        refuse: Refusal,
        max_headers: int = MAX_HEADERS,
    ) -> None:
        self.app = app
        self.private = private
        self.refuse = refuse
        self.max_headers = max_headers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind in ("http", "websocket") and len(scope["headers"]) > self.max_headers:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _plain(send, 431, "too many request headers")
            return
        if kind == "http" and str(scope["path"]).startswith(self.private) and _has_body(scope):
            headers = dict(scope["headers"])
            raw = headers.get(b"authorization")
            token = bearer_token(None if raw is None else raw.decode("latin-1"))
            reason = self.refuse(token, scope["path"])
            if reason is not None:
                await _plain(
                    send,
                    401,
                    reason,
                    json=True,
                    extra=[(b"www-authenticate", b"Bearer"), (b"connection", b"close")],
                )
                return
        await self.app(scope, receive, send)


def _has_body(scope: Any) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


async def _plain(
    send: Any,
    status: int,
    detail: str,
    *,
    json: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    if json:
        from pydantic_core import to_json

        body, media = to_json({"detail": detail}), b"application/json"
    else:
        body, media = detail.encode(), b"text/plain; charset=utf-8"
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """The outer ASGI layer: :data:`SECURITY_HEADERS` and a content security policy (``csp``,
    unless the response set its own) on every response, HSTS under TLS, ``no-store`` on the API
    (paths starting ``/v1/``)."""

    def __init__(self, app: Any, *, tls: bool, csp: str = CSP_API) -> None:
        self.app = app
        extra = dict(SECURITY_HEADERS)
        if tls:
            extra["Strict-Transport-Security"] = "max-age=31536000"
        self._headers = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        self._csp = (b"content-security-policy", csp.encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/v1/")

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + self._headers
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append(self._csp)
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, wrapped)


def harden(
    app: Any, *, tls: bool, private: tuple[str, ...], refuse: Refusal, csp: str = CSP_API
) -> Any:
    """``app`` behind :class:`Gate` and :class:`SecurityHeaders` (what uvicorn serves)."""
    return SecurityHeaders(Gate(app, private=private, refuse=refuse), tls=tls, csp=csp)


# ---------------------------------------------------------------------------------- assets
class StaticAsset:
    """A file served under its content hash (``/assets/{stem}-{hash}{suffix}``), cacheable for a
    year, gzip-compressed for clients that accept it; ``If-None-Match`` gets 304."""

    def __init__(self, stem: str, suffix: str, media_type: str, content: bytes) -> None:
        digest = hashlib.sha256(content).hexdigest()
        self.name = f"{stem}-{digest[:16]}{suffix}"
        self.url = f"/assets/{self.name}"
        self.media_type = media_type
        self.etag = f'"{digest[:32]}"'
        self.content = content
        self.gzipped = gzip.compress(content, compresslevel=6, mtime=0)

    def response(self, request: Request) -> Response:
        """The asset (or 304) for this request."""
        headers = {"Cache-Control": IMMUTABLE, "ETag": self.etag, "Vary": "Accept-Encoding"}
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=headers)
        return Response(self.content, media_type=self.media_type, headers=headers)


def page_response(request: Request, html: str, csp: str) -> Response:
    """An HTML page that browsers revalidate (``no-cache`` with an ETag: 304 when unchanged)."""
    etag = '"' + hashlib.sha256(html.encode()).hexdigest()[:32] + '"'
    headers = {"Cache-Control": "no-cache", "ETag": etag, "Content-Security-Policy": csp}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(html, media_type="text/html; charset=utf-8", headers=headers)


def inline_hashes(html: str, tag: str = "script") -> list[str]:
    """CSP source expressions (``'sha256-...'``) allowing the page's own inline ``<tag>``
    elements and nothing else inline."""
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in found
    ]


__all__ = [
    "CSP_API",
    "CSP_PAGES",
    "Gate",
    "Limits",
    "SecurityHeaders",
    "StaticAsset",
    "bind",
    "harden",
    "hardened_config",
    "inline_hashes",
    "is_loopback",
    "page_response",
    "protocol_for",
    "warn_without_tls",
]
