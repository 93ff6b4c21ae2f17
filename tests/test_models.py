"""Tolerant parsing of identity and session JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stale_tokens import Identity, Session


def test_identity_from_kratos_json() -> None:
    """The fields the library reads are parsed; the object is kept in raw."""
    data = {
        "id": "c4d24c01-feba-4213-858b-262c8d427f8c",
        "schema_id": "default",
        "schema_url": "http://127.0.0.1:4433/schemas/ZGVmYXVsdA",
        "state": "active",
        "traits": {"email": "a@example.com", "role": "admin"},
        "metadata_public": None,
        "metadata_admin": {"last_activity_at": "2024-03-01T12:00:00Z"},
        "organization_id": None,
        "created_at": "2023-02-03T15:41:22.843984Z",
        "updated_at": "2023-02-03T15:41:22.843984Z",
    }

    identity = Identity.from_json(data)

    assert identity.id == "c4d24c01-feba-4213-858b-262c8d427f8c"
    assert identity.is_active
    assert identity.traits == {"email": "a@example.com", "role": "admin"}
    assert identity.metadata_admin == {"last_activity_at": "2024-03-01T12:00:00Z"}
    assert identity.created_at == datetime(2023, 2, 3, 15, 41, 22, 843984, tzinfo=UTC)
    assert identity.state_changed_at is None
    assert identity.raw is data


def test_identity_keeps_unknown_state() -> None:
    """A state Kratos may add later is kept verbatim and is not active."""
    identity = Identity.from_json({"id": "x", "state": "deleted", "credentials": {"magic": {}}})

    assert identity.state == "deleted"
    assert not identity.is_active


def test_identity_bad_timestamp_becomes_none() -> None:
    """An unparseable created_at does not fail the identity."""
    identity = Identity.from_json({"id": "x", "created_at": "yesterday"})

    assert identity.created_at is None
    assert identity.raw["created_at"] == "yesterday"


@pytest.mark.parametrize(
    "data", [{"state": "active"}, {"id": None}, {"id": ""}, {"id": 7}, [], "x"]
)
def test_identity_without_id_is_rejected(data: object) -> None:
    """An entry without a string id cannot be acted on and raises ValueError."""
    with pytest.raises(ValueError, match="identity"):
        Identity.from_json(data)


def test_session_from_whoami_json() -> None:
    """Session timestamps, methods and the identity id are read."""
    data = {
        "id": "0cd29640-3b64-419d-93b0-8c9e84c2090d",
        "active": True,
        "expires_at": "2023-02-06T15:41:22.898169Z",
        "authenticated_at": "2023-02-03T15:41:22.963917Z",
        "authentication_methods": [
            {"method": "password", "aal": "aal1"},
            {"method": "future_method"},
            {"aal": "aal2"},
        ],
        "issued_at": "2023-02-03T15:41:22.898169Z",
        "identity": {"id": "c4d24c01-feba-4213-858b-262c8d427f8c"},
    }

    session = Session.from_json(data)

    assert session.active is True
    assert session.identity_id == "c4d24c01-feba-4213-858b-262c8d427f8c"
    assert session.authentication_methods == ("password", "future_method")
    assert session.authenticated_at == datetime(2023, 2, 3, 15, 41, 22, 963917, tzinfo=UTC)


def test_session_without_identity() -> None:
    """`identity: null` (a listing without expand) leaves identity_id empty."""
    session = Session.from_json({"id": "s", "identity": None, "active": "yes"})

    assert session.identity_id is None
    assert session.active is False
