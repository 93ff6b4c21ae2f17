"""The emulator's Hydra admin endpoints behave like Hydra v26."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emulator_helpers import MutableClock, open_client
from stale_tokens.testing import OryEmulator

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONSENT_PATH = "/admin/oauth2/auth/sessions/consent"
LOGIN_PATH = "/admin/oauth2/auth/sessions/login"
INVALID_COMBINATION = (
    "The request is missing a required parameter, includes an invalid parameter value, "
    "includes a parameter more than once, or is otherwise malformed. "
    "Invalid combination of query parameters."
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(START)


@pytest.fixture
def emulator(clock: MutableClock) -> OryEmulator:
    return OryEmulator(seed=5, clock=clock)


@pytest.fixture
async def client(emulator: OryEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(emulator) as client:
        yield client


@pytest.mark.anyio
async def test_revoke_all_consents_invalidates_tokens(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """subject with all=true revokes every consent and its access and refresh tokens."""
    first = emulator.hydra.grant_consent("alice", client_id="app-1")
    second = emulator.hydra.grant_consent("alice", client_id="app-2")
    other = emulator.hydra.grant_consent("bob")

    response = await client.delete(CONSENT_PATH, params={"subject": "alice", "all": "true"})

    assert response.status_code == 204
    assert response.content == b""
    for token in (first.access_token, first.refresh_token, second.access_token):
        assert emulator.hydra.is_token_active(token) is False
    assert emulator.hydra.is_token_active(other.access_token) is True
    assert emulator.hydra.consents_of("alice") == []
    assert emulator.requests["revoke_consent_sessions"] == 1


@pytest.mark.anyio
async def test_revoke_consent_for_one_client(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """subject with client revokes only that client's consent."""
    kept = emulator.hydra.grant_consent("alice", client_id="app-1")
    revoked = emulator.hydra.grant_consent("alice", client_id="app-2")

    response = await client.delete(CONSENT_PATH, params={"subject": "alice", "client": "app-2"})

    assert response.status_code == 204
    assert emulator.hydra.is_token_active(kept.access_token) is True
    assert emulator.hydra.is_token_active(revoked.access_token) is False


@pytest.mark.anyio
async def test_revoke_consent_by_request_id(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """consent_request_id alone revokes that one token chain."""
    kept = emulator.hydra.grant_consent("alice")
    revoked = emulator.hydra.grant_consent("alice")

    response = await client.delete(
        CONSENT_PATH, params={"consent_request_id": revoked.consent_request_id}
    )

    assert response.status_code == 204
    assert emulator.hydra.is_token_active(kept.refresh_token) is True
    assert emulator.hydra.is_token_active(revoked.refresh_token) is False


@pytest.mark.anyio
async def test_revoke_consent_unmatched_is_204(client: httpx.AsyncClient) -> None:
    """A valid combination that matches nothing still returns 204."""
    response = await client.delete(CONSENT_PATH, params={"subject": "nobody", "all": "true"})

    assert response.status_code == 204


@pytest.mark.anyio
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"subject": "alice"},
        {"subject": "alice", "all": "True"},
        {"subject": "alice", "client": "app", "all": "true"},
        {"consent_request_id": "c1", "subject": "alice"},
        {"all": "true"},
        {"client": "app"},
    ],
)
async def test_revoke_consent_rejects_other_combinations(
    client: httpx.AsyncClient, emulator: OryEmulator, params: dict[str, str]
) -> None:
    """Every other parameter combination is a 400 invalid_request, and nothing is revoked."""
    consent = emulator.hydra.grant_consent("alice", client_id="app")

    response = await client.delete(CONSENT_PATH, params=params)

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": INVALID_COMBINATION,
    }
    assert emulator.hydra.is_token_active(consent.access_token) is True


@pytest.mark.anyio
async def test_revoke_login_sessions_by_subject(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """subject deletes that subject's login sessions and leaves tokens alone."""
    emulator.hydra.create_login_session("alice")
    kept = emulator.hydra.create_login_session("bob")
    consent = emulator.hydra.grant_consent("alice")

    response = await client.delete(LOGIN_PATH, params={"subject": "alice"})

    assert response.status_code == 204
    assert emulator.hydra.login_session_ids("alice") == []
    assert emulator.hydra.login_session_ids("bob") == [kept]
    assert emulator.hydra.is_token_active(consent.access_token) is True


@pytest.mark.anyio
async def test_revoke_login_sessions_sid_wins(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """With both sid and subject, only the sid's session is deleted."""
    first = emulator.hydra.create_login_session("alice")
    second = emulator.hydra.create_login_session("alice")

    response = await client.delete(LOGIN_PATH, params={"sid": first, "subject": "alice"})

    assert response.status_code == 204
    assert emulator.hydra.login_session_ids("alice") == [second]


@pytest.mark.anyio
async def test_revoke_login_sessions_unknown_is_204(client: httpx.AsyncClient) -> None:
    """Unknown subjects and sids still return 204."""
    by_subject = await client.delete(LOGIN_PATH, params={"subject": "nobody"})
    by_sid = await client.delete(LOGIN_PATH, params={"sid": "missing"})

    assert by_subject.status_code == 204
    assert by_sid.status_code == 204


@pytest.mark.anyio
async def test_revoke_login_sessions_without_parameters_is_400(client: httpx.AsyncClient) -> None:
    """Neither subject nor sid is a 400 invalid_request."""
    response = await client.delete(LOGIN_PATH)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"].endswith(
        "Either 'subject' or 'sid' query parameters need to be defined."
    )


@pytest.mark.anyio
async def test_introspect_active_and_revoked(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """Introspection reports an issued token as active and a revoked one as inactive."""
    consent = emulator.hydra.grant_consent("alice", client_id="app")

    before = await client.post("/admin/oauth2/introspect", data={"token": consent.access_token})
    await client.delete(CONSENT_PATH, params={"subject": "alice", "all": "true"})
    after = await client.post("/admin/oauth2/introspect", data={"token": consent.access_token})

    assert before.json()["active"] is True
    assert before.json()["sub"] == "alice"
    assert before.json()["client_id"] == "app"
    assert before.json()["token_type"] == "Bearer"
    assert after.json() == {"active": False}
    assert emulator.requests["introspect"] == 2


@pytest.mark.anyio
async def test_introspect_expired_access_token(
    client: httpx.AsyncClient, emulator: OryEmulator, clock: MutableClock
) -> None:
    """An access token past its one-hour lifespan is inactive; its refresh token is not."""
    consent = emulator.hydra.grant_consent("alice")
    clock.now = START + timedelta(hours=2)

    access = await client.post("/admin/oauth2/introspect", data={"token": consent.access_token})
    refresh = await client.post("/admin/oauth2/introspect", data={"token": consent.refresh_token})

    assert access.json() == {"active": False}
    assert refresh.json()["active"] is True
    assert refresh.json()["token_use"] == "refresh_token"


@pytest.mark.anyio
async def test_introspect_without_token_is_400(client: httpx.AsyncClient) -> None:
    """A form without token is a 400 invalid_request."""
    response = await client.post("/admin/oauth2/introspect", data={})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
