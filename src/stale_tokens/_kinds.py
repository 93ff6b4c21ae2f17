"""Values that the tracker, the middleware and the resolvers check alike."""

from __future__ import annotations

import enum

__all__ = ["CredentialKind", "coerce_kind", "validate_identity_id"]


class CredentialKind(enum.StrEnum):
    """A kind of credential, as recorded with an activity and revoked by the sweeper."""

    BROWSER_SESSION = "browser_session"
    """Kratos sessions: the ``ory_kratos_session`` cookie or an ``X-Session-Token``."""
    OAUTH2 = "oauth2"
    """Hydra consent sessions, with the access and refresh tokens issued under them."""
    PERSONAL_ACCESS_TOKEN = "personal_access_token"  # noqa: S105 (a kind name, not a secret)
    """Tokens the application issues and stores itself."""


def coerce_kind(kind: str | None) -> CredentialKind | None:
    """Return *kind* as a `CredentialKind`, or ``None`` when it is ``None``.

    Raises:
        ValueError: If *kind* is not one of the `CredentialKind` values.
    """
    if kind is None or isinstance(kind, CredentialKind):
        return kind
    try:
        return CredentialKind(kind)
    except ValueError:
        choices = ", ".join(repr(member.value) for member in CredentialKind)
        raise ValueError(f"kind {kind!r} is not a credential kind; use one of {choices}") from None


def validate_identity_id(identity_id: object) -> None:
    """Raise `ValueError` unless *identity_id* is a non-empty string."""
    if not isinstance(identity_id, str) or not identity_id:
        raise ValueError(f"identity_id must be a non-empty string, got {identity_id!r}")
