"""Policy.decide on bad data: each case is a finding, never a crash or an immunity."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from policy_identities import IDENTITY_ID, NOW, SECOND, codes, make_identity
from stale_tokens import (
    ActivitySource,
    CredentialKind,
    Identity,
    Ladder,
    Policy,
    Step,
    format_timestamp,
)

OLD_ACCOUNT = "2020-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("yesterday", "invalid_timestamp"),
        ("2026-02-30T00:00:00Z", "invalid_timestamp"),
        ("2026-05-01T00:00:00", "invalid_timestamp"),
        ("0001-01-01T00:00:00Z", "zero_timestamp"),
        (1748779200, "timestamp_not_string"),
        (["2026-05-31T00:00:00Z"], "timestamp_not_string"),
        (format_timestamp(NOW + timedelta(minutes=5) + SECOND), "future_timestamp"),
        (format_timestamp(NOW + timedelta(days=365)), "future_timestamp"),
    ],
)
def test_bad_activity_counts_as_missing(value: Any, code: str) -> None:
    """A bad activity timestamp is a finding and falls back to created_at."""
    identity = make_identity(metadata_admin={"last_activity_at": value}, created_at=OLD_ACCOUNT)

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == [code]
    assert IDENTITY_ID in decision.findings[0].message
    assert decision.activity_source is ActivitySource.CREATED_AT
    assert decision.step is Step.REVOKE


def test_future_within_tolerance_is_clamped() -> None:
    """A timestamp up to five minutes ahead counts as now, without a finding."""
    ahead = NOW + timedelta(minutes=5)
    identity = make_identity(last_activity=ahead)

    decision = Policy().decide(identity, NOW)

    assert decision.findings == ()
    assert decision.last_activity_at == NOW
    assert decision.activity_source is ActivitySource.RECORDED
    assert decision.days_inactive == 0


def test_clock_skew_tolerance_is_configurable() -> None:
    """A zero tolerance rejects a timestamp one second ahead."""
    identity = make_identity(last_activity=NOW + SECOND)

    decision = Policy(clock_skew_tolerance_seconds=0).decide(identity, NOW)

    assert codes(decision) == ["future_timestamp"]
    assert decision.activity_source is ActivitySource.CREATED_AT


def test_future_extra_activity_is_ignored() -> None:
    """An extra_activity far in the future is a finding and does not postpone the ladder."""
    identity = make_identity(last_activity=NOW - timedelta(days=100))

    decision = Policy().decide(identity, NOW, extra_activity=NOW + timedelta(days=30))

    assert codes(decision) == ["future_timestamp"]
    assert decision.step is Step.REVOKE


@pytest.mark.parametrize(
    "placeholder",
    [
        datetime.min.replace(tzinfo=UTC),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
    ],
)
def test_placeholder_extra_activity_is_ignored(placeholder: datetime) -> None:
    """A minimum datetime from an SQL source is a finding, not a crash or an activity."""
    identity = make_identity(last_activity=NOW - timedelta(days=100))

    decision = Policy().decide(identity, NOW, extra_activity=placeholder)

    assert codes(decision) == ["zero_timestamp"]
    assert decision.activity_source is ActivitySource.RECORDED
    assert decision.step is Step.REVOKE


@pytest.mark.parametrize("metadata", ["a string", ["a", "list"], 42, True])
def test_metadata_admin_not_object(metadata: Any) -> None:
    """A metadata_admin that is not an object is treated as empty."""
    identity = make_identity(metadata_admin=metadata, created_at=OLD_ACCOUNT)

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == ["metadata_admin_not_object"]
    assert decision.step is Step.REVOKE
    assert decision.account_type == "regular"


def test_no_timestamp_at_all_revokes_at_most() -> None:
    """Without any usable timestamp the identity is revoked, never taken further."""
    policy = Policy(ladder=Ladder(delete_enabled=True))
    identity = make_identity(created_at="not a date", metadata_admin={"last_activity_at": "?"})

    decision = policy.decide(identity, NOW)

    assert codes(decision) == ["invalid_timestamp", "invalid_timestamp", "no_activity_timestamp"]
    assert decision.step is Step.REVOKE
    assert decision.revoke_kinds == frozenset(CredentialKind)
    assert decision.activity_source is ActivitySource.UNKNOWN
    assert decision.days_inactive == 0
    assert decision.next_step is None
    assert decision.episode == "unknown"


def test_no_timestamp_revoked_once() -> None:
    """The revocation of an identity without timestamps is recorded like any other."""
    identity = make_identity(
        created_at=None,
        metadata_admin={
            "stale_tokens": {"episode": "unknown", "steps": {"revoke": "2026-05-01T00:00:00Z"}}
        },
    )

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.NONE
    assert decision.revoke_kinds == frozenset()


def test_no_timestamp_deactivated_is_left_alone() -> None:
    """A deactivated identity without timestamps has nothing left to revoke."""
    identity = make_identity(created_at=None, state="inactive")

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.NONE
    assert codes(decision) == ["no_activity_timestamp"]


@pytest.mark.parametrize(
    ("traits_role", "code"),
    [
        (None, "missing_role"),
        (7, "invalid_role"),
        ({"name": "admin"}, "invalid_role"),
        ("superuser", "unknown_role"),
        ("Admin", "unknown_role"),
    ],
)
def test_role_falls_back_to_user(traits_role: Any, code: str) -> None:
    """A missing, malformed or unknown role gets the user thresholds and a finding."""
    identity = make_identity(last_activity=NOW - timedelta(days=90), role=traits_role)

    decision = Policy().decide(identity, NOW)

    assert decision.role == "user"
    assert codes(decision) == [code]
    assert decision.step is Step.REVOKE


def test_role_trait_path_is_configurable() -> None:
    """The role is read from the configured dotted path inside traits."""
    data = {
        "id": IDENTITY_ID,
        "state": "active",
        "traits": {"org": {"role": "admin"}},
        "created_at": "2020-01-01T00:00:00Z",
        "metadata_admin": {"last_activity_at": format_timestamp(NOW - timedelta(days=7))},
    }

    decision = Policy(role_trait="org.role").decide(Identity.from_json(data), NOW)

    assert decision.role == "admin"
    assert decision.step is Step.REVOKE


@pytest.mark.parametrize("account_type", ["service", "trusted_integration"])
def test_exempt_account_types(account_type: str) -> None:
    """Service and trusted-integration accounts are never swept."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=900), metadata_admin={"account_type": account_type}
    )

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.NONE
    assert decision.revoke_kinds == frozenset()
    assert decision.account_type == account_type
    assert decision.exempt_reason == f"account type {account_type!r} is exempt"


