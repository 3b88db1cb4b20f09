"""Running the coordinator app under uvicorn on a socket we bind (so ``port=0`` works and the
real address can be announced), with graceful shutdown on SIGTERM/SIGINT and the limits a public
endpoint needs (:mod:`pivotal.service.http`, shared with the open-call server)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import NoReturn

import uvicorn

from pivotal.errors import StoreError
from pivotal.service.app import DEFAULT_MAX_BODY, served_app
from pivotal.service.http import MAX_CONNECTIONS, Limits, bind, hardened_config, warn_without_tls
from pivotal.service.state import CoordinatorState

log = logging.getLogger("pivotal.service")


class _Server(uvicorn.Server):
    """uvicorn's server that also releases the long-polling requests when asked to stop."""

    def __init__(self, config: uvicorn.Config, state: CoordinatorState) -> None:
        super().__init__(config)
        self._state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._state.closing = True
        with contextlib.suppress(RuntimeError):  # no loop running yet
            asyncio.get_running_loop().call_soon_threadsafe(self._state.wake_all)
        super().handle_exit(sig, frame)


class _DenialNoise(logging.Filter):
    """Drops the ERROR uvicorn's sans-I/O WebSocket protocol logs after every denial response (a
    401/403 answer to the upgrade request): it does not mark that handshake complete (uvicorn
    pull request 3138, open). The stream endpoint always either accepts or denies, so the message
    is never a real incomplete handshake here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


def configure_logging() -> None:
    """The coordinator's log on stderr (events, residuals; never private data)."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


LOST_COMMIT_EXIT = 70
"""Exit status when a completed round cannot be committed (EX_SOFTWARE)."""


def _stop_for_replay(error: StoreError) -> NoReturn:
    """The session moved on but the database did not: stop at once (no shutdown that could
    commit later rounds on top of the lost one) so that a restart replays from the database."""
    log.critical("%s; stopping so that a restart replays", error)
    logging.shutdown()
    os._exit(LOST_COMMIT_EXIT)


def body_limit(state: CoordinatorState) -> int:
    """The largest request or frame accepted: room for the largest legitimate answer (every
    protocol run's plan from the party holding the most plan entries, at 32 bytes per number in
    JSON) twice over, and at least 8 MiB. K1000 products on 20 sites over 8 weeks with 5
    vendors needs about 60 MiB; the truck example 8 MiB."""
    terms = state.session.terms
    entries = max(terms.local_size(p) for p in terms.parties) * (1 + len(terms.vendors))
    return max(DEFAULT_MAX_BODY, 2 * 32 * entries + 65536)


def connection_cap(parties: int, asked: int | None = None) -> int:
    """The cap on open connections: ``asked``, else :data:`MAX_CONNECTIONS` or, for a large
    negotiation, room for four connections per party (an agent needs one, its reconnect a
    second, plus browsers on the live page)."""
    return asked if asked is not None else max(MAX_CONNECTIONS, 4 * parties + 64)


def serve(
    state: CoordinatorState,
    host: str,
    port: int,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    access_log: bool = True,
    max_body_bytes: int | None = None,
    max_connections: int | None = None,
    forwarded_allow_ips: Iterable[str] = (),
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; ``announce`` gets the URL once the socket is bound.
    ``forwarded_allow_ips``: the proxies whose ``X-Forwarded-*`` headers are trusted (none by
    default)."""
    max_body_bytes = body_limit(state) if max_body_bytes is None else max_body_bytes
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    tls = tls_cert is not None
    scheme = "https" if tls else "http"
    warn_without_tls(log, f"negotiation {state.config.name}", host, tls)
    limits = Limits(max_connections=connection_cap(len(state.parties) + 1, max_connections))
    config = hardened_config(
        served_app(state, max_body_bytes=max_body_bytes, tls=tls),
        tls_cert=tls_cert,
        tls_key=tls_key,
        access_log=access_log,
        limits=limits,
        forwarded_allow_ips=forwarded_allow_ips,
        ws="websockets-sansio",  # supports denial responses (401/403 on the upgrade request)
        ws_max_size=max_body_bytes,
        ws_per_message_deflate=False,  # plans are short float lists: compression costs more CPU
        # than it saves in bytes
    )
    logging.getLogger("uvicorn.error").addFilter(_DenialNoise())  # after uvicorn's log config
    state.on_lost_commit = _stop_for_replay
    server = _Server(config, state)
    if announce is not None:
        shown = f"[{host}]" if ":" in host else host
        announce(f"{scheme}://{shown}:{bound}")
    server.run(sockets=[sock])
