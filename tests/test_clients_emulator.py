"""KratosAdmin and HydraAdmin against the in-process Ory emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina

from stale_tokens import (
    HydraAdmin,
    KratosAdmin,
    PaginationError,
    RateLimitedError,
    UnauthorizedError,
)
from stale_tokens.testing import Fault, OryEmulator

BASE = "http://127.0.0.1:4434"
API_KEY = "ory_pat_emulated"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.mark.parametrize("kratos_version", ["v26.2.0", "v1.1.0", "v0.13.0"])
async def test_iter_identities_reads_every_identity(kratos_version: str) -> None:
    """Every identity is listed once, across pages, on each Kratos release's pagination."""
    # Kratos < 1.1 writes absolute next links, so the emulator must name the client's URL.
    emulator = OryEmulator(kratos_version=kratos_version, public_url=BASE)
    expected = {emulator.kratos.add_identity()["id"] for _ in range(23)}

    async with KratosAdmin(BASE, transport=emulator.transport(), page_size=5) as kratos:
        listed = [identity.id async for identity in kratos.iter_identities()]

    assert sorted(listed) == sorted(expected)
    assert emulator.requests["list_identities"] == 5


async def test_iter_identities_rejects_absolute_link_elsewhere() -> None:
    """Kratos 0.13 links built from another base URL stop the listing before the key leaks."""
    emulator = OryEmulator(kratos_version="v0.13.0", public_url="http://127.0.0.1:4433")
    for _ in range(3):
        emulator.kratos.add_identity()

    async with KratosAdmin(BASE, transport=emulator.transport(), page_size=2) as kratos:
        with pytest.raises(PaginationError, match=r"127\.0\.0\.1:4433"):
            [identity.id async for identity in kratos.iter_identities()]

    assert emulator.requests["list_identities"] == 1


@pytest.mark.parametrize(("kratos_version", "patches"), [("v26.2.0", 2), ("v0.13.0", 4)])
async def test_set_metadata_admin_keeps_other_keys(kratos_version: str, patches: int) -> None:
    """Nested keys land beside existing keys; Kratos 0.13 needs a second PATCH for the parents."""
    emulator = OryEmulator(kratos_version=kratos_version)
    blank = emulator.kratos.add_identity()["id"]
    tagged = emulator.kratos.add_identity(metadata_admin={"account_type": "service", "x": {}})["id"]
    values: dict[str | tuple[str, ...], str] = {
        "last_activity_at": "2026-03-01T00:00:00Z",
        ("stale_tokens", "warn"): "e1",
    }

    async with KratosAdmin(BASE, transport=emulator.transport()) as kratos:
        await kratos.set_metadata_admin(blank, values)
        await kratos.set_metadata_admin(tagged, values)

    assert emulator.kratos.identity_json(blank)["metadata_admin"] == {
        "last_activity_at": "2026-03-01T00:00:00Z",
        "stale_tokens": {"warn": "e1"},
    }
    assert emulator.kratos.identity_json(tagged)["metadata_admin"] == {
        "account_type": "service",
        "x": {},
        "last_activity_at": "2026-03-01T00:00:00Z",
        "stale_tokens": {"warn": "e1"},
    }
    assert emulator.requests["patch_identity"] == patches


async def test_remove_metadata_admin_tolerates_missing_keys() -> None:
    """Present keys are removed and missing ones ignored, in one write."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity(metadata_admin={"a": 1, "b": {"c": 2, "d": 3}})["id"]

    async with KratosAdmin(BASE, transport=emulator.transport()) as kratos:
        await kratos.remove_metadata_admin(identity_id, ["a", ("b", "c"), "missing"])

    assert emulator.kratos.identity_json(identity_id)["metadata_admin"] == {"b": {"d": 3}}
    assert emulator.writes[identity_id] == 1


async def test_delete_sessions_then_none_left() -> None:
    """Deleting sessions returns True once and False when none are left."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.kratos.create_session(identity_id)
    emulator.kratos.create_session(identity_id)

    async with KratosAdmin(BASE, transport=emulator.transport()) as kratos:
        listed = await kratos.list_sessions(identity_id, active=True)
        first = await kratos.delete_sessions(identity_id)
        second = await kratos.delete_sessions(identity_id)
        remaining = await kratos.list_sessions(identity_id)

    assert len(listed) == 2
    assert first is True
    assert second is False
    assert remaining == []


async def test_set_state_and_delete_identity() -> None:
    """An identity can be deactivated and then deleted, after which delete returns False."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity()["id"]

    async with KratosAdmin(BASE, transport=emulator.transport()) as kratos:
        deactivated = await kratos.set_state(identity_id, "inactive")
        deleted = await kratos.delete_identity(identity_id)
        deleted_again = await kratos.delete_identity(identity_id)

    assert deactivated.state == "inactive"
    assert deleted is True
    assert deleted_again is False


async def test_hydra_revocation_invalidates_tokens() -> None:
    """Revoking consent sessions makes the subject's tokens inactive."""
    emulator = OryEmulator(api_key=API_KEY)
    consent = emulator.hydra.grant_consent("subject-1")
    other = emulator.hydra.grant_consent("subject-2")
    emulator.hydra.create_login_session("subject-1")

    async with HydraAdmin(BASE, api_key=API_KEY, transport=emulator.transport()) as hydra:
        await hydra.revoke_consent_sessions("subject-1")
        await hydra.revoke_login_sessions("subject-1")

    assert not emulator.hydra.is_token_active(consent.access_token)
    assert not emulator.hydra.is_token_active(consent.refresh_token)
    assert emulator.hydra.is_token_active(other.access_token)
    assert emulator.requests["revoke_consent_sessions"] == 1
    assert emulator.requests["revoke_login_sessions"] == 1


async def test_kratos_admin_retries_emulated_faults() -> None:
    """Injected 429s, 503s and a dropped connection are retried until the read succeeds."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.add_fault(Fault("get_identity", status=429, rate_limit_reset=2, times=1))
    emulator.add_fault(Fault("get_identity", status=503, times=1))
    emulator.add_fault(Fault("get_identity", drop=True, times=1))

    async with KratosAdmin(BASE, transport=emulator.transport()) as kratos:
        identity = await kratos.get_identity(identity_id)

    assert identity.id == identity_id
    assert emulator.requests["get_identity"] == 4


async def test_kratos_admin_gives_up_on_persistent_429() -> None:
    """A 429 on every attempt raises RateLimitedError carrying x-ratelimit-reset."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.add_fault(Fault("get_identity", status=429, rate_limit_reset=7))

    async with KratosAdmin(BASE, transport=emulator.transport(), max_attempts=2) as kratos:
        with pytest.raises(RateLimitedError) as caught:
            await kratos.get_identity(identity_id)

    assert caught.value.retry_after == 7.0
    assert emulator.requests["get_identity"] == 2


async def test_kratos_admin_rejected_without_api_key() -> None:
    """An emulator that requires an API key rejects a client without one with 401."""
    emulator = OryEmulator(api_key=API_KEY)

    async with KratosAdmin(BASE, transport=emulator.transport()) as kratos:
        with pytest.raises(UnauthorizedError) as caught:
            await kratos.get_identity("00000000-0000-4000-8000-000000000001")

    assert caught.value.status_code == 401