@pytest.mark.parametrize("account_type", ["robot", "Service", 3, {"kind": "service"}])
def test_unknown_account_type_is_swept(account_type: Any) -> None:
    """An unknown account type is swept as regular and reported."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=90), metadata_admin={"account_type": account_type}
    )

    decision = Policy().decide(identity, NOW)

    assert decision.account_type == "regular"
    assert codes(decision) == ["unknown_account_type"]
    assert decision.step is Step.REVOKE


def test_exempt_account_types_configurable() -> None:
    """A policy can exempt its own account types and stop exempting the defaults."""
    policy = Policy(exempt_account_types={"robot"})
    robot = make_identity(
        last_activity=NOW - timedelta(days=90), metadata_admin={"account_type": "robot"}
    )
    service = make_identity(
        last_activity=NOW - timedelta(days=90), metadata_admin={"account_type": "service"}
    )

    assert policy.decide(robot, NOW).is_exempt
    assert policy.decide(service, NOW).step is Step.REVOKE


def test_opt_out_true_exempts() -> None:
    """skip_stale_revocation set to true exempts the identity."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=900),
        metadata_admin={"skip_stale_revocation": True},
    )

    decision = Policy().decide(identity, NOW)

    assert decision.step is Step.NONE
    assert decision.exempt_reason == "metadata_admin.skip_stale_revocation is true"
    assert decision.next_step is None


@pytest.mark.parametrize("value", ["true", 1, "yes", [True]])
def test_opt_out_non_boolean_does_not_exempt(value: Any) -> None:
    """An opt-out value that is not a boolean is reported and does not exempt."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=90),
        metadata_admin={"skip_stale_revocation": value},
    )

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == ["invalid_opt_out"]
    assert decision.exempt_reason is None
    assert decision.step is Step.REVOKE


def test_opt_out_false_does_not_exempt() -> None:
    """skip_stale_revocation set to false is the same as absent."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=90),
        metadata_admin={"skip_stale_revocation": False},
    )

    decision = Policy().decide(identity, NOW)

    assert decision.findings == ()
    assert decision.step is Step.REVOKE


def test_unknown_state_is_treated_as_active() -> None:
    """A state other than active or inactive is reported and swept as active."""
    identity = make_identity(last_activity=NOW - timedelta(days=90), state="deleted")

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == ["unknown_state"]
    assert decision.step is Step.REVOKE


def test_activity_by_kind_not_object() -> None:
    """A malformed per-kind record is reported and every kind follows the account."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=1),
        metadata_admin={"last_activity_by_kind": "browser_session"},
    )

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == ["activity_by_kind_not_object"]
    assert decision.revoke_kinds == frozenset()


def test_bad_kind_timestamp_follows_account() -> None:
    """An unparseable per-kind timestamp is reported and the kind follows the account."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=1),
        metadata_admin={"last_activity_by_kind": {"oauth2": "last week"}},
    )

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == ["invalid_timestamp"]
    assert "last_activity_by_kind.oauth2" in decision.findings[0].message
    assert decision.revoke_kinds == frozenset()


def test_findings_never_contain_trait_values() -> None:
    """Finding messages name the identity id but not the email in its traits."""
    identity = make_identity(
        metadata_admin={"last_activity_at": "soon", "account_type": "robot"}, role="boss"
    )

    decision = Policy().decide(identity, NOW)

    assert len(decision.findings) == 3
    for finding in decision.findings:
        assert "person@example.org" not in finding.message
        assert IDENTITY_ID in finding.message


