"""`sweep()` over thousands of emulated identities with 5xx, 429 and dropped connections."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
import stamina

from stale_tokens import Identity, Policy, SweepReport, read_markers, sweep
from stale_tokens.testing import Fault, OryEmulator
from sweeping import NOW, RecordingAuditSink, RecordingNotifier, add_identity, clients

IDENTITIES = 1500
STALE = 80
WARNED = 30


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _retry_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=4):
        yield


def _populate(emulator: OryEmulator) -> tuple[list[str], list[str], list[str]]:
    """Add stale, about-to-be-warned and active identities in random id order."""
    shuffle = random.Random(11)
    stale, warned, active = [], [], []
    for number in range(IDENTITIES):
        if number < STALE:
            identity_id = add_identity(emulator, days_inactive=shuffle.uniform(91, 400))
            emulator.kratos.create_session(identity_id, authenticated_at=NOW - timedelta(days=91))
            stale.append(identity_id)
        elif number < STALE + WARNED:
            warned.append(add_identity(emulator, days_inactive=shuffle.uniform(83.5, 89.5)))
        else:
            active.append(add_identity(emulator, days_inactive=shuffle.uniform(0, 80)))
    return stale, warned, active


def _inject_faults(emulator: OryEmulator) -> None:
    emulator.add_fault(Fault("list_identities", status=503, probability=0.2))
    emulator.add_fault(Fault("get_identity", status=500, probability=0.05))
    emulator.add_fault(Fault("patch_identity", status=429, probability=0.05))
    emulator.add_fault(Fault("patch_identity", drop=True, probability=0.03))
    emulator.add_fault(Fault("delete_sessions", drop=True, probability=0.05))
    emulator.add_fault(Fault("revoke_consent_sessions", status=502, probability=0.05))


async def _run(emulator: OryEmulator, notifier: RecordingNotifier) -> SweepReport:
    async with clients(emulator) as (kratos, hydra):
        return await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            notifier=notifier,
            audit=RecordingAuditSink(),
            now=NOW,
            concurrency=16,
        )


@pytest.mark.anyio
async def test_sweep_under_faults_reaches_every_identity() -> None:
    """Injected faults are retried or reported, and a second run finishes the rest."""
    emulator = OryEmulator(seed=21, clock=lambda: NOW)
    stale, warned, active = _populate(emulator)
    _inject_faults(emulator)
    notifier = RecordingNotifier()

    first = await _run(emulator, notifier)
    failed = {failure.identity_id for failure in first.failures}
    emulator.clear_faults()
    second = await _run(emulator, notifier)

    assert first.identities_seen == IDENTITIES
    assert first.due == {"revoke": STALE, "warn": WARNED}
    assert first.done["revoke"] + first.done["warn"] + len(failed) == STALE + WARNED
    assert second.done.get("revoke", 0) + second.done.get("warn", 0) == len(failed)
    assert second.failures == ()
    assert sorted(n.identity_id for n in notifier.sent) == sorted(warned)
    for identity_id in stale:
        identity = Identity.from_json(emulator.kratos.identity_json(identity_id))
        assert emulator.kratos.session_ids(identity_id) == [], identity_id
        assert "revoke" in {step.value for step in read_markers(identity).steps}, identity_id
        assert read_markers(identity).claim is None, identity_id
    assert all(emulator.writes[identity_id] == 0 for identity_id in active)


@pytest.mark.anyio
async def test_sweep_under_faults_counts_retries() -> None:
    """The listing is retried on 503 and still visits every page exactly once."""
    emulator = OryEmulator(seed=4, clock=lambda: NOW)
    for _ in range(600):
        add_identity(emulator, days_inactive=10)
    emulator.add_fault(Fault("list_identities", status=503, times=3))

    report = await _run(emulator, RecordingNotifier())

    assert report.identities_seen == 600
    assert emulator.requests["list_identities"] == 3 + 3
    assert sum(emulator.writes.values()) == 0
