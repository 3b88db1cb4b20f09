"""``pivotal serve call`` and ``pivotal call``: open calls (sealed-bid markets and auctions).

``pivotal serve call --config call.json --db call.sqlite`` creates the call (printing the
operator's and the invited participants' credentials once) or resumes it from its database.
``pivotal call submit|status|result|close|verify`` are the participants', the operator's and the
public's side.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Any

import typer

from pivotal.cli.common import emit_json, handle_errors, out
from pivotal.errors import InputError, ServiceError
from pivotal.fileio import (
    prepare_secret_folder,
    read_json,
    read_text,
    write_secret,
    write_secrets,
)

call_app = typer.Typer(
    help="Open calls: submit sealed reports, follow, close and verify.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

UrlOpt = Annotated[
    str, typer.Option("--url", metavar="URL", help="The call's URL, like http://127.0.0.1:8800.")
]
NameOpt = Annotated[str, typer.Option("--name", metavar="NAME", help="The participant's name.")]
TokenOpt = Annotated[
    Path, typer.Option("--token-file", metavar="FILE", help="File holding the credential.")
]
CaOpt = Annotated[
    Path | None,
    typer.Option("--ca-cert", metavar="FILE", help="Trust this certificate (self-signed TLS)."),
]
OutOpt = Annotated[
    Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write the JSON to FILE.")
]


def _token(path: Path) -> str:
    token = read_text(path).strip()
    if not token:
        raise InputError(f"{path} is empty; it should hold the credential", field="token-file")
    return token


def _client(url: str, ca_cert: Path | None) -> Any:
    import httpx

    verify: bool | ssl.SSLContext = True
    if ca_cert is not None:
        verify = ssl.create_default_context(cafile=str(ca_cert))
    return httpx.Client(base_url=url.rstrip("/"), verify=verify, timeout=60.0)


def _request(
    url: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    ca_cert: Path | None = None,
    wait: bool = False,
) -> Any:
    """One request; ``wait``: no limit on the time to the reply (a close computes as long as
    the auction takes), only on connecting."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx.Timeout(60.0, read=None) if wait else httpx.USE_CLIENT_DEFAULT
    try:
        with _client(url, ca_cert) as client:
            r = client.request(method, path, headers=headers, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ServiceError(f"cannot reach the call at {url}: {exc}") from None
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text
        if isinstance(detail, list):
            detail = "; ".join(str(d.get("msg")) for d in detail if isinstance(d, dict))
        if r.status_code in (413, 422):
            raise InputError(f"refused ({r.status_code}): {detail}")
        raise ServiceError(f"refused ({r.status_code}): {detail}")
    return r.json()


def serve_call_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="FILE", help="The call's public terms (to create it)."),
    ] = None,
    db: Annotated[
        Path, typer.Option("--db", metavar="FILE", help="SQLite database (created if missing).")
    ] = Path("call.sqlite"),
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", help="Port to listen on; 0 picks a free one.")
    ] = 8800,
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
            "--tokens-dir", metavar="DIR", help="Also write each new credential to DIR/NAME.token."
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option("--access-log/--no-access-log", help="Log each request (never its body)."),
    ] = True,
    registrations_per_minute: Annotated[
        int,
        typer.Option(
            "--registrations-per-minute",
            metavar="N",
            help="Registration attempts allowed a minute from one client address (429 beyond; "
            "0: no bound). Behind a proxy every client has the proxy's address.",
        ),
    ] = 60,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            metavar="ENGINE",
            help="Where an auction close's counterfactual solves run: inprocess, processes[:N] "
            "or dask://HOST:PORT.",
        ),
    ] = "inprocess",
) -> None:
    """Serve an open call: create it from --config, or resume it from an existing --db."""
    from pivotal.calls import Call, terms_from_document
    from pivotal.engine import engine_from_spec
    from pivotal.service.call_server import serve_call
    from pivotal.service.server import configure_logging

    if (tls_cert is None) != (tls_key is None):
        raise InputError("give both --tls-cert and --tls-key, or neither")
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            raise InputError(f"{path} does not exist", field="tls")
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be in 0..65535, got {port}")
    if registrations_per_minute < 0:
        raise InputError(
            f"--registrations-per-minute must be 0 or more, got {registrations_per_minute}"
        )
    runner = engine_from_spec(engine)  # a wrong spec is refused before a database is made
    if db.exists():
        if tokens_dir is not None:
            raise InputError("--tokens-dir is only for a new database: credentials are issued once")
        call = Call.open(db)
        tokens: dict[str, str] = {}
    else:
        if config is None:
            raise InputError(f"{db} does not exist; give --config to create the call")
        terms = terms_from_document(read_json(config), source=str(config))
        made_folder = tokens_dir is not None and prepare_secret_folder(tokens_dir)
        written: list[Path] = []

        def publish(issued: dict[str, str]) -> None:  # before the database commits them
            if tokens_dir is not None:
                written.extend(write_secrets(tokens_dir, issued))

        try:
            call, tokens = Call.create(db, terms, publish=publish)
        except BaseException:  # nothing is left: no database, no credential file
            for path in written:
                path.unlink(missing_ok=True)
            if made_folder and tokens_dir is not None:
                tokens_dir.rmdir()
            raise
    configure_logging()
    if tokens:
        out.print("credentials (shown once; the call keeps only their hashes):")
        for name, token in tokens.items():
            out.print(f"  {name}: {token}", markup=False)
    out.print(f"public key of the receipts: {call.key.public_hex}", markup=False, soft_wrap=True)

    def announce(url: str) -> None:
        out.print(f"listening on {url}", markup=False)
        out.file.flush()

    with runner:
        serve_call(
            call,
            host,
            port,
            tls_cert=tls_cert,
            tls_key=tls_key,
            access_log=access_log,
            registrations_per_minute=registrations_per_minute,
            announce=announce,
            engine=runner,
        )


