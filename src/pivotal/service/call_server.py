"""Serving a call under uvicorn on a socket we bind (``port=0`` works and the URL is announced),
with the limits a public endpoint needs (:mod:`pivotal.service.http`, shared with the
negotiation coordinator): bounded headers, read timeouts, a connection cap, forwarded headers
trusted from no one, and a warning when the call is served beyond loopback without TLS or
when anyone may register any number of names (automatic approval of open registration).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import uvicorn

from pivotal.calls.call import Call
from pivotal.calls.terms import false_name_warning
from pivotal.engine import Engine
from pivotal.service.call_app import (
    DEFAULT_MAX_BODY,
    DEFAULT_REGISTRATIONS_PER_MINUTE,
    served_call_app,
)
from pivotal.service.http import Limits, bind, hardened_config, warn_without_tls

log = logging.getLogger("pivotal.call")


def serve_call(
    call: Call,
    host: str,
    port: int,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    access_log: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    registrations_per_minute: int = DEFAULT_REGISTRATIONS_PER_MINUTE,
    announce: Callable[[str], None] | None = None,
    engine: Engine | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; ``announce`` gets the URL once the socket is bound;
    ``engine`` runs an auction close's counterfactual solves."""
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    tls = tls_cert is not None
    warn_without_tls(log, call.terms.name, host, tls)
    if (warning := false_name_warning(call.terms)) is not None:
        log.warning(warning)
    app = served_call_app(
        call,
        max_body_bytes=max_body_bytes,
        tls=tls,
        registrations_per_minute=registrations_per_minute,
        engine=engine,
    )
    limits = Limits(max_connections=2048)  # participants' keep-alive pools in a burst
    config = hardened_config(
        app, tls_cert=tls_cert, tls_key=tls_key, access_log=access_log, limits=limits, ws="none"
    )
    server = uvicorn.Server(config)
    call.store.checkpoint_in_background()
    if announce is not None:
        shown = f"[{host}]" if ":" in host else host
        announce(f"{'https' if tls else 'http'}://{shown}:{bound}")
    try:
        server.run(sockets=[sock])
    finally:
        call.store.close()


__all__ = ["serve_call"]
