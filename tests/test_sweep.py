"""`sweep()` against the in-process emulator: plan, act, report, and the naive version's defects."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
import stamina

from stale_tokens import (
    CircuitBreaker,
    ConfigurationError,
    Identity,
    InProcessSweepLock,
    Policy,
    ServerError,
    SweepAbortedError,
    read_markers,
    sweep,
)
from stale_tokens.testing import Fault, OryEmulator
from sweeping import (
    BASE_URL,
    NOW,
    RecordingAuditSink,
    RecordingNotifier,
    add_identity,
    clients,
    metadata_admin,
)

NO_BREAKER = None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _retry_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=4):
        yield


@pytest.fixture
def emulator() -> OryEmulator:
    return OryEmulator(seed=3, clock=lambda: NOW)


@pytest.mark.anyio
async def test_sweep_reads_every_page(emulator: OryEmulator) -> None:
    """Identities on the last page of the listing are revoked too."""
    stale = [add_identity(emulator, days_inactive=120) for _ in range(7)]
    for identity_id in stale:
        emulator.kratos.create_session(identity_id, authenticated_at=NOW - timedelta(days=120))

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            page_size=2,
            circuit_breaker=NO_BREAKER,
        )

    assert emulator.requests["list_identities"] == 4
    assert report.identities_seen == 7
    assert report.done == {"revoke": 7}
    assert all(emulator.kratos.session_ids(identity_id) == [] for identity_id in stale)


@pytest.mark.anyio
async def test_sweep_revokes_never_active_identity(emulator: OryEmulator) -> None:
    """An identity without recorded activity is judged by its created_at."""
    never_active = add_identity(emulator, days_inactive=None, created_days_ago=200)
    emulator.kratos.create_session(never_active, authenticated_at=NOW - timedelta(days=200))
    new_account = add_identity(emulator, days_inactive=None, created_days_ago=10)

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, circuit_breaker=NO_BREAKER
        )

    assert report.done == {"revoke": 1}
    assert emulator.requests["delete_sessions"] == 1
    assert emulator.kratos.session_ids(never_active) == []
    assert emulator.writes[new_account] == 0


@pytest.mark.anyio
async def test_sweep_never_revokes_service_account(emulator: OryEmulator) -> None:
    """A service account stays untouched however long it was idle, and is counted as exempt."""
    service = add_identity(emulator, days_inactive=5000, metadata_admin={"account_type": "service"})
    emulator.kratos.create_session(service, authenticated_at=NOW - timedelta(days=5000))
    opted_out = add_identity(
        emulator, days_inactive=400, metadata_admin={"skip_stale_revocation": True}
    )

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(kratos=kratos, hydra=hydra, policy=Policy(), now=NOW)

    assert sum(report.exempt.values()) == 2
    assert report.done == {}
    assert emulator.requests["delete_sessions"] == 0
    assert emulator.writes[service] == 0
    assert emulator.writes[opted_out] == 0
    assert len(emulator.kratos.session_ids(service)) == 1


@pytest.mark.anyio
async def test_sweep_reads_metadata_admin_not_public(emulator: OryEmulator) -> None:
    """Activity counts from metadata_admin; a stale copy in metadata_public is ignored."""
    active = add_identity(
        emulator,
        days_inactive=3,
        metadata_public={"last_activity_at": (NOW - timedelta(days=400)).isoformat()},
    )
    stale = add_identity(
        emulator,
        days_inactive=400,
        metadata_public={"last_activity_at": NOW.isoformat()},
    )

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, circuit_breaker=NO_BREAKER
        )

    assert report.done == {"revoke": 1}
    assert emulator.writes[active] == 0
    assert read_markers(Identity.from_json(emulator.kratos.identity_json(stale))).steps


@pytest.mark.anyio
async def test_sweep_isolates_failing_identity(emulator: OryEmulator) -> None:
    """A Kratos 500 on one identity is reported and every other identity is still revoked."""
    healthy = [add_identity(emulator, days_inactive=100) for _ in range(4)]
    broken = add_identity(emulator, days_inactive=100)
    emulator.add_fault(Fault("delete_sessions", status=500, identity_id=broken))
    audit = RecordingAuditSink()

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            audit=audit,
            now=NOW,
            circuit_breaker=NO_BREAKER,
        )

    assert report.done == {"revoke": 4}
    assert [failure.identity_id for failure in report.failures] == [broken]
    assert "ServerError" in report.failures[0].error
    assert not report.is_clean
    assert emulator.requests["delete_sessions"] == 5 + 3  # the broken one is retried
    assert [event.identity_id for event in audit.of_type("sweep_step_failed")] == [broken]
    assert all(read_markers(_identity(emulator, i)).steps for i in healthy)
    assert not read_markers(_identity(emulator, broken)).steps
    assert read_markers(_identity(emulator, broken)).claim is None


@pytest.mark.anyio
async def test_sweep_report_lists_acted_identities(emulator: OryEmulator) -> None:
    """The report names each identity acted on, in a real run and in a dry run alike."""
    stale = sorted(add_identity(emulator, days_inactive=100) for _ in range(3))
    add_identity(emulator, days_inactive=3)

    async with clients(emulator) as (kratos, hydra):
        planned = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            dry_run=True,
            circuit_breaker=NO_BREAKER,
        )
        report = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, circuit_breaker=NO_BREAKER
        )

    expected = [(identity_id, "revoke", 100) for identity_id in stale]
    assert [(a.identity_id, a.step, a.days_inactive) for a in report.acted] == expected
    assert [(a.identity_id, a.step, a.days_inactive) for a in planned.acted] == expected
    assert report.to_dict()["acted"][0] == {
        "identity_id": stale[0],
        "step": "revoke",
        "days_inactive": 100,
    }


@pytest.mark.anyio
async def test_sweep_acts_concurrently(emulator: OryEmulator) -> None:
    """With concurrency 4, four identities are in flight at once, not one after another."""
    for _ in range(8):
        add_identity(emulator, days_inactive=100)
    in_flight = 0
    peak = 0

    async with clients(emulator) as (kratos, hydra):
        original = kratos.get_identity

        async def counting_get_identity(identity_id: str) -> Identity:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await anyio.lowlevel.checkpoint()
                return await original(identity_id)
            finally:
                in_flight -= 1

        kratos.get_identity = counting_get_identity  # type: ignore[method-assign]
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            concurrency=4,
            circuit_breaker=NO_BREAKER,
        )

    assert report.done == {"revoke": 8}
    assert peak == 4


@pytest.mark.anyio
async def test_sweep_warns_once_per_episode(emulator: OryEmulator) -> None:
    """Daily runs send the warning once, and again only after new activity and a new lapse."""
    identity_id = add_identity(emulator, days_inactive=84, email="person@example.org")
    notifier = RecordingNotifier()
    audit = RecordingAuditSink()

    async with clients(emulator) as (kratos, hydra):
        for day in range(3):
            await sweep(
                kratos=kratos,
                hydra=hydra,
                policy=Policy(),
                notifier=notifier,
                audit=audit,
                now=NOW + timedelta(days=day),
            )

    assert [n.identity_id for n in notifier.sent] == [identity_id]
    assert notifier.sent[0].days_inactive == 84
    assert notifier.sent[0].next_step == "revoke"
    assert notifier.sent[0].next_step_at == NOW + timedelta(days=6)
    assert len(audit.of_type("stale_warning_sent")) == 1
    assert emulator.requests["patch_identity"] == 2  # the claim, then the marker


@pytest.mark.anyio
async def test_sweep_retries_failed_notification(emulator: OryEmulator) -> None:
    """A warning the notifier rejected is not recorded, so the next run sends it."""
    identity_id = add_identity(emulator, days_inactive=84)
    notifier = RecordingNotifier(failing_ids={identity_id})

    async with clients(emulator) as (kratos, hydra):
        first = await sweep(kratos=kratos, hydra=hydra, policy=Policy(), notifier=notifier, now=NOW)
        notifier.failing_ids.clear()
        second = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), notifier=notifier, now=NOW
        )

    assert [failure.identity_id for failure in first.failures] == [identity_id]
    assert "mail server unavailable" in first.failures[0].error
    assert second.done == {"warn": 1}
    assert [n.identity_id for n in notifier.sent] == [identity_id]


@pytest.mark.anyio
async def test_sweep_repeated_run_does_nothing(emulator: OryEmulator) -> None:
    """A second run on the same day finds every step recorded and writes nothing."""
    for _ in range(5):
        add_identity(emulator, days_inactive=100)
    for _ in range(3):
        add_identity(emulator, days_inactive=85)

    async with clients(emulator) as (kratos, hydra):
        first = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, circuit_breaker=NO_BREAKER
        )
        emulator.reset_counters()
        second = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW + timedelta(hours=1),
            circuit_breaker=NO_BREAKER,
        )

    assert first.done == {"revoke": 5, "warn": 3}
    assert second.due == {}
    assert second.done == {}
    assert sum(emulator.writes.values()) == 0
    assert set(emulator.requests) == {"list_identities"}


@pytest.mark.anyio
async def test_sweep_retried_run_resumes(emulator: OryEmulator) -> None:
    """After a run that failed half-way, the retry acts only on what is still due."""
    ids = [add_identity(emulator, days_inactive=100) for _ in range(6)]
    emulator.add_fault(Fault("delete_sessions", status=503, identity_id=ids[2]))
    emulator.add_fault(Fault("patch_identity", status=500, identity_id=ids[4]))

    async with clients(emulator) as (kratos, hydra):
        first = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, circuit_breaker=NO_BREAKER
        )
        emulator.clear_faults()
        emulator.reset_counters()
        retried = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, circuit_breaker=NO_BREAKER
        )

    assert {failure.identity_id for failure in first.failures} == {ids[2], ids[4]}
    assert retried.done == {"revoke": 2}
    assert set(emulator.writes) == {ids[2], ids[4]}
    assert emulator.requests["delete_sessions"] == 2


@pytest.mark.anyio
async def test_sweep_circuit_breaker_aborts(emulator: OryEmulator) -> None:
    """When most identities look stale the sweep raises and acts on nothing."""
    for _ in range(150):
        add_identity(emulator, days_inactive=100)
    for _ in range(50):
        add_identity(emulator, days_inactive=1)

    async with clients(emulator) as (kratos, hydra):
        with pytest.raises(SweepAbortedError) as caught:
            await sweep(kratos=kratos, hydra=hydra, policy=Policy(), now=NOW)

    report = caught.value.report
    assert report.aborted
    assert report.abort_reason is not None
    assert "150 of 200" in report.abort_reason
    assert report.due == {"revoke": 150}
    assert report.done == {}
    assert sum(emulator.writes.values()) == 0
    assert set(emulator.requests) == {"list_identities"}


@pytest.mark.anyio
async def test_sweep_circuit_breaker_count_limit(emulator: OryEmulator) -> None:
    """A count limit trips even when the fraction would pass."""
    for _ in range(4):
        add_identity(emulator, days_inactive=100)

    async with clients(emulator) as (kratos, hydra):
        with pytest.raises(SweepAbortedError, match="max_destructive_count=3"):
            await sweep(
                kratos=kratos,
                hydra=hydra,
                policy=Policy(),
                now=NOW,
                circuit_breaker=CircuitBreaker(max_destructive_count=3),
            )

    assert sum(emulator.writes.values()) == 0


@pytest.mark.anyio
async def test_sweep_cap_defers_rest(emulator: OryEmulator) -> None:
    """The per-run cap revokes the first identities and defers the rest to the next run."""
    ids = sorted(add_identity(emulator, days_inactive=100) for _ in range(5))
    warned = add_identity(emulator, days_inactive=85)

    async with clients(emulator) as (kratos, hydra):
        first = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            max_destructive_steps=2,
            circuit_breaker=NO_BREAKER,
        )
        second = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            max_destructive_steps=2,
            circuit_breaker=NO_BREAKER,
        )

    assert first.done == {"revoke": 2, "warn": 1}
    assert first.deferred == tuple(ids[2:])
    assert second.done == {"revoke": 2}
    assert second.deferred == (ids[4],)
    assert emulator.writes[warned] == 2


@pytest.mark.anyio
async def test_sweep_lock_rejects_overlap(emulator: OryEmulator) -> None:
    """A second sweep that finds the lock taken stops before listing anything."""
    add_identity(emulator, days_inactive=100)
    lock = InProcessSweepLock()
    assert await lock.acquire("other-run")

    async with clients(emulator) as (kratos, hydra):
        with pytest.raises(SweepAbortedError, match="lock"):
            await sweep(kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, lock=lock)

    assert emulator.requests["list_identities"] == 0
    assert lock.owner == "other-run"


@pytest.mark.anyio
async def test_sweep_lock_released_after_run(emulator: OryEmulator) -> None:
    """A finished sweep gives the lock back, so the next scheduled run can take it."""
    add_identity(emulator, days_inactive=100)
    lock = InProcessSweepLock()

    async with clients(emulator) as (kratos, hydra):
        await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            lock=lock,
            circuit_breaker=NO_BREAKER,
        )

    assert lock.owner is None


@pytest.mark.anyio
async def test_sweep_overlapping_runs_act_once(emulator: OryEmulator) -> None:
    """Two sweeps sharing a lock never both revoke; the loser reports the abort."""
    for _ in range(20):
        add_identity(emulator, days_inactive=100)
    emulator.add_fault(Fault("get_identity", latency=0.001))
    lock = InProcessSweepLock()
    audit = RecordingAuditSink()
    outcomes: list[str] = []

    async with clients(emulator) as (kratos, hydra):

        async def run(run_id: str) -> None:
            try:
                await sweep(
                    kratos=kratos,
                    hydra=hydra,
                    policy=Policy(),
                    audit=audit,
                    now=NOW,
                    lock=lock,
                    run_id=run_id,
                    circuit_breaker=NO_BREAKER,
                )
                outcomes.append("done")
            except SweepAbortedError:
                outcomes.append("aborted")

        async with anyio.create_task_group() as group:
            group.start_soon(run, "run-a")
            group.start_soon(run, "run-b")

    assert sorted(outcomes) == ["aborted", "done"]
    assert len(audit.of_type("tokens_revoked_stale")) == 20
    assert emulator.requests["delete_sessions"] == 20


@pytest.mark.anyio
async def test_sweep_skips_fresh_claim(emulator: OryEmulator) -> None:
    """An identity another live run has claimed is skipped; an expired claim is ignored."""
    claim = {"step": "revoke", "run_id": "run-x", "episode": "2026-02-21T12:00:00.000000Z"}
    claimed = add_identity(
        emulator,
        days_inactive=100,
        metadata_admin={"stale_tokens": {"claim": {**claim, "claimed_at": NOW.isoformat()}}},
    )
    abandoned = add_identity(
        emulator,
        days_inactive=100,
        metadata_admin={
            "stale_tokens": {
                "claim": {**claim, "claimed_at": (NOW - timedelta(hours=2)).isoformat()}
            }
        },
    )
    audit = RecordingAuditSink()

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            audit=audit,
            now=NOW,
            circuit_breaker=NO_BREAKER,
        )

    assert [skip.identity_id for skip in report.skipped] == [claimed]
    assert "run-x" in report.skipped[0].reason
    assert report.done == {"revoke": 1}
    assert emulator.writes[claimed] == 0
    assert emulator.writes[abandoned] == 2  # the claim, then the marker
    assert emulator.requests["delete_sessions"] == 1
    assert [e.identity_id for e in audit.of_type("sweep_skipped_claimed_by_other_run")] == [claimed]


@pytest.mark.anyio
async def test_sweep_skips_activity_since_listing(emulator: OryEmulator) -> None:
    """Activity recorded between the listing and the act phase cancels the revocation."""
    identity_id = add_identity(emulator, days_inactive=100)
    emulator.kratos.create_session(identity_id, authenticated_at=NOW - timedelta(days=100))
    audit = RecordingAuditSink()

    async with clients(emulator) as (kratos, hydra):
        original = kratos.get_identity

        async def get_after_activity(identity_id: str) -> Identity:
            await kratos.set_metadata_admin(identity_id, {"last_activity_at": NOW.isoformat()})
            return await original(identity_id)

        kratos.get_identity = get_after_activity  # type: ignore[method-assign]
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            audit=audit,
            now=NOW,
            circuit_breaker=NO_BREAKER,
        )

    assert report.done == {}
    assert report.skipped[0].reason == "activity was recorded since the listing"
    assert emulator.requests["delete_sessions"] == 0
    assert len(emulator.kratos.session_ids(identity_id)) == 1
    assert len(audit.of_type("sweep_skipped_recent_activity")) == 1


@pytest.mark.anyio
async def test_sweep_skips_recent_session(emulator: OryEmulator) -> None:
    """A session authenticated within the window blocks a revocation the tracker missed."""
    identity_id = add_identity(emulator, days_inactive=100)
    emulator.kratos.create_session(identity_id, authenticated_at=NOW - timedelta(hours=3))

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, circuit_breaker=NO_BREAKER
        )

    assert report.done == {}
    assert "session was authenticated" in report.skipped[0].reason
    assert emulator.requests["list_sessions"] == 1
    assert emulator.requests["delete_sessions"] == 0


@pytest.mark.anyio
async def test_sweep_revokes_hydra_tokens(emulator: OryEmulator) -> None:
    """After a revocation Hydra introspects the identity's tokens as inactive."""
    identity_id = add_identity(emulator, days_inactive=100)
    other = add_identity(emulator, days_inactive=1)
    consent = emulator.hydra.grant_consent(identity_id)
    kept = emulator.hydra.grant_consent(other)
    emulator.hydra.create_login_session(identity_id)

    async with clients(emulator) as (kratos, hydra):
        await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, circuit_breaker=NO_BREAKER
        )

    async with httpx.AsyncClient(transport=emulator.transport(), base_url=BASE_URL) as client:
        introspected = await client.post(
            "/admin/oauth2/introspect", data={"token": consent.access_token}
        )

    assert introspected.json() == {"active": False}
    assert emulator.requests["revoke_consent_sessions"] == 1
    assert emulator.requests["revoke_login_sessions"] == 1
    assert not emulator.hydra.is_token_active(consent.access_token)
    assert not emulator.hydra.is_token_active(consent.refresh_token)
    assert emulator.hydra.login_session_ids(identity_id) == []
    assert emulator.hydra.is_token_active(kept.access_token)


