"""The suspension marker: written by the sweeper, checked by the app on each whoami.

``/sessions/whoami`` returns the identity's ``metadata_public`` but never its
``metadata_admin``, so the marker lives in ``metadata_public`` where the app
reads it without an admin call: ``metadata_public.stale_tokens_suspended_at``,
an RFC 3339 timestamp. A session authenticated before that moment is
suspended; a fresh sign-in creates a session authenticated after it and passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from starlette.exceptions import HTTPException

from ._errors import StaleTokensError
from ._models import Identity, Session, _optional_timestamp
from ._timestamps import format_timestamp, parse_timestamp

__all__ = [
    "SUSPENDED_AT_KEY",
    "SessionSuspendedError",
    "check_session_not_suspended",
    "is_session_suspended",
]

SUSPENDED_AT_KEY = "stale_tokens_suspended_at"
SUSPENDED_STATUS_CODE = 401
SUSPENDED_DETAIL = "This session was suspended after a long inactivity; sign in again to continue."


class SessionSuspendedError(StaleTokensError, HTTPException):
    """Raised by `check_session_not_suspended` for a session older than the suspension.

    It is also a Starlette ``HTTPException`` (401), so Starlette and FastAPI
    turn it into a response that sends the user to sign in again.
    """

    def __init__(self, identity_id: str | None) -> None:
        HTTPException.__init__(self, status_code=SUSPENDED_STATUS_CODE, detail=SUSPENDED_DETAIL)
        self.identity_id = identity_id


def is_session_suspended(session: Session | Mapping[str, Any]) -> bool:
    """Tell whether a Kratos session predates the suspension of its identity.

    Args:
        session: The ``/sessions/whoami`` JSON (or a `Session` built from it).
            It must include the identity, as whoami always does.

    Returns:
        ``True`` when the identity carries a suspension marker and the session
        was authenticated before it, or has no ``authenticated_at``. ``False``
        when there is no marker, or when the marker is not an RFC 3339
        timestamp, because the app must not lock out a user over
        data it cannot read.
    """
    data = session.raw if isinstance(session, Session) else session
    identity = data.get("identity")
    metadata_public = identity.get("metadata_public") if isinstance(identity, Mapping) else None
    suspended_at = _read_marker(metadata_public)
    if suspended_at is None:
        return False

    authenticated_at = data.get("authenticated_at")
    if not isinstance(authenticated_at, str):
        return True
    try:
        return parse_timestamp(authenticated_at) < suspended_at
    except ValueError:
        return True


def check_session_not_suspended(session: Session | Mapping[str, Any]) -> None:
    """Raise `SessionSuspendedError` when *session* predates its identity's suspension.

    Call it where the app has just resolved the whoami session, for example
    in a FastAPI dependency::

        async def current_session(request: Request) -> dict[str, Any]:
            session = await whoami(request)
            check_session_not_suspended(session)
            return session

    Raises:
        SessionSuspendedError: A 401 ``HTTPException`` as well, so Starlette
            and FastAPI turn it into a response without an extra exception
            handler.
    """
    if is_session_suspended(session):
        data = session.raw if isinstance(session, Session) else session
        identity = data.get("identity")
        identity_id = identity.get("id") if isinstance(identity, Mapping) else None
        raise SessionSuspendedError(identity_id if isinstance(identity_id, str) else None)


def suspended_at_of(identity: Identity) -> datetime | None:
    """Return the suspension time recorded on *identity*, or ``None``."""
    return _read_marker(identity.metadata_public)


def suspension_patch(identity: Identity, moment: datetime) -> list[dict[str, Any]] | None:
    """Build the JSON Patch that records a suspension at *moment*.

    Returns ``None`` when ``metadata_public`` is a value that cannot hold a
    key (a string, a list), because writing the marker would destroy it.
    """
    value = format_timestamp(moment)
    if isinstance(identity.metadata_public, Mapping):
        return [{"op": "add", "path": f"/metadata_public/{SUSPENDED_AT_KEY}", "value": value}]
    if identity.metadata_public is None:
        # Kratos < 1.0 rejects an add below a null parent, so the whole object
        # is written; on newer releases both forms give the same result.
        return [{"op": "add", "path": "/metadata_public", "value": {SUSPENDED_AT_KEY: value}}]
    return None


def clear_suspension_patch(identity: Identity) -> list[dict[str, Any]] | None:
    """Build the JSON Patch that removes the marker, or ``None`` when there is none."""
    metadata_public = identity.metadata_public
    if not isinstance(metadata_public, Mapping) or SUSPENDED_AT_KEY not in metadata_public:
        return None
    return [{"op": "remove", "path": f"/metadata_public/{SUSPENDED_AT_KEY}"}]


def _read_marker(metadata_public: object) -> datetime | None:
    if not isinstance(metadata_public, Mapping):
        return None
    # An unreadable marker is not logged here, because this runs on every request.
    return _optional_timestamp(metadata_public.get(SUSPENDED_AT_KEY))
