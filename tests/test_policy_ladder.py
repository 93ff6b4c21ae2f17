"""Policy.decide with the lifecycle ladder, episode markers and per-kind revocation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from policy_identities import DAY, NOW, SECOND, make_identity, with_metadata_admin
from stale_tokens import (
    CredentialKind,
    CredentialKindThresholds,
    Decision,
    Identity,
    Ladder,
    Policy,
    RolePolicy,
    Step,
    build_step_markers,
    format_timestamp,
)

LADDER = Policy(ladder=Ladder())
DELETING = Policy(ladder=Ladder(delete_enabled=True))
ALL_KINDS = frozenset(CredentialKind)


def act(identity: Identity, decision: Decision, done_at: datetime) -> Identity:
    """Return *identity* with the markers the sweeper writes after carrying out *decision*."""
    markers = build_step_markers(identity, decision, done_at=done_at)
    return with_metadata_admin(identity, "stale_tokens", markers)


def by_kind(**moments: datetime) -> dict[str, str]:
    """Build metadata_admin.last_activity_by_kind as the tracker writes it."""
    return {kind: format_timestamp(moment) for kind, moment in moments.items()}


@pytest.mark.parametrize(
    ("role", "days", "expected"),
    [
        ("user", 30, Step.WARN),
        ("user", 60, Step.SUSPEND),
        ("user", 90, Step.REVOKE),
        ("user", 180, Step.RE_ENGAGE),
        ("user", 365, Step.DEACTIVATE),
        ("admin", 5, Step.WARN),
        ("admin", 7, Step.REVOKE),
        ("admin", 180, Step.RE_ENGAGE),
        ("admin", 365, Step.DEACTIVATE),
    ],
)
@pytest.mark.parametrize("shift", [-SECOND, timedelta(0), SECOND])
def test_ladder_step_edges(role: str, days: int, expected: Step, shift: timedelta) -> None:
    """Each ladder step becomes due at its day, not a second before."""
    last = NOW - timedelta(days=days) - shift
    identity = make_identity(last_activity=last, role=role)

    decision = LADDER.decide(identity, NOW)

    if shift < timedelta(0):
        assert decision.step is not expected
        assert decision.next_step is expected
        assert decision.next_step_at == last + timedelta(days=days)
    else:
        assert decision.step is expected


def test_decide_longest_threshold_does_not_overflow() -> None:
    """The largest allowed thresholds are scheduled without overflowing datetime."""
    policy = Policy(
        roles={"user": RolePolicy(revoke_after_days=36_000)},
        ladder=Ladder(
            re_engage_after_days=None,
            deactivate_after_days=None,
            delete_after_days=36_525,
            delete_enabled=True,
            delete_notice_days=36_525,
        ),
    )
    last = NOW - DAY

    decision = policy.decide(make_identity(last_activity=last), NOW)

    assert decision.step is Step.NONE
    assert decision.next_step is Step.WARN
    assert decision.next_step_at == last + timedelta(days=30)


def test_ladder_admin_uses_role_warning_and_skips_suspension() -> None:
    """Ladder warn and suspend days after the admin revocation day do not apply to admins."""
    last = NOW - timedelta(days=5)
    identity = make_identity(last_activity=last, role="admin")

    decision = LADDER.decide(identity, NOW)

    assert decision.step is Step.WARN
    assert decision.next_step is Step.REVOKE
    assert decision.next_step_at == last + timedelta(days=7)


def test_ladder_later_steps_before_revocation_are_skipped() -> None:
    """A step after revoke applies only when its day is later than the role's revocation."""
    policy = Policy(roles={"user": RolePolicy(revoke_after_days=200)}, ladder=Ladder())
    identity = make_identity(last_activity=NOW - timedelta(days=190))

    decision = policy.decide(identity, NOW)

    assert decision.step is Step.SUSPEND
    assert decision.next_step is Step.REVOKE


def test_ladder_warning_tells_next_step() -> None:
    """The ladder warning points at the suspension that follows."""
    last = NOW - timedelta(days=31)

    decision = LADDER.decide(make_identity(last_activity=last), NOW)

    assert decision.step is Step.WARN
    assert decision.next_step is Step.SUSPEND
    assert decision.next_step_at == last + timedelta(days=60)