@pytest.mark.anyio
async def test_sweep_maps_hydra_subject(emulator: OryEmulator) -> None:
    """A custom subject mapping sends Hydra the subject the login app used."""
    identity_id = add_identity(emulator, days_inactive=100, email="mapped@example.org")
    consent = emulator.hydra.grant_consent("subject-of-mapped")

    def subject(identity: Identity) -> str:
        return "subject-of-mapped" if identity.id == identity_id else identity.id

    async with clients(emulator) as (kratos, hydra):
        await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            hydra_subject=subject,
            circuit_breaker=NO_BREAKER,
        )

    assert not emulator.hydra.is_token_active(consent.access_token)


@pytest.mark.anyio
async def test_sweep_revokes_personal_access_tokens(emulator: OryEmulator) -> None:
    """A configured token revoker is called once for each revoked identity."""
    identity_id = add_identity(emulator, days_inactive=100)
    revoked: list[str] = []

    class TokenStore:
        async def revoke_personal_access_tokens(self, wanted: str) -> int:
            revoked.append(wanted)
            return 2

    audit = RecordingAuditSink()
    async with clients(emulator) as (kratos, hydra):
        await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            audit=audit,
            now=NOW,
            personal_access_tokens=TokenStore(),
            circuit_breaker=NO_BREAKER,
        )

    assert revoked == [identity_id]
    (event,) = audit.of_type("tokens_revoked_stale")
    assert event.details["personal_access_tokens_revoked"] == 2
    assert event.details["kinds"] == ["browser_session", "oauth2", "personal_access_token"]