@call_app.command("submit")
@handle_errors
def call_submit(
    url: UrlOpt,
    name: NameOpt,
    token_file: TokenOpt,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="FILE", help="The report (JSON); see docs/calls.md."),
    ] = None,
    register: Annotated[
        str | None,
        typer.Option(
            "--register",
            metavar="ROLE",
            help="Register first with this role (producer, buyer or bidder); the credential is "
            "written to --token-file.",
        ),
    ] = None,
    withdraw: Annotated[bool, typer.Option("--withdraw", help="Withdraw the report.")] = False,
    receipt_out: Annotated[
        Path | None,
        typer.Option("--receipt", metavar="FILE", help="Write the signed receipt to FILE."),
    ] = None,
    ca_cert: CaOpt = None,
) -> None:
    """Submit (or revise, or withdraw) a sealed report and print the signed receipt."""
    if (report is None) == (not withdraw):
        raise InputError("give --report FILE to submit, or --withdraw")
    body = read_json(report) if report is not None else None
    if register is not None:
        reply = _request(
            url, "POST", "/v1/register", body={"name": name, "role": register}, ca_cert=ca_cert
        )
        write_secret(token_file, reply["token"])
        if reply["status"] != "approved":
            out.print(f"registered {name}; waiting for the operator's approval", markup=False)
            return
    token = _token(token_file)
    path = f"/v1/participants/{name}/report"
    if withdraw:
        receipt = _request(url, "DELETE", path, token=token, ca_cert=ca_cert)
    else:
        receipt = _request(url, "PUT", path, token=token, body=body, ca_cert=ca_cert)
    emit_json(receipt, receipt_out)
    if receipt_out is not None:
        out.print(f"receipt seq {receipt['seq']} written to {receipt_out}", markup=False)


@call_app.command("status")
@handle_errors
def call_status(
    url: UrlOpt,
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="A participant's own status.")
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", metavar="FILE", help="File holding the credential."),
    ] = None,
    ca_cert: CaOpt = None,
) -> None:
    """The public status (terms, phase, time left, participants), a participant's own status
    with --name/--token-file, or the operator's dashboard with the operator's --token-file."""
    if name is not None:
        if token_file is None:
            raise InputError("--name needs --token-file")
        doc = _request(
            url, "GET", f"/v1/participants/{name}", token=_token(token_file), ca_cert=ca_cert
        )
    elif token_file is not None:
        doc = _request(url, "GET", "/v1/operator", token=_token(token_file), ca_cert=ca_cert)
    else:
        doc = _request(url, "GET", "/v1/call", ca_cert=ca_cert)
    emit_json(doc, None)


