"""``pivotal serve coordinator`` and ``pivotal agent run``: the negotiation as a service."""

from __future__ import annotations

import ipaddress
import json
import ssl
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pivotal.cli.common import JsonOpt, check_file_option, emit_json, err, handle_errors, num, out
from pivotal.errors import InputError
from pivotal.fileio import (
    prepare_secret_folder,
    read_text,
    write_secrets,
    write_text_atomic,
)

if TYPE_CHECKING:
    from pivotal.service.state import CoordinatorState

# the service stack (uvicorn, FastAPI, httpx) is imported by these two commands only

serve_app = typer.Typer(
    help="Run a service: the negotiation coordinator or an open call.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)
agent_app = typer.Typer(
    help="Run a party's negotiation agent.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


@serve_app.command("coordinator")
@handle_errors
def serve_coordinator(
    db: Annotated[
        Path,
        typer.Option("--db", metavar="FILE", help="SQLite database (created if missing)."),
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Public terms from `negotiate split` (needed to create the database).",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", help="Port to listen on; 0 picks a free one.")
    ] = 8765,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", metavar="FILE", help="Serve HTTPS with this certificate (PEM)."),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", metavar="FILE", help="The certificate's private key (PEM)."),
    ] = None,
    tokens_dir: Annotated[
        Path | None,
        typer.Option(
            "--tokens-dir",
            metavar="DIR",
            help="Also write each new credential to DIR/PARTY.token.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the outcome JSON to FILE at the end (its folder must exist).",
            callback=check_file_option,
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log", help="Log one line per HTTP request on stderr."
        ),
    ] = True,
    max_connections: Annotated[
        int | None,
        typer.Option(
            "--max-connections",
            metavar="N",
            help="Cap on open connections (default: 1024, or 4 per party if more); at the cap a "
            "new connection closes the oldest one still waiting for its request.",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            metavar="IPS",
            help="Comma-separated addresses of reverse proxies whose X-Forwarded-For/-Proto "
            "headers are trusted (default: none).",
        ),
    ] = "",
) -> None:
    """Serve a negotiation: create it from --config, or resume it from an existing --db."""
    from pivotal.negotiation.deployment import load_config
    from pivotal.service.server import configure_logging, serve
    from pivotal.service.state import open_state

    if (tls_cert is None) != (tls_key is None):
        raise InputError("give both --tls-cert and --tls-key, or neither")
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            raise InputError(f"{path} does not exist", field="tls")
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be in 0..65535, got {port}")
    if max_connections is not None and max_connections < 16:
        raise InputError(f"--max-connections must be at least 16, got {max_connections}")
    proxies = [ip.strip() for ip in forwarded_allow_ips.split(",") if ip.strip()]
    for ip in proxies:
        try:
            ipaddress.ip_network(ip, strict=False)
        except ValueError:
            raise InputError(
                f"--forwarded-allow-ips: {ip!r} is not an IP address or network"
            ) from None
    if tokens_dir is not None and db.exists():
        raise InputError("--tokens-dir is only for a new database: credentials are issued once")
    if not db.exists():  # the terms are checked before anything is created
        if config is None:
            raise InputError(f"{db} does not exist; give --config to start a new negotiation")
        load_config(config)
    made_folder = tokens_dir is not None and prepare_secret_folder(tokens_dir)
    configure_logging()
    written: list[Path] = []

    def publish(tokens: dict[str, str]) -> None:  # before the database commits them
        if tokens_dir is not None:
            written.extend(write_secrets(tokens_dir, tokens))

    try:
        state, tokens = open_state(db, config, publish=publish)
    except BaseException:  # nothing is left: no database, no credential file
        for path in written:
            path.unlink(missing_ok=True)
        if made_folder and tokens_dir is not None:
            tokens_dir.rmdir()
        raise
    if tokens:
        out.print("credentials (shown once; the coordinator keeps only their hashes):")
        for party, token in tokens.items():
            out.print(f"  {party}: {token}", markup=False)
    if output is not None:

        def write(s: CoordinatorState) -> None:
            if s.session.status == "done":
                write_text_atomic(output, json.dumps(s.outcome_document(), indent=2) + "\n")

        state.on_finish = write
        if state.session.status == "done":
            write(state)

    def announce(url: str) -> None:
        out.print(f"listening on {url}", markup=False)
        out.file.flush()

    serve(
        state,
        host,
        port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        access_log=access_log,
        max_connections=max_connections,
        forwarded_allow_ips=proxies,
        announce=announce,
    )


class Transport(StrEnum):
    """How an agent talks to the coordinator."""

    ws = "ws"
    http = "http"


@agent_app.command("run")
@handle_errors
def agent_run(
    coordinator: Annotated[
        str, typer.Option("--coordinator", metavar="URL", help="The coordinator's URL.")
    ],
    party: Annotated[str, typer.Option("--party", metavar="NAME", help="This party's name.")],
    token_file: Annotated[
        Path, typer.Option("--token-file", metavar="FILE", help="File holding the credential.")
    ],
    private: Annotated[
        Path, typer.Option("--private", metavar="FILE", help="This party's private data (JSON).")
    ],
    json_out: JsonOpt = False,
    retry_for: Annotated[
        float,
        typer.Option(
            "--retry-for",
            metavar="SECONDS",
            help="Seconds to keep retrying an unreachable coordinator.",
        ),
    ] = 120.0,
    ca_cert: Annotated[
        Path | None,
        typer.Option("--ca-cert", metavar="FILE", help="Trust this certificate (self-signed TLS)."),
    ] = None,
    transport: Annotated[
        Transport,
        typer.Option(
            "--transport",
            metavar="ws|http",
            help="ws: one WebSocket (one frame each way per round); http: long-polling requests "
            "(for networks that block WebSockets).",
        ),
    ] = Transport.ws,
) -> None:
    """Answer the coordinator's tasks from private data until the negotiation ends."""
    from pivotal.service.client import Agent, AgentOptions

    token = read_text(token_file).strip()
    if not token:
        raise InputError(f"{token_file} is empty", field="token-file")
    if not private.is_file():
        raise InputError(f"{private} does not exist", field="private")
    verify: bool | ssl.SSLContext = True
    if ca_cert is not None:
        if not ca_cert.is_file():
            raise InputError(f"{ca_cert} does not exist", field="ca-cert")
        verify = ssl.create_default_context(cafile=str(ca_cert))
    live = err.is_terminal and not json_out
    with err.status(f"{party}: connecting to {coordinator}", spinner="dots") as status:

        def on_event(event: dict[str, Any]) -> None:
            if live:
                status.update(f"{party}: answered {event['phase']} round {event['round']}")

        agent = Agent(
            coordinator,
            party,
            token,
            private,
            AgentOptions(retry_for=retry_for, verify=verify, transport=transport.value),
            on_event=on_event,
        )
        try:
            result = agent.run()  # a run that does not converge: exit 3 (handle_errors)
        finally:
            agent.close()
    if json_out:
        emit_json(result, None)
        return
    out.print(
        f"{party}: cost {num(result['costs']['status_quo'])} -> {num(result['costs']['joint'])}, "
        f"transfer {num(result['transfer'])}, gain {num(result['gain'])} "
        f"after {result['rounds']} rounds"
    )


def _register_call_server() -> None:
    """``pivotal serve call``: the open-call server lives with the rest of the call commands."""
    from pivotal.cli.call import serve_call_cmd

    serve_app.command("call", help="Run an open call (sealed-bid market or auction).")(
        serve_call_cmd
    )


_register_call_server()