@pytest.mark.anyio
async def test_sweep_dry_run_writes_nothing(emulator: OryEmulator) -> None:
    """A dry run leaves every write counter at zero and predicts the real run exactly."""
    for _ in range(6):
        add_identity(emulator, days_inactive=100)
    for _ in range(4):
        add_identity(emulator, days_inactive=85)
    add_identity(emulator, days_inactive=400, metadata_admin={"account_type": "service"})
    notifier = RecordingNotifier()
    audit = RecordingAuditSink()
    options: dict[str, Any] = {"policy": Policy(), "now": NOW, "circuit_breaker": NO_BREAKER}

    async with clients(emulator) as (kratos, hydra):
        preview = await sweep(
            kratos=kratos,
            hydra=hydra,
            notifier=notifier,
            audit=audit,
            dry_run=True,
            **options,
        )
        dry_requests = dict(emulator.requests)
        dry_writes = sum(emulator.writes.values())
        real = await sweep(kratos=kratos, hydra=hydra, **options)

    assert dry_writes == 0
    assert set(dry_requests) <= {"list_identities", "get_identity", "list_sessions"}
    assert notifier.sent == []
    assert audit.events == []
    assert preview.dry_run
    assert preview.due == real.due
    assert preview.done == real.done == {"revoke": 6, "warn": 4}
    assert preview.exempt == real.exempt
    assert len(preview.audit_events) == 10
    assert real.audit_events == ()