def test_ladder_missed_steps_are_skipped() -> None:
    """At day 400 with nothing done the step is deactivate, carrying the revocation."""
    decision = LADDER.decide(make_identity(last_activity=NOW - timedelta(days=400)), NOW)

    assert decision.step is Step.DEACTIVATE
    assert decision.revoke_kinds == ALL_KINDS
    assert decision.revokes_account
    assert decision.next_step is None


def test_decide_day_100_revokes_without_warning() -> None:
    """At day 100 with nothing done the step is revoke, not the missed warning."""
    decision = Policy().decide(make_identity(last_activity=NOW - timedelta(days=100)), NOW)

    assert decision.step is Step.REVOKE


def test_decide_each_step_once_per_episode() -> None:
    """A step recorded in the markers is not returned again in the same episode."""
    last = NOW - timedelta(days=84)
    identity = make_identity(last_activity=last)
    warned = Policy().decide(identity, NOW)
    identity = act(identity, warned, NOW)

    next_day = Policy().decide(identity, NOW + DAY)
    revoke_day = Policy().decide(identity, last + timedelta(days=90))
    identity = act(identity, revoke_day, last + timedelta(days=90))
    after_revoke = Policy().decide(identity, last + timedelta(days=120))

    assert warned.step is Step.WARN
    assert next_day.step is Step.NONE
    assert next_day.next_step is Step.REVOKE
    assert revoke_day.step is Step.REVOKE
    assert after_revoke.step is Step.NONE
    assert after_revoke.revoke_kinds == frozenset()
    assert after_revoke.next_step is None


def test_decide_new_activity_starts_new_episode() -> None:
    """Activity after a revocation resets the ladder: the warning is due again later."""
    identity = make_identity(last_activity=NOW - timedelta(days=100))
    revoked = Policy().decide(identity, NOW)
    identity = act(identity, revoked, NOW)
    returned = NOW + DAY
    identity = with_metadata_admin(identity, "last_activity_at", format_timestamp(returned))

    decision = Policy().decide(identity, returned + timedelta(days=83))

    assert decision.step is Step.WARN
    assert decision.episode == format_timestamp(returned)
    assert decision.episode != revoked.episode


def test_decide_markers_of_other_episode_ignored() -> None:
    """Steps recorded for another episode do not count."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=91),
        metadata_admin={
            "stale_tokens": {
                "episode": "2025-01-01T00:00:00.000000Z",
                "steps": {"revoke": "2025-04-01T00:00:00.000000Z"},
            }
        },
    )

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.REVOKE
    assert decision.findings == ()


def test_delete_needs_notice_first() -> None:
    """At the delete day without a notice the step is the notice; deletion follows later."""
    identity = make_identity(last_activity=NOW - timedelta(days=730))

    decision = DELETING.decide(identity, NOW)

    assert decision.step is Step.DELETE_NOTICE
    assert decision.next_step is Step.DELETE
    assert decision.next_step_at == NOW + timedelta(days=30)


@pytest.mark.parametrize(
    ("shift", "expected"),
    [(-SECOND, Step.NONE), (timedelta(0), Step.DELETE), (SECOND, Step.DELETE)],
)
def test_delete_notice_days_edges(shift: timedelta, expected: Step) -> None:
    """Deletion is due exactly delete_notice_days after the recorded notice."""
    identity = make_identity(last_activity=NOW - timedelta(days=735))
    notice = DELETING.decide(identity, NOW)
    identity = act(identity, notice, NOW)

    decision = DELETING.decide(identity, NOW + timedelta(days=30) + shift)

    assert notice.step is Step.DELETE_NOTICE
    assert decision.step is expected
    if expected is Step.NONE:
        assert decision.next_step is Step.DELETE
        assert decision.next_step_at == NOW + timedelta(days=30)


def test_delete_notice_from_old_episode_does_not_count() -> None:
    """A notice recorded in another episode never licenses a deletion."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=800),
        metadata_admin={
            "stale_tokens": {
                "episode": "2020-01-01T00:00:00.000000Z",
                "steps": {"delete_notice": "2022-01-01T00:00:00.000000Z"},
            }
        },
    )

    decision = DELETING.decide(identity, NOW)

    assert decision.step is Step.DELETE_NOTICE


