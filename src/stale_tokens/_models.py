"""Tolerant views of the Kratos identity and session JSON.

The generated Ory clients fail a whole page on one unknown enum value (a new
identity state, a new credential type). These views keep only what the
library reads, keep the rest in ``raw``, and never reject a value they do not
know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._timestamps import parse_timestamp

__all__ = ["Identity", "Session"]


@dataclass(frozen=True, slots=True)
class Identity:
    """A Kratos identity as the admin API returns it.

    Attributes:
        id: The identity's UUID.
        state: ``"active"``, ``"inactive"``, or any other value Kratos sent,
            kept verbatim.
        schema_id: The identity schema, or ``None`` when missing.
        traits: The traits, usually an object; any JSON value is kept.
        metadata_public: Any JSON value, ``None`` when unset.
        metadata_admin: Any JSON value, ``None`` when unset. Kratos does not
            validate it, so it may even be a string or a list.
        created_at: Aware UTC, or ``None`` when missing or not RFC 3339.
        updated_at: Aware UTC, or ``None`` when missing or not RFC 3339.
        state_changed_at: Aware UTC, or ``None`` when missing or not RFC 3339.
        raw: The JSON object exactly as received.
    """

    id: str
    state: str
    schema_id: str | None
    traits: Any
    metadata_public: Any
    metadata_admin: Any
    created_at: datetime | None
    updated_at: datetime | None
    state_changed_at: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def is_active(self) -> bool:
        return self.state == "active"

    @classmethod
    def from_json(cls, data: object) -> Identity:
        """Build an identity from its JSON object.

        Raises:
            ValueError: If *data* is not an object or has no string ``id``;
                nothing else is required.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"an identity must be a JSON object, got {type(data).__name__}")
        identity_id = data.get("id")
        if not isinstance(identity_id, str) or not identity_id:
            raise ValueError(f"an identity has no string 'id' (got {identity_id!r})")

        state = data.get("state")
        schema_id = data.get("schema_id")
        return cls(
            id=identity_id,
            state=state if isinstance(state, str) else "active",
            schema_id=schema_id if isinstance(schema_id, str) else None,
            traits=data.get("traits"),
            metadata_public=data.get("metadata_public"),
            metadata_admin=data.get("metadata_admin"),
            created_at=_optional_timestamp(data.get("created_at")),
            updated_at=_optional_timestamp(data.get("updated_at")),
            state_changed_at=_optional_timestamp(data.get("state_changed_at")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Session:
    """A Kratos session as the admin API or ``/sessions/whoami`` returns it.

    Attributes:
        id: The session's UUID.
        active: The ``active`` flag as Kratos computed it; ``False`` when missing.
        identity_id: The identity's id when the session was expanded with it.
        authenticated_at: Aware UTC, or ``None``.
        issued_at: Aware UTC, or ``None``.
        expires_at: Aware UTC, or ``None``.
        authentication_methods: The ``method`` of each authentication step,
            unknown methods included.
        raw: The JSON object exactly as received.
    """

    id: str
    active: bool
    identity_id: str | None
    authenticated_at: datetime | None
    issued_at: datetime | None
    expires_at: datetime | None
    authentication_methods: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: object) -> Session:
        """Build a session from its JSON object.

        Raises:
            ValueError: If *data* is not an object or has no string ``id``.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a session must be a JSON object, got {type(data).__name__}")
        session_id = data.get("id")
        if not isinstance(session_id, str) or not session_id:
            raise ValueError(f"a session has no string 'id' (got {session_id!r})")

        identity = data.get("identity")
        identity_id = identity.get("id") if isinstance(identity, Mapping) else None
        methods = data.get("authentication_methods")
        return cls(
            id=session_id,
            active=data.get("active") is True,
            identity_id=identity_id if isinstance(identity_id, str) else None,
            authenticated_at=_optional_timestamp(data.get("authenticated_at")),
            issued_at=_optional_timestamp(data.get("issued_at")),
            expires_at=_optional_timestamp(data.get("expires_at")),
            authentication_methods=tuple(
                method["method"]
                for method in (methods if isinstance(methods, list) else ())
                if isinstance(method, Mapping) and isinstance(method.get("method"), str)
            ),
            raw=data,
        )


def _optional_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None
