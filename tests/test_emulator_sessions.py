"""The emulator's Kratos session endpoints and whoami behave like Kratos v26."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emulator_helpers import MutableClock, open_client
from stale_tokens.testing import SESSION_COOKIE, OryEmulator

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UNKNOWN_ID = "11111111-1111-4111-8111-111111111111"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(START)


@pytest.fixture
def emulator(clock: MutableClock) -> OryEmulator:
    return OryEmulator(seed=11, clock=clock)


@pytest.fixture
async def client(emulator: OryEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(emulator) as client:
        yield client


async def deactivate(client: httpx.AsyncClient, identity_id: str, state: str) -> None:
    response = await client.patch(
        f"/admin/identities/{identity_id}",
        json=[{"op": "replace", "path": "/state", "value": state}],
    )
    assert response.status_code == 200


@pytest.mark.anyio
async def test_list_sessions_newest_first(
    client: httpx.AsyncClient, emulator: OryEmulator, clock: MutableClock
) -> None:
    """Sessions are listed newest first with X-Total-Count and the identity embedded."""
    identity_id = emulator.kratos.add_identity(metadata_admin={"secret": 1})["id"]
    older = emulator.kratos.create_session(identity_id)
    clock.now = START + timedelta(minutes=1)
    newer = emulator.kratos.create_session(identity_id)

    response = await client.get(f"/admin/identities/{identity_id}/sessions")

    body = response.json()
    assert response.status_code == 200
    assert [session["id"] for session in body] == [newer.id, older.id]
    assert response.headers["x-total-count"] == "2"
    assert body[0]["identity"]["id"] == identity_id
    assert "metadata_admin" not in body[0]["identity"]
    assert body[0]["active"] is True
    assert body[0]["authentication_methods"][0]["method"] == "password"
    assert emulator.requests["list_sessions"] == 1


@pytest.mark.anyio
async def test_list_sessions_unknown_identity_is_empty(client: httpx.AsyncClient) -> None:
    """An unknown identity has an empty session list, not a 404."""
    response = await client.get(f"/admin/identities/{UNKNOWN_ID}/sessions")

    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.anyio
async def test_list_sessions_malformed_id_is_400(client: httpx.AsyncClient) -> None:
    """A malformed identity id is a 400."""
    response = await client.get("/admin/identities/nope/sessions")

    assert response.status_code == 400


@pytest.mark.anyio
async def test_list_sessions_active_filter_and_validation(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """active=true keeps stored-active sessions, and a non-boolean active is a 400."""
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.kratos.create_session(identity_id)

    active = await client.get(
        f"/admin/identities/{identity_id}/sessions", params={"active": "true"}
    )
    inactive = await client.get(
        f"/admin/identities/{identity_id}/sessions", params={"active": "false"}
    )
    invalid = await client.get(
        f"/admin/identities/{identity_id}/sessions", params={"active": "maybe"}
    )

    assert len(active.json()) == 1
    assert inactive.json() == []
    assert invalid.status_code == 400


@pytest.mark.anyio
async def test_list_sessions_expired_shows_inactive(
    client: httpx.AsyncClient, emulator: OryEmulator, clock: MutableClock
) -> None:
    """A session past expires_at is still listed, rendered with active false."""
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.kratos.create_session(identity_id, expires_at=START + timedelta(hours=1))
    clock.now = START + timedelta(hours=2)

    response = await client.get(f"/admin/identities/{identity_id}/sessions")

    assert response.json()[0]["active"] is False


@pytest.mark.anyio
async def test_delete_sessions_then_404(client: httpx.AsyncClient, emulator: OryEmulator) -> None:
    """DELETE returns 204 while sessions exist, then 404 once none are left."""
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.kratos.create_session(identity_id)
    emulator.kratos.create_session(identity_id)

    first = await client.delete(f"/admin/identities/{identity_id}/sessions")
    second = await client.delete(f"/admin/identities/{identity_id}/sessions")

    assert first.status_code == 204
    assert second.status_code == 404
    assert emulator.kratos.session_ids(identity_id) == []
    assert emulator.requests["delete_sessions"] == 2
    assert emulator.writes[identity_id] == 1


@pytest.mark.anyio
async def test_delete_sessions_without_sessions_is_404(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """An existing identity without sessions and an unknown identity both return 404."""
    identity_id = emulator.kratos.add_identity()["id"]

    existing = await client.delete(f"/admin/identities/{identity_id}/sessions")
    unknown = await client.delete(f"/admin/identities/{UNKNOWN_ID}/sessions")

    assert existing.status_code == 404
    assert unknown.status_code == 404
    assert emulator.writes[identity_id] == 0


@pytest.mark.anyio
async def test_delete_sessions_malformed_id_is_400(client: httpx.AsyncClient) -> None:
    """A malformed identity id is a 400 on session deletion."""
    response = await client.delete("/admin/identities/nope/sessions")

    assert response.status_code == 400


@pytest.mark.anyio
@pytest.mark.parametrize("carrier", ["token", "cookie", "bearer"])
async def test_whoami_accepts_each_credential(
    client: httpx.AsyncClient, emulator: OryEmulator, carrier: str
) -> None:
    """whoami finds the session by token header, cookie or bearer token."""
    identity_id = emulator.kratos.add_identity(
        metadata_admin={"secret": 1}, metadata_public={"plan": "pro"}
    )["id"]
    session = emulator.kratos.create_session(identity_id)
    headers = {
        "token": {"X-Session-Token": session.token},
        "cookie": {"Cookie": f"{SESSION_COOKIE}={session.cookie}"},
        "bearer": {"Authorization": f"Bearer {session.token}"},
    }[carrier]

    response = await client.get("/sessions/whoami", headers=headers)

    body = response.json()
    assert response.status_code == 200
    assert response.headers["x-kratos-authenticated-identity-id"] == identity_id
    assert body["id"] == session.id
    assert body["identity"]["metadata_public"] == {"plan": "pro"}
    assert "metadata_admin" not in body["identity"]
    assert "credentials" not in body["identity"]
    assert emulator.requests["whoami"] == 1


@pytest.mark.anyio
async def test_whoami_accepts_any_method(client: httpx.AsyncClient, emulator: OryEmulator) -> None:
    """whoami handles POST like GET."""
    session = emulator.kratos.create_session(emulator.kratos.add_identity()["id"])

    response = await client.post("/sessions/whoami", headers={"X-Session-Token": session.token})

    assert response.status_code == 200


@pytest.mark.anyio
async def test_whoami_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    """A request without a session returns 401 with Kratos's body."""
    response = await client.get("/sessions/whoami")

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": 401,
            "status": "Unauthorized",
            "reason": "No valid session credentials found in the request.",
            "message": "The request could not be authorized",
        }
    }


