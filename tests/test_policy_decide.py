"""Policy.decide: thresholds per role, activity sources, exemptions and findings."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from policy_identities import NOW, SECOND, make_identity
from stale_tokens import (
    ActivitySource,
    CredentialKind,
    Identity,
    Policy,
    RolePolicy,
    Step,
    format_timestamp,
)


@pytest.mark.parametrize(
    ("role", "offset", "expected"),
    [
        ("user", timedelta(days=83) - SECOND, Step.NONE),
        ("user", timedelta(days=83), Step.WARN),
        ("user", timedelta(days=83) + SECOND, Step.WARN),
        ("user", timedelta(days=90) - SECOND, Step.WARN),
        ("user", timedelta(days=90), Step.REVOKE),
        ("user", timedelta(days=90) + SECOND, Step.REVOKE),
        ("admin", timedelta(days=5) - SECOND, Step.NONE),
        ("admin", timedelta(days=5), Step.WARN),
        ("admin", timedelta(days=5) + SECOND, Step.WARN),
        ("admin", timedelta(days=7) - SECOND, Step.WARN),
        ("admin", timedelta(days=7), Step.REVOKE),
        ("admin", timedelta(days=7) + SECOND, Step.REVOKE),
        ("service", timedelta(days=2000), Step.NONE),
    ],
)
def test_decide_role_threshold_edges(role: str, offset: timedelta, expected: Step) -> None:
    """Each role warns and revokes exactly at its threshold, not a second before."""
    identity = make_identity(last_activity=NOW - offset, role=role)

    decision = Policy().decide(identity, NOW)

    assert decision.step is expected
    assert decision.role == role
    assert decision.activity_source is ActivitySource.RECORDED
    assert decision.last_activity_at == NOW - offset


def test_decide_revoke_lists_every_revocable_kind() -> None:
    """Passing the role threshold revokes every kind whose threshold is not never."""
    policy = Policy.from_mapping({"credential_kinds": {"personal_access_token": "never"}})
    identity = make_identity(last_activity=NOW - timedelta(days=91))

    decision = policy.decide(identity, NOW)

    assert decision.step is Step.REVOKE
    assert decision.revoke_kinds == {CredentialKind.BROWSER_SESSION, CredentialKind.OAUTH2}
    assert decision.revokes_account


def test_decide_warning_names_revocation_time() -> None:
    """A warning carries the revocation step and the moment it becomes due."""
    last = NOW - timedelta(days=84)
    identity = make_identity(last_activity=last)

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.WARN
    assert decision.next_step is Step.REVOKE
    assert decision.next_step_at == last + timedelta(days=90)
    assert decision.days_inactive == 84
    assert decision.revoke_kinds == frozenset()


def test_decide_reads_metadata_admin_not_metadata_public() -> None:
    """Activity in metadata_public is ignored; only metadata_admin counts."""
    data = {
        "id": "3f2a7c1e-0000-4000-8000-000000000002",
        "state": "active",
        "traits": {"role": "user"},
        "created_at": "2020-01-01T00:00:00Z",
        "metadata_public": {"last_activity_at": format_timestamp(NOW - timedelta(days=1))},
        "metadata_admin": None,
    }

    decision = Policy().decide(Identity.from_json(data), NOW)

    assert decision.activity_source is ActivitySource.CREATED_AT
    assert decision.step is Step.REVOKE


def test_decide_without_recorded_activity_uses_created_at() -> None:
    """An identity that never had recorded activity ages out from created_at."""
    created = NOW - timedelta(days=95)
    identity = make_identity(created_at=created)

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.REVOKE
    assert decision.activity_source is ActivitySource.CREATED_AT
    assert decision.last_activity_at == created
    assert decision.days_inactive == 95


def test_decide_service_role_is_never_revoked() -> None:
    """The service role never falls back to the user threshold."""
    identity = make_identity(last_activity=NOW - timedelta(days=5000), role="service")

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.NONE
    assert decision.revoke_kinds == frozenset()
    assert decision.exempt_reason == "role 'service' is never revoked"
    assert decision.next_step is None


def test_decide_custom_never_role_is_never_revoked() -> None:
    """A configured role with revoke_after_days never is exempt at any age."""
    policy = Policy(roles={"robot": RolePolicy(revoke_after_days=None)})
    identity = make_identity(last_activity=NOW - timedelta(days=5000), role="robot")

    decision = policy.decide(identity, NOW)

    assert decision.step is Step.NONE
    assert decision.is_exempt


def test_decide_baseline_postpones_old_accounts() -> None:
    """tracking_started_at counts as activity, so old accounts are not swept on day one."""
    baseline = NOW - timedelta(days=10)
    policy = Policy(tracking_started_at=baseline)
    identity = make_identity(created_at="2019-01-01T00:00:00Z")

    decision = policy.decide(identity, NOW)

    assert decision.step is Step.NONE
    assert decision.activity_source is ActivitySource.BASELINE
    assert decision.last_activity_at == baseline
    assert decision.next_step is Step.WARN
    assert decision.next_step_at == baseline + timedelta(days=83)


def test_decide_extra_activity_wins_when_latest() -> None:
    """Activity from the caller's own source counts when it is the latest."""
    extra = NOW - timedelta(days=3)
    identity = make_identity(last_activity=NOW - timedelta(days=100))

    decision = Policy().decide(identity, NOW, extra_activity=extra)

    assert decision.step is Step.NONE
    assert decision.activity_source is ActivitySource.EXTRA
    assert decision.last_activity_at == extra


def test_decision_is_hashable() -> None:
    """Decisions can be collected in sets, for example to count distinct outcomes."""
    identity = make_identity(last_activity=NOW - timedelta(days=100))

    first = Policy().decide(identity, NOW)
    second = Policy().decide(identity, NOW)

    assert first == second
    assert len({first, second}) == 1


def test_decide_rejects_naive_now() -> None:
    """A naive now raises ValueError naming the fix."""
    naive = datetime(2026, 6, 1, 12, 0)  # noqa: DTZ001 - the naive value under test

    with pytest.raises(ValueError, match="timezone-aware"):
        Policy().decide(make_identity(), naive)


def test_decide_rejects_naive_extra_activity() -> None:
    """A naive extra_activity raises ValueError."""
    naive = datetime(2026, 6, 1, 12, 0)  # noqa: DTZ001 - the naive value under test

    with pytest.raises(ValueError, match="extra_activity"):
        Policy().decide(make_identity(), NOW, extra_activity=naive)


def test_decide_accepts_the_kratos_json_object() -> None:
    """The JSON object of the admin API gives the same decision as its Identity."""
    identity = make_identity(last_activity=NOW - timedelta(days=84))
    data = dict(identity.raw)

    from_json = Policy().decide(data, NOW)

    assert from_json == Policy().decide(identity, NOW)
    assert from_json.step is Step.WARN
    assert from_json.identity_id == identity.id


def test_decide_json_object_without_id_names_the_fix() -> None:
    """A JSON object without an id raises a ValueError naming what to pass."""
    data = dict(make_identity().raw)
    del data["id"]

    with pytest.raises(ValueError, match="as the Kratos admin API returns it, which always has"):
        Policy().decide(data, NOW)
