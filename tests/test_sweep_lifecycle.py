"""The ladder steps of `sweep()`: suspend, re-engage, deactivate, delete, and `reactivate()`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Literal

import httpx
import pytest
import stamina

from stale_tokens import (
    Identity,
    Ladder,
    Policy,
    is_session_suspended,
    reactivate,
    read_markers,
    sweep,
)
from stale_tokens._suspend import SUSPENDED_AT_KEY
from stale_tokens.testing import OryEmulator
from sweeping import (
    BASE_URL,
    NOW,
    RecordingAuditSink,
    RecordingNotifier,
    add_identity,
    clients,
)

LADDER = Policy(ladder=Ladder())
LADDER_WITH_DELETION = Policy(ladder=Ladder(delete_enabled=True))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _retry_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=4):
        yield


@pytest.fixture
def emulator() -> OryEmulator:
    return OryEmulator(seed=5, clock=lambda: NOW)


async def _whoami(emulator: OryEmulator, token: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=emulator.transport(), base_url=BASE_URL) as client:
        return await client.get("/sessions/whoami", headers={"X-Session-Token": token})


def _identity(emulator: OryEmulator, identity_id: str) -> Identity:
    return Identity.from_json(emulator.kratos.identity_json(identity_id))


async def _sweep(emulator: OryEmulator, policy: Policy, **options: Any) -> Any:
    async with clients(emulator) as (kratos, hydra):
        return await sweep(
            kratos=kratos, hydra=hydra, policy=policy, circuit_breaker=None, **options
        )


@pytest.mark.anyio
async def test_suspend_marks_old_sessions(emulator: OryEmulator) -> None:
    """A suspended identity's old session is suspended and a fresh sign-in is not."""
    identity_id = add_identity(emulator, days_inactive=61, metadata_public={"plan": "pro"})
    old = emulator.kratos.create_session(
        identity_id, authenticated_at=NOW - timedelta(days=61), expires_at=NOW + timedelta(days=30)
    )
    audit = RecordingAuditSink()

    report = await _sweep(emulator, LADDER, now=NOW, audit=audit)
    fresh = emulator.kratos.create_session(identity_id, authenticated_at=NOW + timedelta(hours=1))
    old_whoami = await _whoami(emulator, old.token)
    fresh_whoami = await _whoami(emulator, fresh.token)

    assert report.done == {"suspend": 1}
    assert old_whoami.status_code == 200
    assert "metadata_admin" not in old_whoami.json()["identity"]
    assert is_session_suspended(old_whoami.json())
    assert not is_session_suspended(fresh_whoami.json())
    metadata_public = emulator.kratos.identity_json(identity_id)["metadata_public"]
    assert metadata_public == {"plan": "pro", SUSPENDED_AT_KEY: "2026-06-01T12:00:00.000000Z"}
    assert [event.type for event in audit.events] == ["identity_suspended_stale"]


@pytest.mark.anyio
async def test_suspend_with_null_metadata_public(emulator: OryEmulator) -> None:
    """The marker is written when metadata_public was null."""
    identity_id = add_identity(emulator, days_inactive=61)

    await _sweep(emulator, LADDER, now=NOW)

    metadata_public = emulator.kratos.identity_json(identity_id)["metadata_public"]
    assert metadata_public == {SUSPENDED_AT_KEY: "2026-06-01T12:00:00.000000Z"}


@pytest.mark.anyio
async def test_suspend_rejects_string_metadata_public(emulator: OryEmulator) -> None:
    """A metadata_public that cannot hold a key fails that identity, untouched."""
    identity_id = add_identity(emulator, days_inactive=61, metadata_public="legacy")

    report = await _sweep(emulator, LADDER, now=NOW)

    assert [failure.identity_id for failure in report.failures] == [identity_id]
    assert "metadata_public" in report.failures[0].error
    assert emulator.kratos.identity_json(identity_id)["metadata_public"] == "legacy"
    assert not read_markers(_identity(emulator, identity_id)).steps


@pytest.mark.anyio
async def test_suspension_cleared_after_return(emulator: OryEmulator) -> None:
    """When the user is active again, the next sweep removes the suspension marker."""
    identity_id = add_identity(emulator, days_inactive=61)
    await _sweep(emulator, LADDER, now=NOW)
    async with clients(emulator) as (kratos, _):
        await kratos.set_metadata_admin(
            identity_id, {"last_activity_at": (NOW + timedelta(days=1)).isoformat()}
        )
    audit = RecordingAuditSink()

    report = await _sweep(emulator, LADDER, now=NOW + timedelta(days=2), audit=audit)

    assert report.suspensions_cleared == 1
    assert report.done == {}
    assert emulator.kratos.identity_json(identity_id)["metadata_public"] == {}
    assert [event.type for event in audit.events] == ["identity_suspension_cleared"]


@pytest.mark.anyio
async def test_re_engage_sends_message(emulator: OryEmulator) -> None:
    """At 180 days the re-engagement message goes out once, after the revocation."""
    identity_id = add_identity(emulator, days_inactive=181)
    notifier = RecordingNotifier()

    first = await _sweep(emulator, LADDER, now=NOW, notifier=notifier)
    second = await _sweep(emulator, LADDER, now=NOW + timedelta(days=1), notifier=notifier)

    assert first.done == {"re_engage": 1, "revoke": 1}
    assert second.done == {}
    assert [(n.identity_id, n.step) for n in notifier.sent] == [(identity_id, "re_engage")]
    assert notifier.sent[0].next_step == "deactivate"