@pytest.mark.anyio
async def test_sweep_counts_audit_failures(emulator: OryEmulator) -> None:
    """An audit sink that raises is counted, and the action still counts as done."""
    add_identity(emulator, days_inactive=100)

    class BrokenSink:
        async def emit(self, event: Any) -> None:
            raise OSError("disk full")

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            audit=BrokenSink(),
            now=NOW,
            circuit_breaker=NO_BREAKER,
        )

    assert report.done == {"revoke": 1}
    assert report.audit_failures == 1
    assert report.failures == ()


@pytest.mark.anyio
async def test_sweep_reports_bad_data(emulator: OryEmulator) -> None:
    """Unparseable activity and a non-object metadata_admin become findings, not crashes."""
    garbled = emulator.kratos.add_identity(
        traits={"role": "user"},
        metadata_admin={"last_activity_at": "yesterday"},
        created_at=NOW - timedelta(days=5),
    )
    emulator.kratos.add_identity(
        traits={"role": "user"}, metadata_admin="legacy", created_at=NOW - timedelta(days=5)
    )

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(kratos=kratos, hydra=hydra, policy=Policy(), now=NOW)

    codes = {finding.finding.split(":")[0] for finding in report.findings}
    assert report.findings_total >= 2
    assert len(codes) >= 2
    assert garbled["id"] in {finding.identity_id for finding in report.findings}
    assert report.failures == ()