def test_delete_off_by_default() -> None:
    """Without delete_enabled the ladder ends at deactivation."""
    decision = LADDER.decide(make_identity(last_activity=NOW - timedelta(days=2000)), NOW)

    assert decision.step is Step.DEACTIVATE
    assert decision.next_step is None


def test_inactive_identity_only_reaches_deletion() -> None:
    """A deactivated identity gets no warning or revocation, but the deletion steps."""
    identity = make_identity(last_activity=NOW - timedelta(days=400), state="inactive")
    old = make_identity(last_activity=NOW - timedelta(days=731), state="inactive")

    decision = DELETING.decide(identity, NOW)
    old_decision = DELETING.decide(old, NOW)

    assert decision.step is Step.NONE
    assert decision.revoke_kinds == frozenset()
    assert decision.next_step is Step.DELETE_NOTICE
    assert old_decision.step is Step.DELETE_NOTICE
    assert old_decision.revoke_kinds == frozenset()


def test_inactive_identity_without_ladder_is_left_alone() -> None:
    """Without deletion configured a deactivated identity has no due step."""
    identity = make_identity(last_activity=NOW - timedelta(days=400), state="inactive")

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.NONE
    assert decision.revoke_kinds == frozenset()
    assert decision.next_step is None


def test_kind_unused_is_revoked_while_account_active() -> None:
    """Browser sessions go after 90 days without browser use, even if tokens are in use."""
    browser_last = NOW - timedelta(days=90)
    identity = make_identity(
        last_activity=NOW - DAY,
        metadata_admin={
            "last_activity_by_kind": by_kind(
                browser_session=browser_last, personal_access_token=NOW - DAY
            )
        },
    )

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.NONE
    assert decision.revoke_kinds == {CredentialKind.BROWSER_SESSION}
    assert not decision.revokes_account
    assert decision.has_action
    assert decision.kind_episodes[CredentialKind.BROWSER_SESSION] == format_timestamp(browser_last)


@pytest.mark.parametrize(
    ("kind", "days"),
    [
        (CredentialKind.BROWSER_SESSION, 90),
        (CredentialKind.OAUTH2, 180),
        (CredentialKind.PERSONAL_ACCESS_TOKEN, 365),
    ],
)
@pytest.mark.parametrize("shift", [-SECOND, timedelta(0), SECOND])
def test_kind_threshold_edges(kind: CredentialKind, days: int, shift: timedelta) -> None:
    """Each kind is revoked on its own exactly at its threshold."""
    identity = make_identity(
        last_activity=NOW - DAY,
        metadata_admin={
            "last_activity_by_kind": {
                kind.value: format_timestamp(NOW - timedelta(days=days) - shift)
            }
        },
    )

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.NONE
    expected = frozenset() if shift < timedelta(0) else {kind}
    assert decision.revoke_kinds == expected


def test_kind_revoked_once_per_disuse() -> None:
    """A kind revoked on its own is not revoked again until it is used again."""
    identity = make_identity(
        last_activity=NOW - DAY,
        metadata_admin={"last_activity_by_kind": by_kind(browser_session=NOW - 100 * DAY)},
    )
    first = Policy().decide(identity, NOW)
    identity = act(identity, first, NOW)

    later = Policy().decide(identity, NOW + 10 * DAY)
    used_again = with_metadata_admin(
        identity, "last_activity_by_kind", by_kind(browser_session=NOW + DAY)
    )
    used_again = with_metadata_admin(
        used_again, "last_activity_at", format_timestamp(NOW + 90 * DAY)
    )
    after_reuse = Policy().decide(used_again, NOW + 91 * DAY)

    assert first.revoke_kinds == {CredentialKind.BROWSER_SESSION}
    assert later.revoke_kinds == frozenset()
    assert after_reuse.revoke_kinds == {CredentialKind.BROWSER_SESSION}