@pytest.mark.anyio
async def test_deactivate_revokes_sessions(emulator: OryEmulator) -> None:
    """Deactivation sets the state inactive, deletes sessions, and whoami returns 401."""
    identity_id = add_identity(emulator, days_inactive=366)
    session = emulator.kratos.create_session(
        identity_id, authenticated_at=NOW - timedelta(days=366), expires_at=NOW + timedelta(days=9)
    )
    consent = emulator.hydra.grant_consent(identity_id)
    audit = RecordingAuditSink()

    report = await _sweep(emulator, LADDER, now=NOW, audit=audit)
    whoami = await _whoami(emulator, session.token)

    assert report.done == {"deactivate": 1, "revoke": 1}
    assert emulator.kratos.identity_json(identity_id)["state"] == "inactive"
    assert emulator.kratos.session_ids(identity_id) == []
    assert whoami.status_code == 401
    assert not emulator.hydra.is_token_active(consent.refresh_token)
    assert {event.type for event in audit.events} == {
        "identity_deactivated_stale",
        "tokens_revoked_stale",
    }


@pytest.mark.anyio
async def test_deactivate_failure_keeps_revocation(emulator: OryEmulator) -> None:
    """When deactivation fails after the revocation, only the revocation is recorded."""
    identity_id = add_identity(emulator, days_inactive=366)
    emulator.kratos.create_session(identity_id, authenticated_at=NOW - timedelta(days=366))
    async with clients(emulator) as (kratos, hydra):

        async def failing_set_state(
            identity_id: str, state: Literal["active", "inactive"]
        ) -> Identity:
            raise ConnectionError(f"cannot set {identity_id} to {state}")

        kratos.set_state = failing_set_state  # type: ignore[method-assign]
        first = await sweep(
            kratos=kratos, hydra=hydra, policy=LADDER, now=NOW, circuit_breaker=None
        )

    second = await _sweep(emulator, LADDER, now=NOW)

    assert first.done == {"revoke": 1}
    assert [failure.step for failure in first.failures] == ["deactivate"]
    assert Identity.from_json(emulator.kratos.identity_json(identity_id)).state == "inactive"
    assert second.done == {"deactivate": 1}
    assert second.due == {"deactivate": 1}


@pytest.mark.anyio
async def test_delete_after_notice_period(emulator: OryEmulator) -> None:
    """Deletion comes only after the notice was recorded long enough ago."""
    identity_id = add_identity(emulator, days_inactive=731)
    consent = emulator.hydra.grant_consent(identity_id)
    notifier = RecordingNotifier()

    noticed = await _sweep(emulator, LADDER_WITH_DELETION, now=NOW, notifier=notifier)
    too_early = await _sweep(
        emulator, LADDER_WITH_DELETION, now=NOW + timedelta(days=10), notifier=notifier
    )
    deleted = await _sweep(
        emulator, LADDER_WITH_DELETION, now=NOW + timedelta(days=31), notifier=notifier
    )

    assert noticed.done == {"delete_notice": 1, "revoke": 1}
    assert too_early.done == {}
    assert deleted.done == {"delete": 1}
    assert [n.step for n in notifier.sent] == ["delete_notice"]
    assert emulator.requests["delete_identity"] == 1
    assert identity_id not in emulator.kratos.all_ids()
    assert not emulator.hydra.is_token_active(consent.access_token)


@pytest.mark.anyio
async def test_delete_disabled_by_default(emulator: OryEmulator) -> None:
    """Without delete_enabled an identity idle for years is deactivated, never deleted."""
    identity_id = add_identity(emulator, days_inactive=3000)

    await _sweep(emulator, LADDER, now=NOW)
    await _sweep(emulator, LADDER, now=NOW + timedelta(days=400))

    assert emulator.requests["delete_identity"] == 0
    assert identity_id in emulator.kratos.all_ids()


@pytest.mark.anyio
async def test_reactivate_restores_identity(emulator: OryEmulator) -> None:
    """Reactivation sets the state active, clears the suspension and emits an event."""
    identity_id = add_identity(emulator, days_inactive=366, metadata_public={"plan": "pro"})
    await _sweep(emulator, LADDER, now=NOW - timedelta(days=300))
    await _sweep(emulator, LADDER, now=NOW)
    assert emulator.kratos.identity_json(identity_id)["state"] == "inactive"
    audit = RecordingAuditSink()

    async with clients(emulator) as (kratos, _):
        await reactivate(kratos, identity_id, audit=audit, now=NOW)

    assert emulator.kratos.identity_json(identity_id)["state"] == "active"
    assert emulator.kratos.identity_json(identity_id)["metadata_public"] == {"plan": "pro"}
    (event,) = audit.events
    assert event.type == "identity_reactivated"
    assert event.details["suspension_cleared"] is True


@pytest.mark.anyio
async def test_reactivate_without_suspension(emulator: OryEmulator) -> None:
    """Reactivating an identity that was never suspended only changes its state."""
    identity_id = add_identity(emulator, days_inactive=1)
    async with clients(emulator) as (kratos, _):
        await kratos.set_state(identity_id, "inactive")
        emulator.reset_counters()
        await reactivate(kratos, identity_id, now=NOW)

    assert emulator.requests["patch_identity"] == 1
    assert emulator.kratos.identity_json(identity_id)["state"] == "active"