@pytest.mark.anyio
async def test_whoami_invalid_token_does_not_fall_back(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """An invalid X-Session-Token is a 401 even when a valid cookie is sent too."""
    session = emulator.kratos.create_session(emulator.kratos.add_identity()["id"])

    response = await client.get(
        "/sessions/whoami",
        headers={"X-Session-Token": "stale", "Cookie": f"{SESSION_COOKIE}={session.cookie}"},
    )

    assert response.status_code == 401


@pytest.mark.anyio
async def test_whoami_expired_session_is_401(
    client: httpx.AsyncClient, emulator: OryEmulator, clock: MutableClock
) -> None:
    """A session past its expiry returns 401."""
    session = emulator.kratos.create_session(emulator.kratos.add_identity()["id"])
    clock.now = session.expires_at

    response = await client.get("/sessions/whoami", headers={"X-Session-Token": session.token})

    assert response.status_code == 401


@pytest.mark.anyio
async def test_deactivation_keeps_sessions_and_reactivation_revives(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """Deactivating keeps sessions but whoami returns 401 until reactivation."""
    identity_id = emulator.kratos.add_identity()["id"]
    session = emulator.kratos.create_session(identity_id)
    headers = {"X-Session-Token": session.token}

    await deactivate(client, identity_id, "inactive")
    while_inactive = await client.get("/sessions/whoami", headers=headers)
    listed = await client.get(f"/admin/identities/{identity_id}/sessions")
    await deactivate(client, identity_id, "active")
    after = await client.get("/sessions/whoami", headers=headers)

    assert while_inactive.status_code == 401
    assert [s["id"] for s in listed.json()] == [session.id]
    assert listed.json()[0]["active"] is False
    assert after.status_code == 200


@pytest.mark.anyio
async def test_revoked_session_is_401(client: httpx.AsyncClient, emulator: OryEmulator) -> None:
    """After DELETE of an identity's sessions its token returns 401."""
    identity_id = emulator.kratos.add_identity()["id"]
    session = emulator.kratos.create_session(identity_id)

    await client.delete(f"/admin/identities/{identity_id}/sessions")
    response = await client.get("/sessions/whoami", headers={"X-Session-Token": session.token})

    assert response.status_code == 401


def test_create_session_for_unknown_identity_raises(emulator: OryEmulator) -> None:
    """create_session raises KeyError for an identity that does not exist."""
    with pytest.raises(KeyError):
        emulator.kratos.create_session(UNKNOWN_ID)


@pytest.mark.anyio
async def test_list_sessions_pages_by_offset_token(
    client: httpx.AsyncClient, emulator: OryEmulator, clock: MutableClock
) -> None:
    """The session listing pages by offset and links the next page with a page token."""
    identity_id = emulator.kratos.add_identity()["id"]
    for minute in range(3):
        clock.now = START + timedelta(minutes=minute)
        emulator.kratos.create_session(identity_id)
    newest_first = emulator.kratos.session_ids(identity_id)

    first = await client.get(f"/admin/identities/{identity_id}/sessions", params={"per_page": 2})
    next_url = first.headers["link"].split(";")[0].strip("<>")
    second = await client.get(next_url)

    assert [s["id"] for s in first.json()] == newest_first[:2]
    assert first.headers["x-total-count"] == "3"
    assert [s["id"] for s in second.json()] == newest_first[2:]
    assert "link" not in second.headers
