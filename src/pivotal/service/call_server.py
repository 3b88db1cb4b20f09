"""Serving a call under uvicorn on a socket we bind (``port=0`` works and the URL is announced),
with the limits a public endpoint needs: bounded header size, a keep-alive timeout, a cap on
concurrent connections, forwarded headers trusted from no one, and a warning when the call is
served beyond loopback without TLS.

The negotiation service (:mod:`pivotal.service.server`) is being hardened the same way; once both
land, :func:`hardened_config` and its counterpart there should become one function.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from pivotal.calls.call import Call
from pivotal.service.call_app import DEFAULT_MAX_BODY, create_call_app
from pivotal.service.server import bind

log = logging.getLogger("pivotal.call")

MAX_HEADER_BYTES = 16 * 1024
MAX_CONNECTIONS = 2048
KEEP_ALIVE_SECONDS = 5


def hardened_config(
    app: FastAPI,
    *,
    tls_cert: Path | None,
    tls_key: Path | None,
    access_log: bool,
    max_connections: int = MAX_CONNECTIONS,
) -> uvicorn.Config:
    """uvicorn's settings for a public endpoint (see the module docstring)."""
    return uvicorn.Config(
        app,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        access_log=access_log,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=max_connections,  # 503 beyond it
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,  # 431 for longer headers
        proxy_headers=False,  # X-Forwarded-* is trusted from no one
        server_header=False,
        http="h11",
        ws="none",
        log_level="info",
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve_call(
    call: Call,
    host: str,
    port: int,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    access_log: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; ``announce`` gets the URL once the socket is bound."""
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    tls = tls_cert is not None
    if not tls and not _is_loopback(host):
        log.warning(
            "serving %s on %s without TLS: tokens and reports cross the network in clear; give "
            "--tls-cert and --tls-key",
            call.terms.name,
            host,
        )
    app = create_call_app(call, max_body_bytes=max_body_bytes, tls=tls)
    config = hardened_config(app, tls_cert=tls_cert, tls_key=tls_key, access_log=access_log)
    server = uvicorn.Server(config)
    if announce is not None:
        shown = f"[{host}]" if ":" in host else host
        announce(f"{'https' if tls else 'http'}://{shown}:{bound}")
    try:
        server.run(sockets=[sock])
    finally:
        call.store.close()


__all__ = ["hardened_config", "serve_call"]
