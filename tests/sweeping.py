"""Helpers shared by the sweeper tests: emulated identities, recording plug-ins, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stale_tokens import AuditEvent, HydraAdmin, KratosAdmin, Notification
from stale_tokens.testing import OryEmulator

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE_URL = "http://127.0.0.1:4434"


def add_identity(
    emulator: OryEmulator,
    *,
    days_inactive: float | None,
    created_days_ago: float = 1000,
    role: str | None = None,
    metadata_admin: dict[str, Any] | None = None,
    metadata_public: Any = None,
    email: str | None = None,
) -> str:
    """Add an identity whose last recorded activity was *days_inactive* days before NOW."""
    admin = dict(metadata_admin or {})
    if days_inactive is not None:
        admin["last_activity_at"] = (NOW - timedelta(days=days_inactive)).isoformat()
    traits: dict[str, Any] = {"email": email or "someone@example.org"}
    if role is not None:
        traits["role"] = role
    created = emulator.kratos.add_identity(
        traits=traits,
        metadata_admin=admin or None,
        metadata_public=metadata_public,
        created_at=NOW - timedelta(days=created_days_ago),
    )
    identity_id: str = created["id"]
    return identity_id


def metadata_admin(emulator: OryEmulator, identity_id: str) -> Any:
    """Return the identity's ``metadata_admin`` as the admin API would."""
    return emulator.kratos.identity_json(identity_id)["metadata_admin"]


@dataclass
class RecordingNotifier:
    """A notifier that keeps every notification and raises for the ids in ``failing_ids``."""

    sent: list[Notification] = field(default_factory=list)
    failing_ids: set[str] = field(default_factory=set)

    async def notify(self, notification: Notification) -> None:
        if notification.identity_id in self.failing_ids:
            raise ConnectionError("mail server unavailable")
        self.sent.append(notification)


@dataclass
class RecordingAuditSink:
    """An audit sink that keeps every event."""

    events: list[AuditEvent] = field(default_factory=list)

    async def emit(self, event: AuditEvent) -> None:
        self.events.append(event)

    def of_type(self, event_type: str) -> list[AuditEvent]:
        return [event for event in self.events if event.type == event_type]


@asynccontextmanager
async def clients(
    emulator: OryEmulator, **options: Any
) -> AsyncIterator[tuple[KratosAdmin, HydraAdmin]]:
    """Open Kratos and Hydra clients on the emulator's in-process transport."""
    transport = emulator.transport()
    async with (
        KratosAdmin(BASE_URL, transport=transport, **options) as kratos,
        HydraAdmin(BASE_URL, transport=transport) as hydra,
    ):
        yield kratos, hydra
