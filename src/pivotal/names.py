"""Party names and credentials: the one pattern every party of a negotiation and every
participant of an open call must match, and the names reserved for the services' own roles.

A name is 1-64 characters: lowercase letters, digits, ``-`` and ``_``, starting with a letter
or a digit (:data:`NAME_PATTERN`). So a name is safe as a file name (``NAME.token``), as a URL
path segment and as a log word, and two names never differ only in case. The names in
:data:`RESERVED_NAMES` belong to the services (the ``operator`` credential, the pages) and are
refused for a party.

Both services issue the same credentials (:func:`new_token`: 256 random bits, URL-safe) and store
only their SHA-256 (:func:`token_hash`); the operator's credential is stored under
:data:`OPERATOR`.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from pivotal.errors import InputError

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Party names: lowercase letters, digits, ``-`` and ``_``, at most 64 characters."""
OPERATOR = "operator"
"""The operator role's name (its credential is stored under it)."""
RESERVED_NAMES = frozenset({OPERATOR, "public", "admin", "reserve", "call"})
"""Names no party may take (the roles and the services' own names)."""

_NAME = re.compile(NAME_PATTERN)
_SHOWN = 40


def check_name(name: object, *, what: str = "party", field: str = "name") -> str:
    """``name`` if it is a valid party name, else :class:`InputError` naming the rule (one line:
    a long name is shown cut, with its length)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name)
        if isinstance(name, str) and len(name) > _SHOWN:
            shown = f"{name[:_SHOWN]!r}... ({len(name)} characters)"
        raise InputError(
            f"{what} name {shown} is not allowed: use 1-64 lowercase letters, digits, '-' or "
            "'_', starting with a letter or digit",
            field=field,
        )
    if name in RESERVED_NAMES:
        raise InputError(
            f"{what} name '{name}' is reserved ({', '.join(sorted(RESERVED_NAMES))}); choose "
            "another",
            field=field,
        )
    return name


def new_token() -> str:
    """A fresh credential: 256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 of a credential (credentials are 256-bit random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


__all__ = ["NAME_PATTERN", "OPERATOR", "RESERVED_NAMES", "check_name", "new_token", "token_hash"]