@pytest.mark.anyio
async def test_sweep_rejects_naive_now(emulator: OryEmulator) -> None:
    """A naive ``now`` raises ValueError before any request."""
    async with clients(emulator) as (kratos, hydra):
        with pytest.raises(ValueError, match="now"):
            await sweep(kratos=kratos, hydra=hydra, policy=Policy(), now=NOW.replace(tzinfo=None))

    assert emulator.requests["list_identities"] == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("concurrency", 0),
        ("max_destructive_steps", -1),
        ("recent_session_window", -5.0),
        ("recent_session_window", float("inf")),
        ("claim_expiry_seconds", 0.0),
    ],
)
@pytest.mark.anyio
async def test_sweep_rejects_invalid_options(
    emulator: OryEmulator, option: str, value: Any
) -> None:
    """Out-of-range options raise ConfigurationError naming the option."""
    async with clients(emulator) as (kratos, hydra):
        with pytest.raises(ConfigurationError, match=option):
            await sweep(kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, **{option: value})

    assert emulator.requests["list_identities"] == 0


def _identity(emulator: OryEmulator, identity_id: str) -> Identity:
    return Identity.from_json(emulator.kratos.identity_json(identity_id))


def test_metadata_admin_helper_reads_emulator(emulator: OryEmulator) -> None:
    """The helper returns what the admin API shows, null included."""
    identity_id = add_identity(emulator, days_inactive=None)

    assert metadata_admin(emulator, identity_id) is None


