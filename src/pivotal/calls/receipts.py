"""Receipts: what the server accepted, signed with the call's Ed25519 key.

A receipt is the JSON object ``{"call", "terms_hash", "participant", "action", "seq",
"report_sha256", "server_time"}`` (``terms_hash``: :meth:`CallTerms.sha256
<pivotal.calls.terms.CallTerms.sha256>`, the terms but the deadline; ``action``: submit, revise
or withdraw; ``report_sha256`` is null for a withdrawal) plus ``signature``: the Ed25519
signature (hex) of the canonical JSON of the other fields
(:func:`pivotal.results.canonical_json`). The call's public key is published with its
terms (hex of the 32 raw bytes), so anyone can check a receipt, and a participant can prove
what the server accepted from it. The published record is signed the same way.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pivotal.errors import InputError
from pivotal.results import canonical_json


class CallKey:
    """The call's signing key (the private part stays in the call's database)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_hex = private.public_key().public_bytes_raw().hex()

    @classmethod
    def generate(cls) -> CallKey:
        """A fresh key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> CallKey:
        """A key from its 32 raw private bytes."""
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """The 32 raw private bytes (for the database only)."""
        return self._private.private_bytes_raw()

    def sign(self, document: dict[str, Any]) -> dict[str, Any]:
        """``document`` with its ``signature`` added."""
        body = {k: v for k, v in document.items() if k != "signature"}
        signature = self._private.sign(canonical_json(body).encode()).hex()
        return {**body, "signature": signature}


def check_signature(document: Any, public_hex: str) -> bool:
    """Whether ``document["signature"]`` signs the rest of ``document`` under the key."""
    if not isinstance(document, dict) or not isinstance(document.get("signature"), str):
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        signature = bytes.fromhex(document["signature"])
        body = {k: v for k, v in document.items() if k != "signature"}
        key.verify(signature, canonical_json(body).encode())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def receipt(
    key: CallKey,
    *,
    call: str,
    terms_hash: str,
    participant: str,
    action: str,
    seq: int,
    report_sha256: str | None,
    server_time: str,
) -> dict[str, Any]:
    """A signed receipt (see the module docstring)."""
    return key.sign(
        {
            "call": call,
            "terms_hash": terms_hash,
            "participant": participant,
            "action": action,
            "seq": seq,
            "report_sha256": report_sha256,
            "server_time": server_time,
        }
    )


def public_key_hex(value: Any) -> str:
    """A checked public key in hex, or :class:`InputError`."""
    try:
        raw = bytes.fromhex(str(value))
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise InputError(
            f"{value!r} is not an Ed25519 public key (64 hex digits)", field="public_key"
        ) from None
    return raw.hex()


__all__ = ["CallKey", "check_signature", "public_key_hex", "receipt"]
