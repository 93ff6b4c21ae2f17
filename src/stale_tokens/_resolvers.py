"""Identity resolution for the middleware: `mark_active`, resolvers and their protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from starlette.requests import HTTPConnection
from starlette.types import Scope

from ._decision import CredentialKind
from ._kinds import coerce_kind, validate_identity_id

__all__ = [
    "MARK_SCOPE_KEY",
    "ActivityMark",
    "IdentityResolver",
    "TrustedHeaderResolver",
    "mark_active",
]

# A private scope key: middleware that copies the scope copies the reference
# to the same ActivityMark, so a mark set deeper in the stack is still seen.
MARK_SCOPE_KEY = "stale_tokens.activity_mark"

Identification = tuple[str, CredentialKind | None]


class IdentityResolver(Protocol):
    """Finds the identity behind a request from its ASGI scope.

    The middleware calls `identify` after the application handled an HTTP
    request, and on WebSocket messages. It runs on the request path, so it
    must do no I/O and not log.
    """

    def identify(self, scope: Scope, at: float, /) -> Identification | None:
        """Return ``(identity_id, kind)`` for the request, or ``None`` when unknown.

        Args:
            scope: The ASGI scope of the request or WebSocket.
            at: When the activity happened, POSIX seconds, for resolvers that
                keep the request to look it up later.
        """
        ...


class ActivityMark:
    """The identity an application marked as active for one request."""

    __slots__ = ("identity_id", "kind")

    def __init__(self) -> None:
        self.identity_id: str | None = None
        self.kind: CredentialKind | None = None


def mark_active(
    connection: HTTPConnection | Mapping[str, Any],
    identity_id: str,
    *,
    kind: CredentialKind | str | None = None,
) -> bool:
    """Mark *identity_id* as the identity behind the current request or WebSocket.

    Call it from an endpoint or dependency, sync or async, once the request is
    authenticated. `ActivityMiddleware` records the activity when the request
    ends (HTTP) or on the next received message (WebSocket). A later call in
    the same request replaces the mark.

    Args:
        connection: The Starlette or FastAPI ``Request`` or ``WebSocket``, or
            the ASGI scope.
        identity_id: The Kratos identity id.
        kind: The credential the request used, if known.

    Returns:
        ``False`` when no `ActivityMiddleware` tracks this request: it is not
        installed, or the path is excluded.

    Raises:
        ValueError: If *identity_id* is empty or *kind* is not a `CredentialKind` value.
    """
    validate_identity_id(identity_id)
    credential_kind = coerce_kind(kind)
    scope = connection.scope if isinstance(connection, HTTPConnection) else connection
    mark = scope.get(MARK_SCOPE_KEY)
    if not isinstance(mark, ActivityMark):
        return False

    mark.identity_id = identity_id
    mark.kind = credential_kind
    return True


class TrustedHeaderResolver:
    """Reads the identity id from a header that a trusted proxy sets, such as Ory Oathkeeper.

    Safe only behind a proxy that removes this header from every client
    request and sets it itself: otherwise any client can make any identity
    look active and keep its sessions from being revoked.

    Args:
        header: The header name, matched case-insensitively.
        kind: The credential kind to record with the activity, if the proxy
            only admits one kind.

    Raises:
        ValueError: If *header* is empty or *kind* is not a `CredentialKind` value.
    """

    def __init__(
        self, header: str = "X-User-Id", *, kind: CredentialKind | str | None = None
    ) -> None:
        if not header:
            raise ValueError("header must be a non-empty header name, such as 'X-User-Id'")
        self._header = header.lower().encode("latin-1")
        self._kind = coerce_kind(kind)

    def identify(self, scope: Scope, at: float, /) -> Identification | None:
        """Return the header's value as the identity id, or ``None`` when absent or empty."""
        header = self._header
        for name, value in scope["headers"]:
            if name == header:
                identity_id = value.decode("latin-1").strip()
                return (identity_id, self._kind) if identity_id else None
        return None