class _AuditTable:
    """An extra activity source backed by a dict, recording each lookup."""

    def __init__(self, activity: dict[str, datetime]) -> None:
        self.activity = activity
        self.lookups: list[list[str]] = []

    async def last_activity(self, identity_ids: Sequence[str]) -> dict[str, datetime]:
        self.lookups.append(list(identity_ids))
        return {i: self.activity[i] for i in identity_ids if i in self.activity}


@pytest.mark.anyio
async def test_sweep_uses_extra_activity(emulator: OryEmulator) -> None:
    """Activity from the app's own table keeps an identity whose Kratos timestamp is stale."""
    kept = add_identity(emulator, days_inactive=100)
    revoked = add_identity(emulator, days_inactive=100)
    table = _AuditTable({kept: NOW - timedelta(days=2)})

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            extra_activity=table,
            circuit_breaker=NO_BREAKER,
        )

    assert report.done == {"revoke": 1}
    assert emulator.writes[kept] == 0
    assert emulator.writes[revoked] == 2
    assert sorted(table.lookups[0]) == sorted([kept, revoked])
    assert table.lookups[1:] == [[revoked]]


@pytest.mark.anyio
async def test_sweep_rechecks_extra_activity(emulator: OryEmulator) -> None:
    """Activity that reaches the app's table after the listing cancels the revocation."""
    identity_id = add_identity(emulator, days_inactive=100)
    table = _AuditTable({})

    async with clients(emulator) as (kratos, hydra):
        original = kratos.get_identity

        async def get_after_login(identity_id: str) -> Identity:
            table.activity[identity_id] = NOW - timedelta(minutes=5)
            return await original(identity_id)

        kratos.get_identity = get_after_login  # type: ignore[method-assign]
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            extra_activity=table,
            circuit_breaker=NO_BREAKER,
        )

    assert report.done == {}
    assert [skip.identity_id for skip in report.skipped] == [identity_id]
    assert emulator.writes[identity_id] == 0


