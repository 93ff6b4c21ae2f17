"""The emulator returns Go's plain-text 404 for unknown paths and JSON for missing resources."""

from __future__ import annotations

import httpx
import pytest

from stale_tokens import HydraAdmin, KratosAdmin, NotFoundError, UnknownRouteError
from stale_tokens.testing import OryEmulator

pytestmark = pytest.mark.anyio

MISSING_ID = "00000000-0000-4000-8000-000000000404"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", f"/kratos/admin/identities/{MISSING_ID}/sessions"),
        ("GET", "/admin/nothing-here"),
        ("DELETE", "/hydra/admin/oauth2/auth/sessions/login"),
    ],
)
async def test_emulator_unknown_path_plain_404(method: str, path: str) -> None:
    """A path no route serves gets Go's plain-text 404, not a Kratos JSON error."""
    emulator = OryEmulator(api_key="ory_pat_routing")

    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ory") as client:
        response = await client.request(method, path)

    assert response.status_code == 404
    assert response.text == "404 page not found\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert sum(emulator.requests.values()) == 0


async def test_emulator_missing_identity_json_404() -> None:
    """A known route with an unknown identity id gets Kratos's JSON error body."""
    emulator = OryEmulator()

    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ory") as client:
        response = await client.delete(f"/admin/identities/{MISSING_ID}")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {"code": 404, "status": "Not Found", "message": "Unable to locate the resource"}
    }
    assert emulator.requests["delete_identity"] == 1


async def test_kratos_admin_wrong_prefix() -> None:
    """KratosAdmin under a wrong prefix raises UnknownRouteError and writes nothing."""
    emulator = OryEmulator(seed=4)
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.kratos.create_session(identity_id)

    async with KratosAdmin("http://ory/kratos", transport=emulator.transport()) as kratos:
        with pytest.raises(UnknownRouteError, match="Check base_url 'http://ory/kratos'"):
            await kratos.delete_sessions(identity_id)
        with pytest.raises(UnknownRouteError):
            await kratos.delete_identity(identity_id)

    assert len(emulator.kratos.session_ids(identity_id)) == 1
    assert sum(emulator.requests.values()) == 0
    assert not emulator.writes


async def test_kratos_admin_missing_identity() -> None:
    """Against the right base URL, an unknown identity still reads as not found."""
    emulator = OryEmulator(seed=5)

    async with KratosAdmin("http://ory", transport=emulator.transport()) as kratos:
        assert await kratos.delete_sessions(MISSING_ID) is False
        assert await kratos.delete_identity(MISSING_ID) is False
        with pytest.raises(NotFoundError) as caught:
            await kratos.get_identity(MISSING_ID)

    assert not isinstance(caught.value, UnknownRouteError)
    assert emulator.requests["delete_sessions"] == 1
    assert emulator.requests["delete_identity"] == 1


async def test_hydra_admin_wrong_prefix() -> None:
    """HydraAdmin under a wrong prefix raises UnknownRouteError and revokes nothing."""
    emulator = OryEmulator(seed=6)
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.hydra.grant_consent(identity_id)

    async with HydraAdmin("http://ory/hydra", transport=emulator.transport()) as hydra:
        with pytest.raises(UnknownRouteError, match="Check base_url 'http://ory/hydra'"):
            await hydra.revoke_consent_sessions(identity_id)

    assert sum(emulator.requests.values()) == 0
    assert emulator.hydra.consents_of(identity_id)
