"""Identities shaped like Kratos admin API responses, for the policy tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stale_tokens import Decision, Identity, format_timestamp

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
IDENTITY_ID = "3f2a7c1e-0000-4000-8000-000000000001"


def make_identity(
    *,
    last_activity: datetime | str | None = None,
    created_at: datetime | str | None = "2020-01-01T00:00:00Z",
    role: Any = "user",
    metadata_admin: Any = None,
    state: str = "active",
    identity_id: str = IDENTITY_ID,
) -> Identity:
    """Build an identity the way the Kratos admin API returns it."""
    metadata = dict(metadata_admin) if isinstance(metadata_admin, dict) else metadata_admin
    if last_activity is not None:
        metadata = metadata if isinstance(metadata, dict) else {}
        metadata["last_activity_at"] = _stamp(last_activity)
    traits: dict[str, Any] = {"email": "person@example.org"}
    if role is not None:
        traits["role"] = role
    data: dict[str, Any] = {
        "id": identity_id,
        "state": state,
        "schema_id": "default",
        "traits": traits,
        "metadata_public": None,
        "metadata_admin": metadata,
    }
    if created_at is not None:
        data["created_at"] = _stamp(created_at)
    return Identity.from_json(data)


def with_metadata_admin(identity: Identity, key: str, value: Any) -> Identity:
    """Return *identity* as Kratos would after writing *value* under metadata_admin[*key*]."""
    data = dict(identity.raw)
    metadata = dict(data["metadata_admin"] or {})
    metadata[key] = value
    data["metadata_admin"] = metadata
    return Identity.from_json(data)


def codes(decision: Decision) -> list[str]:
    """Return the finding codes of a decision, in order."""
    return [finding.code for finding in decision.findings]


def _stamp(value: datetime | str) -> str:
    return format_timestamp(value) if isinstance(value, datetime) else value