@pytest.mark.anyio
async def test_sweep_failure_hides_email_address(emulator: OryEmulator) -> None:
    """A notifier error naming the recipient reaches the report without the address."""
    identity_id = add_identity(emulator, days_inactive=84, email="jane.doe@example.org")

    class RejectingNotifier:
        async def notify(self, notification: Any) -> None:
            raise ValueError("recipient jane.doe@example.org rejected (550)")

    audit = RecordingAuditSink()
    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            notifier=RejectingNotifier(),
            audit=audit,
            now=NOW,
        )

    (failure,) = report.failures
    assert failure.identity_id == identity_id
    assert failure.error == "ValueError: recipient <email address> rejected (550)"
    assert "example.org" not in report.to_json()
    assert "example.org" not in str(audit.events[0].details)


@pytest.mark.anyio
async def test_sweep_without_hydra_records_kratos_only(emulator: OryEmulator) -> None:
    """Without a Hydra client the revocation covers Kratos sessions and records only them."""
    identity_id = add_identity(emulator, days_inactive=100)
    emulator.kratos.create_session(identity_id, authenticated_at=NOW - timedelta(days=100))
    audit = RecordingAuditSink()

    async with clients(emulator) as (kratos, _):
        first = await sweep(
            kratos=kratos, hydra=None, policy=Policy(), audit=audit, now=NOW, circuit_breaker=None
        )
        second = await sweep(
            kratos=kratos, hydra=None, policy=Policy(), now=NOW, circuit_breaker=None
        )

    markers = read_markers(_identity(emulator, identity_id))
    assert first.done == {"revoke": 1}
    assert second.due == {}
    assert emulator.requests["revoke_consent_sessions"] == 0
    assert emulator.kratos.session_ids(identity_id) == []
    assert {str(kind) for kind in markers.kinds} == {"browser_session"}
    assert audit.events[0].details["kinds"] == ["browser_session"]


