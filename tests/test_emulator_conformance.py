"""The official Ory Python clients work against the served emulator.

The clients are synchronous (urllib3), so each call runs in a worker thread
while uvicorn serves the emulator on loopback.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import pytest
from ory_hydra_client.api.o_auth2_api import OAuth2Api
from ory_hydra_client.api_client import ApiClient as HydraApiClient
from ory_hydra_client.configuration import Configuration as HydraConfiguration
from ory_kratos_client.api.identity_api import IdentityApi
from ory_kratos_client.api_client import ApiClient as KratosApiClient
from ory_kratos_client.configuration import Configuration as KratosConfiguration
from ory_kratos_client.exceptions import NotFoundException
from ory_kratos_client.models.json_patch import JsonPatch

from stale_tokens.testing import OryEmulator

API_KEY = "ory_pat_conformance"
_NEXT_TOKEN = re.compile(r'page_token=([^&>]+)[^,]*rel="next"')
T = TypeVar("T")


@dataclass
class Clients:
    """The official clients, configured for Ory Network's bearer API key."""

    identities: Any
    oauth2: Any


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emulator() -> OryEmulator:
    return OryEmulator(seed=21, api_key=API_KEY)


@pytest.fixture
async def clients(emulator: OryEmulator) -> AsyncIterator[Clients]:
    async with emulator.serve() as base_url:
        # The Kratos spec names the scheme oryAccessToken (an apiKey), so the
        # key goes through api_key, not access_token.
        kratos_configuration = KratosConfiguration(
            host=base_url,
            api_key={"oryAccessToken": API_KEY},
            api_key_prefix={"oryAccessToken": "Bearer"},
        )
        kratos = KratosApiClient(kratos_configuration)
        # Hydra's admin operations declare no security, so the header is set by hand.
        hydra = HydraApiClient(
            HydraConfiguration(host=base_url),
            header_name="Authorization",
            header_value=f"Bearer {API_KEY}",
        )
        try:
            yield Clients(
                identities=IdentityApi(kratos),
                oauth2=OAuth2Api(hydra),
            )
        finally:
            kratos.rest_client.pool_manager.clear()
            hydra.rest_client.pool_manager.clear()


async def in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(lambda: call(*args, **kwargs))


@pytest.mark.anyio
async def test_kratos_client_paginates_by_link(clients: Clients, emulator: OryEmulator) -> None:
    """list_identities_with_http_info plus the Link header's page_token reaches every identity."""
    expected = sorted(emulator.kratos.add_identity(traits={"n": n})["id"] for n in range(5))
    seen: list[str] = []
    token: str | None = None

    while True:
        response = await in_thread(
            clients.identities.list_identities_with_http_info, page_size=2, page_token=token
        )
        seen.extend(identity.id for identity in response.data)
        match = _NEXT_TOKEN.search(response.headers["Link"])
        if match is None:
            break
        token = match[1]

    assert seen == expected
    assert emulator.requests["list_identities"] == 3


@pytest.mark.anyio
async def test_kratos_client_gets_and_patches(clients: Clients, emulator: OryEmulator) -> None:
    """get_identity parses the JSON, and patch_identity adds under a null metadata_admin."""
    identity_id = emulator.kratos.add_identity(traits={"email": "a@example.com"})["id"]

    fetched = await in_thread(clients.identities.get_identity, identity_id)
    patched = await in_thread(
        clients.identities.patch_identity,
        identity_id,
        json_patch=[JsonPatch(op="add", path="/metadata_admin/last_seen", value="x")],
    )

    assert fetched.id == identity_id
    assert fetched.metadata_admin is None
    assert patched.metadata_admin == {"last_seen": "x"}
    assert emulator.kratos.identity_json(identity_id)["metadata_admin"] == {"last_seen": "x"}
    assert emulator.writes[identity_id] == 1


@pytest.mark.anyio
async def test_kratos_client_lists_and_deletes_sessions(
    clients: Clients, emulator: OryEmulator
) -> None:
    """Sessions parse, delete succeeds, and the second delete raises NotFoundException."""
    identity_id = emulator.kratos.add_identity()["id"]
    session = emulator.kratos.create_session(identity_id)

    listed = await in_thread(clients.identities.list_identity_sessions, identity_id)
    await in_thread(clients.identities.delete_identity_sessions, identity_id)
    with pytest.raises(NotFoundException):
        await in_thread(clients.identities.delete_identity_sessions, identity_id)

    assert [s.id for s in listed] == [session.id]
    assert listed[0].identity.id == identity_id
    assert emulator.requests["delete_sessions"] == 2


@pytest.mark.anyio
async def test_hydra_client_revokes_consent_and_login(
    clients: Clients, emulator: OryEmulator
) -> None:
    """revoke_o_auth2_consent_sessions(all=True) and the login revocation both succeed."""
    consent = emulator.hydra.grant_consent("alice")
    emulator.hydra.create_login_session("alice")

    active = await in_thread(clients.oauth2.introspect_o_auth2_token, consent.access_token)
    await in_thread(clients.oauth2.revoke_o_auth2_consent_sessions, subject="alice", all=True)
    await in_thread(clients.oauth2.revoke_o_auth2_login_sessions, subject="alice")
    revoked = await in_thread(clients.oauth2.introspect_o_auth2_token, consent.access_token)

    assert active.active is True
    assert active.sub == "alice"
    assert revoked.active is False
    assert emulator.hydra.login_session_ids("alice") == []
    assert emulator.requests["revoke_consent_sessions"] == 1
    assert emulator.requests["revoke_login_sessions"] == 1
