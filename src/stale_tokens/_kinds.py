"""Values that the tracker, the middleware and the resolvers check alike."""

from __future__ import annotations

from ._decision import CredentialKind

__all__ = ["coerce_kind", "validate_identity_id"]


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
