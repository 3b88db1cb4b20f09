"""Running the coordinator app under uvicorn on a socket we bind (so ``port=0`` works and the
real address can be announced), with graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from pivotal.service.app import DEFAULT_MAX_BODY, create_app
from pivotal.service.coordinator import CoordinatorState


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


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port=0`` picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    state: CoordinatorState,
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
    scheme = "https" if tls_cert is not None else "http"
    config = uvicorn.Config(
        create_app(state, max_body_bytes=max_body_bytes),
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        access_log=access_log,
        timeout_graceful_shutdown=5,
        ws="websockets-sansio",  # supports denial responses (401/403 on the upgrade request)
        ws_max_size=max_body_bytes,
        ws_per_message_deflate=False,  # plans are short float lists: compression costs more CPU
        # than it saves in bytes
        log_level="info",
    )
    logging.getLogger("uvicorn.error").addFilter(_DenialNoise())  # after uvicorn's log config
    server = _Server(config, state)
    if announce is not None:
        shown = f"[{host}]" if ":" in host else host
        announce(f"{scheme}://{shown}:{bound}")
    server.run(sockets=[sock])
