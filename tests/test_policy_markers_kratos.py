"""Episode markers written through KratosAdmin to the emulator and read back by decide()."""

from __future__ import annotations

from datetime import timedelta

import pytest

from policy_identities import NOW
from stale_tokens import (
    KratosAdmin,
    Policy,
    Step,
    build_claim_markers,
    build_step_markers,
    format_timestamp,
    read_markers,
)
from stale_tokens.testing import OryEmulator

BASE = "http://127.0.0.1:4434"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("kratos_version", ["v26.2.0", "v0.13.0"])
async def test_markers_round_trip_through_kratos(kratos_version: str) -> None:
    """A revocation recorded through the admin API is not decided again, and other keys survive."""
    emulator = OryEmulator(kratos_version=kratos_version, public_url=BASE)
    created = emulator.kratos.add_identity(
        traits={"email": "person@example.org", "role": "user"},
        metadata_admin={
            "last_activity_at": format_timestamp(NOW - timedelta(days=91)),
            "crm_id": "c-42",
        },
        created_at="2025-01-01T00:00:00Z",
    )
    policy = Policy()

    async with KratosAdmin(BASE, transport=emulator.transport()) as kratos:
        identity = await kratos.get_identity(created["id"])
        decision = policy.decide(identity, NOW)
        claim = build_claim_markers(identity, decision, run_id="run-1", claimed_at=NOW)
        await kratos.set_metadata_admin(identity.id, {policy.marker_key: claim})
        claimed = await kratos.get_identity(identity.id)
        done = build_step_markers(claimed, decision, done_at=NOW)
        await kratos.set_metadata_admin(identity.id, {policy.marker_key: done})
        recorded = await kratos.get_identity(identity.id)

    stored = emulator.kratos.identity_json(identity.id)["metadata_admin"]
    again = policy.decide(recorded, NOW + timedelta(days=1))
    claim_read = read_markers(claimed).claim
    assert decision.step is Step.REVOKE
    assert claim_read is not None
    assert claim_read.run_id == "run-1"
    assert stored["crm_id"] == "c-42"
    assert stored["last_activity_at"] == format_timestamp(NOW - timedelta(days=91))
    assert stored["stale_tokens"]["steps"] == {"revoke": format_timestamp(NOW)}
    assert "claim" not in stored["stale_tokens"]
    assert again.step is Step.NONE
    assert again.revoke_kinds == frozenset()
    assert again.findings == ()
    assert emulator.writes[identity.id] == 2