@call_app.command("result")
@handle_errors
def call_result(
    url: UrlOpt,
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="A participant's own result.")
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", metavar="FILE", help="File holding the credential."),
    ] = None,
    output: OutOpt = None,
    ca_cert: CaOpt = None,
) -> None:
    """The published record (public), or a participant's own result with --name/--token-file."""
    if name is not None:
        if token_file is None:
            raise InputError("--name needs --token-file")
        doc = _request(
            url, "GET", f"/v1/participants/{name}/result", token=_token(token_file), ca_cert=ca_cert
        )
    else:
        doc = _request(url, "GET", "/v1/record", ca_cert=ca_cert)
    emit_json(doc, output)


@call_app.command("close")
@handle_errors
def call_close(
    url: UrlOpt,
    token_file: TokenOpt,
    publish: Annotated[
        bool,
        typer.Option("--publish/--no-publish", help="Publish the record right after the close."),
    ] = True,
    output: OutOpt = None,
    ca_cert: CaOpt = None,
) -> None:
    """Close the call (the operator, after the deadline) and publish the record."""
    token = _token(token_file)
    summary = _request(url, "POST", "/v1/operator/close", token=token, ca_cert=ca_cert, wait=True)
    if not publish:
        emit_json(summary, output)
        return
    record = _request(url, "POST", "/v1/operator/publish", token=token, ca_cert=ca_cert)
    emit_json(record, output)


@call_app.command("verify")
@handle_errors
def call_verify(
    record: Annotated[
        Path, typer.Argument(metavar="RECORD", help="The published record (pivotal call result).")
    ],
    key: Annotated[
        str | None,
        typer.Option("--key", metavar="HEX", help="The public key you were shown (hex)."),
    ] = None,
    receipts: Annotated[
        list[Path] | None,
        typer.Option("--receipt", metavar="FILE", help="A receipt to check (repeatable)."),
    ] = None,
    terms: Annotated[
        Path | None,
        typer.Option(
            "--terms",
            metavar="FILE",
            help="The terms you were shown (GET /v1/terms): the record's must be the same.",
        ),
    ] = None,
) -> None:
    """Check the record's signature, the receipts, the report hashes and (when the reports
    are published) recompute the outcome. Exit 0 when everything holds, 1 otherwise."""
    from pivotal.calls.receipts import public_key_hex
    from pivotal.calls.verify import verify_record

    loaded = [read_json(p) for p in receipts or []]
    check = verify_record(
        read_json(record),
        public_key=public_key_hex(key) if key is not None else None,
        receipts=[r for r in loaded if isinstance(r, dict)],
        terms=_terms_document(terms) if terms is not None else None,
    )
    if check.ok:
        what = "outcome recomputed" if check.recomputed else "reports not published: not recomputed"
        out.print(
            f"verified: record signature, hashes and receipts hold ({what}; {check.checked} checks)"
        )
        if key is None and not loaded:
            out.print(
                "note: the signature was checked under the key the record names; give --key "
                "(the key you were shown) or --receipt to check that it is the call's key",
                markup=False,
                soft_wrap=True,
            )
        return
    out.print(f"FAILED: {len(check.problems)} problems", markup=False)
    for line in check.problems:
        out.print(f"  {line}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


def _terms_document(path: Path) -> dict[str, Any]:
    doc = read_json(path)
    if isinstance(doc, dict) and isinstance(doc.get("terms"), dict):  # GET /v1/call's reply
        doc = doc["terms"]
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected the call's terms (GET /v1/terms)", field="terms")
    return doc


serve_call_cmd = handle_errors(serve_call_command)

__all__ = ["call_app", "serve_call_cmd"]