def test_kind_without_record_follows_account() -> None:
    """A kind with no per-kind record ages with the account's effective activity."""
    policy = Policy(roles={"user": RolePolicy(revoke_after_days=200)})
    identity = make_identity(last_activity=NOW - timedelta(days=95))

    decision = policy.decide(identity, NOW)

    assert decision.step is Step.NONE
    assert decision.revoke_kinds == {CredentialKind.BROWSER_SESSION}


def test_kind_never_is_not_revoked() -> None:
    """A kind whose threshold is never is not revoked, even at the account threshold."""
    policy = Policy(credential_kinds=CredentialKindThresholds(personal_access_token=None))
    identity = make_identity(last_activity=NOW - timedelta(days=400))

    decision = policy.decide(identity, NOW)

    assert decision.step is Step.REVOKE
    assert CredentialKind.PERSONAL_ACCESS_TOKEN not in decision.revoke_kinds


def test_account_revocation_records_every_kind() -> None:
    """After the account-level revocation, no kind is revoked again on its own."""
    identity = make_identity(last_activity=NOW - timedelta(days=100))
    revoked = Policy().decide(identity, NOW)
    identity = act(identity, revoked, NOW)

    much_later = Policy().decide(identity, NOW + timedelta(days=400))

    assert revoked.revoke_kinds == ALL_KINDS
    assert much_later.step is Step.NONE
    assert much_later.revoke_kinds == frozenset()


def test_exempt_identity_keeps_unused_kinds() -> None:
    """An opted-out identity loses no kind, however long it went unused."""
    identity = make_identity(
        last_activity=NOW - DAY,
        metadata_admin={
            "skip_stale_revocation": True,
            "last_activity_by_kind": by_kind(browser_session=NOW - 400 * DAY),
        },
    )

    decision = Policy().decide(identity, NOW)

    assert decision.revoke_kinds == frozenset()
    assert decision.exempt_reason == "metadata_admin.skip_stale_revocation is true"


@pytest.fixture(params=["Pacific/Kiritimati", "America/St_Johns"])
def local_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with the process time zone set to an unusual offset."""
    zone: str = request.param
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    yield zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("days", "expected"),
    [(83, Step.WARN), (90, Step.REVOKE), (30, Step.NONE)],
)
def test_decide_independent_of_time_zone(local_zone: str, days: int, expected: Step) -> None:
    """The machine's zone and the zone of now do not change the decision."""
    last = NOW - timedelta(days=days)
    identity = make_identity(last_activity=last.astimezone(ZoneInfo(local_zone)).isoformat())
    local_now = NOW.astimezone(ZoneInfo(local_zone))

    decision = Policy().decide(identity, local_now)

    assert time.localtime().tm_gmtoff != 0
    assert decision.step is expected
    assert decision.days_inactive == days
    assert decision.last_activity_at == last
    assert decision.last_activity_at.utcoffset() == timedelta(0)
    assert decision.episode == format_timestamp(last)


def test_ladder_warning_carries_revocation_time() -> None:
    """A ladder warning's next step is the suspension, and revoke_at is the role's day 90."""
    last_activity = NOW - 31 * DAY
    identity = make_identity(last_activity=last_activity)

    decision = Policy(ladder=Ladder()).decide(identity, NOW)

    assert decision.step is Step.WARN
    assert decision.next_step is Step.SUSPEND
    assert decision.next_step_at == last_activity + 60 * DAY
    assert decision.revoke_at == last_activity + 90 * DAY


@pytest.mark.parametrize(("role", "state"), [("service", "active"), ("user", "inactive")])
def test_decide_revoke_at_none_without_revocation(role: str, state: str) -> None:
    """A never-revoked role or a deactivated identity has no revocation time."""
    identity = make_identity(last_activity=NOW - 31 * DAY, role=role, state=state)

    decision = Policy(ladder=Ladder()).decide(identity, NOW)

    assert decision.revoke_at is None