def test_days_never_negative() -> None:
    """A created_at slightly ahead of the sweep clock gives zero days, not negative ones."""
    identity = make_identity(created_at=NOW + timedelta(minutes=1))

    decision = Policy().decide(identity, NOW)

    assert decision.days_inactive == 0
    assert decision.step is Step.NONE


def random_json(generator: random.Random, depth: int = 0) -> Any:
    """Return a random JSON value, biased towards values that look like timestamps."""
    shape = generator.randrange(14 if depth < 2 else 12)
    if shape == 12:
        return [random_json(generator, depth + 1) for _ in range(2)]
    if shape == 13:
        keys = generator.sample(FUZZ_KEYS, k=generator.randint(0, len(FUZZ_KEYS)))
        return {key: random_json(generator, depth + 1) for key in keys}
    scalars: list[Any] = [
        None,
        True,
        False,
        generator.randint(-(10**12), 10**12),
        generator.uniform(-1e9, 1e9),
        "",
        "service",
        "admin",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2026-05-01T00:00:00+14:00",
        format_timestamp(NOW - timedelta(days=generator.randint(0, 2000))),
    ]
    return scalars[shape]


FUZZ_KEYS = [
    "last_activity_at",
    "last_activity_by_kind",
    "browser_session",
    "oauth2",
    "account_type",
    "skip_stale_revocation",
    "stale_tokens",
    "episode",
    "steps",
    "warn",
    "revoke",
    "kinds",
    "claim",
    "role",
]


def test_decide_never_raises_on_random_data() -> None:
    """Random JSON in traits, metadata_admin and created_at never raises or exempts by accident."""
    generator = random.Random(20260601)
    policy = Policy(ladder=Ladder(delete_enabled=True))

    outcomes: Counter[bool] = Counter()
    for _ in range(1000):
        data = {
            "id": IDENTITY_ID,
            "state": generator.choice(["active", "inactive", "deleted", 3]),
            "traits": random_json(generator),
            "metadata_admin": random_json(generator),
            "created_at": random_json(generator),
        }
        identity = Identity.from_json(data)

        decision = policy.decide(identity, NOW)

        metadata = data["metadata_admin"]
        opted_out = isinstance(metadata, dict) and metadata.get("skip_stale_revocation") is True
        exempt_type = isinstance(metadata, dict) and metadata.get("account_type") == "service"
        traits = data["traits"]
        service_role = isinstance(traits, dict) and traits.get("role") == "service"
        assert decision.days_inactive >= 0
        assert decision.last_activity_at <= NOW
        assert decision.is_exempt == (opted_out or exempt_type or service_role)
        outcomes[decision.is_exempt] += 1

    assert outcomes[True] > 0
    assert outcomes[False] > 0


def test_created_at_ahead_within_a_day_is_clamped() -> None:
    """A created_at ten minutes ahead (Kratos clock skew) counts as now with a finding."""
    identity = make_identity(created_at=NOW + timedelta(minutes=10))

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == ["future_created_at"]
    assert IDENTITY_ID in decision.findings[0].message
    assert decision.activity_source is ActivitySource.CREATED_AT
    assert decision.last_activity_at == NOW
    assert decision.step is Step.NONE
    assert decision.revoke_kinds == frozenset()


def test_created_at_day_ahead_is_missing() -> None:
    """A created_at more than 24 hours ahead is bad data, so it never postpones the ladder."""
    identity = make_identity(created_at=NOW + timedelta(days=1) + SECOND)

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == ["future_timestamp", "no_activity_timestamp"]
    assert "86400 seconds" in decision.findings[0].message
    assert decision.activity_source is ActivitySource.UNKNOWN
    assert decision.step is Step.REVOKE


def test_future_activity_beyond_skew_is_missing() -> None:
    """Recorded activity ten minutes ahead keeps the clock-skew tolerance rule."""
    identity = make_identity(last_activity=NOW + timedelta(minutes=10), created_at=OLD_ACCOUNT)

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == ["future_timestamp"]
    assert decision.activity_source is ActivitySource.CREATED_AT


def test_unknown_role_finding_hides_the_trait_value() -> None:
    """With role_trait pointing at the email, the unknown_role finding never shows it."""
    policy = Policy(role_trait="email")
    identity = make_identity(last_activity=NOW - timedelta(days=1))

    decision = policy.decide(identity, NOW)

    assert codes(decision) == ["unknown_role"]
    message = decision.findings[0].message
    assert "person@example.org" not in message
    assert "example" not in message
    assert "is not a role of the policy (a string of 18 characters)" in message


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ({"account_type": "someone@example.org"}, "unknown_account_type"),
        ({"skip_stale_revocation": "someone@example.org"}, "invalid_opt_out"),
        ({"last_activity_at": "someone@example.org"}, "invalid_timestamp"),
        ({"stale_tokens": "someone@example.org"}, "malformed_markers"),
    ],
)
def test_findings_never_show_an_email_address(metadata: dict[str, Any], code: str) -> None:
    """An email address stored where another value belongs is described, never shown."""
    identity = make_identity(metadata_admin=metadata)

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == [code]
    assert "@" not in decision.findings[0].message
    assert "a string of 19 characters" in decision.findings[0].message
