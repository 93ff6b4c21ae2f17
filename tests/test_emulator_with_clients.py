"""The library's Kratos and Hydra clients work against the emulator, as the docs show."""

from __future__ import annotations

import pytest

from stale_tokens import HydraAdmin, KratosAdmin
from stale_tokens.testing import OryEmulator

STAMP = "2026-03-01T00:00:00Z"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["v26.2.0", "v0.13.0"])
async def test_set_metadata_admin_under_null(version: str) -> None:
    """set_metadata_admin fills a null metadata_admin on current and RFC-strict Kratos."""
    emulator = OryEmulator(seed=1, kratos_version=version)
    identity = emulator.kratos.add_identity(traits={"email": "ada@example.com"})

    async with KratosAdmin("http://ory", transport=emulator.transport()) as kratos:
        await kratos.set_metadata_admin(identity["id"], {"last_activity_at": STAMP})

    stored = emulator.kratos.identity_json(identity["id"])
    assert stored["metadata_admin"] == {"last_activity_at": STAMP}
    assert emulator.requests["patch_identity"] >= 1
    assert emulator.writes[identity["id"]] == 1


@pytest.mark.anyio
async def test_sweep_calls_revoke_everything() -> None:
    """delete_sessions and the Hydra revocations leave no session, token or login session."""
    emulator = OryEmulator(seed=2, api_key="ory_pat_x")
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.kratos.create_session(identity_id)
    consent = emulator.hydra.grant_consent(identity_id)
    emulator.hydra.create_login_session(identity_id)

    async with (
        KratosAdmin("http://ory", api_key="ory_pat_x", transport=emulator.transport()) as kratos,
        HydraAdmin("http://ory", api_key="ory_pat_x", transport=emulator.transport()) as hydra,
    ):
        first = await kratos.delete_sessions(identity_id)
        second = await kratos.delete_sessions(identity_id)
        await hydra.revoke_consent_sessions(identity_id)
        await hydra.revoke_login_sessions(identity_id)

    assert first is True
    assert second is False
    assert emulator.kratos.session_ids(identity_id) == []
    assert emulator.hydra.is_token_active(consent.refresh_token) is False
    assert emulator.hydra.login_session_ids(identity_id) == []
    assert emulator.requests["revoke_consent_sessions"] == 1