@pytest.mark.anyio
async def test_sweep_dry_run_sees_claims(emulator: OryEmulator) -> None:
    """A dry run skips an identity another live run has claimed, as a real run would."""
    claim = {
        "step": "revoke",
        "run_id": "run-x",
        "episode": "2026-02-21T12:00:00.000000Z",
        "claimed_at": NOW.isoformat(),
    }
    claimed = add_identity(
        emulator, days_inactive=100, metadata_admin={"stale_tokens": {"claim": claim}}
    )

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            dry_run=True,
            circuit_breaker=NO_BREAKER,
        )

    assert report.done == {}
    assert [skip.identity_id for skip in report.skipped] == [claimed]
    assert [event.type for event in report.audit_events] == ["sweep_skipped_claimed_by_other_run"]
    assert sum(emulator.writes.values()) == 0


@pytest.mark.anyio
async def test_sweep_overlap_without_lock(emulator: OryEmulator) -> None:
    """A sweep started while another is acting skips its claim, and neither acts twice."""
    ids = [add_identity(emulator, days_inactive=100) for _ in range(3)]
    audit = RecordingAuditSink()
    reports = {}

    async with clients(emulator) as (kratos, hydra), clients(emulator) as (other, other_hydra):
        original = kratos.set_metadata_admin

        async def claim_then_overlap(identity_id: str, values: Any) -> Identity:
            written = await original(identity_id, values)
            if "run-b" not in reports:
                reports["run-b"] = await sweep(
                    kratos=other,
                    hydra=other_hydra,
                    policy=Policy(),
                    audit=audit,
                    now=NOW,
                    run_id="run-b",
                    circuit_breaker=NO_BREAKER,
                )
            return written

        kratos.set_metadata_admin = claim_then_overlap  # type: ignore[method-assign]
        reports["run-a"] = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            audit=audit,
            now=NOW,
            run_id="run-a",
            concurrency=1,
            circuit_breaker=NO_BREAKER,
        )

    revoked = sorted(event.identity_id for event in audit.of_type("tokens_revoked_stale"))
    assert revoked == sorted(ids)
    assert emulator.requests["delete_sessions"] == 3
    assert reports["run-a"].done == {"revoke": 1}
    assert reports["run-b"].done == {"revoke": 2}
    assert "run-a claimed it" in reports["run-b"].skipped[0].reason
    assert len(reports["run-a"].skipped) == 2


@pytest.mark.anyio
async def test_sweep_listing_failure_raises_ory_error(emulator: OryEmulator) -> None:
    """A listing that keeps failing raises the client's ServerError, not an exception group."""
    add_identity(emulator, days_inactive=100)
    emulator.add_fault(Fault("list_identities", status=500))

    async with clients(emulator) as (kratos, hydra):
        with pytest.raises(ServerError):
            await sweep(kratos=kratos, hydra=hydra, policy=Policy(), now=NOW)

    assert emulator.requests["list_identities"] == 4
    assert sum(emulator.writes.values()) == 0


@pytest.mark.anyio
async def test_sweep_extra_activity_failure_acts_on_nothing(emulator: OryEmulator) -> None:
    """An activity source that fails during the plan stops the sweep before any write."""
    add_identity(emulator, days_inactive=100)

    class BrokenTable:
        async def last_activity(self, identity_ids: Sequence[str]) -> dict[str, datetime]:
            raise ConnectionRefusedError("database is down")

    async with clients(emulator) as (kratos, hydra):
        with pytest.raises(ConnectionRefusedError, match="database is down"):
            await sweep(
                kratos=kratos,
                hydra=hydra,
                policy=Policy(),
                now=NOW,
                extra_activity=BrokenTable(),
                circuit_breaker=NO_BREAKER,
            )

    assert sum(emulator.writes.values()) == 0
    assert emulator.requests["get_identity"] == 0
