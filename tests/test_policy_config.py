"""Policy construction: defaults, validation messages, from_mapping and from_toml."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stale_tokens import (
    ConfigurationError,
    CredentialKind,
    CredentialKindThresholds,
    Identity,
    Ladder,
    Policy,
    RolePolicy,
)


def test_policy_defaults() -> None:
    """The default policy has the documented roles, kinds and no ladder."""
    policy = Policy()

    assert policy.name == "default"
    assert policy.roles["admin"] == RolePolicy(revoke_after_days=7, warn_before_days=2)
    assert policy.roles["user"] == RolePolicy(revoke_after_days=90, warn_before_days=7)
    assert policy.roles["service"].is_never_revoked
    assert policy.default_role == "user"
    assert policy.ladder is None
    assert policy.credential_kinds.revoke_after_days(CredentialKind.BROWSER_SESSION) == 90
    assert policy.credential_kinds.revoke_after_days(CredentialKind.OAUTH2) == 180
    assert policy.credential_kinds.revoke_after_days(CredentialKind.PERSONAL_ACCESS_TOKEN) == 365
    assert policy.exempt_account_types == frozenset({"service", "trusted_integration"})
    assert policy.clock_skew_tolerance_seconds == 300
    assert policy.marker_key == "stale_tokens"


def test_policy_roles_extend_defaults() -> None:
    """Roles passed to Policy are added to the built-in ones, replacing same names."""
    policy = Policy(
        roles={
            "admin": RolePolicy(revoke_after_days=14),
            "auditor": RolePolicy(revoke_after_days=30),
        }
    )

    assert policy.roles["admin"].revoke_after_days == 14
    assert policy.roles["admin"].warn_before_days == 2
    assert policy.roles["auditor"].revoke_after_days == 30
    assert policy.roles["auditor"].warn_before_days is None
    assert policy.roles["service"].is_never_revoked


def test_policy_is_frozen() -> None:
    """A policy cannot be changed after validation."""
    policy = Policy()

    with pytest.raises(AttributeError):
        policy.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: RolePolicy(revoke_after_days=-3),
            "revoke_after_days must be a positive number of days, got -3",
        ),
        (
            lambda: RolePolicy(revoke_after_days=0),
            "revoke_after_days must be a positive number of days, got 0",
        ),
        (
            lambda: RolePolicy(revoke_after_days=True),
            'revoke_after_days must be a positive number of days or "never", got True',
        ),
        (
            lambda: RolePolicy(revoke_after_days=float("nan")),
            "revoke_after_days must be a positive number of days, got nan",
        ),
        (
            lambda: RolePolicy(revoke_after_days=7, warn_before_days=7),
            "warn_before_days must be shorter than revoke_after_days (7), got 7",
        ),
        (
            lambda: RolePolicy(revoke_after_days=None, warn_before_days=2),
            "warn_before_days is 2 but revoke_after_days is never",
        ),
        (
            lambda: CredentialKindThresholds(oauth2=-1),
            "oauth2 must be a positive number of days, got -1",
        ),
        (
            lambda: Ladder(suspend_after_days=20),
            "suspend_after_days must be later than warn_after_days (30), got 20",
        ),
        (
            lambda: Ladder(delete_notice_days=0),
            "delete_notice_days must be a positive number of days, got 0",
        ),
        (
            lambda: Ladder(delete_enabled=True, delete_after_days=None),
            'delete_enabled is true but delete_after_days is "never"',
        ),
        (lambda: Policy(name=""), "name must be a non-empty string"),
        (
            lambda: Policy(default_role="guest"),
            (
                "default_role 'guest' is not a configured role; "
                "choose one of ['admin', 'service', 'user']"
            ),
        ),
        (
            lambda: Policy(exempt_account_types={"regular"}),
            "exempt_account_types must not contain 'regular'",
        ),
        (
            lambda: Policy(clock_skew_tolerance_seconds=-1),
            "clock_skew_tolerance_seconds must be zero or more seconds, got -1",
        ),
        (
            lambda: Policy(tracking_started_at=datetime(2026, 1, 1)),  # noqa: DTZ001 - naive on purpose
            "tracking_started_at must be timezone-aware",
        ),
        (
            lambda: RolePolicy(revoke_after_days=36_526),
            'revoke_after_days must be at most 36525 days (100 years), or "never" for no limit',
        ),
        (
            lambda: Ladder(delete_notice_days=1e9),
            "delete_notice_days must be at most 36525 days (100 years), got 1000000000.0",
        ),
        (
            lambda: Policy(clock_skew_tolerance_seconds=86_401),
            "clock_skew_tolerance_seconds must be at most 86400 seconds (one day)",
        ),
        (
            lambda: Policy(roles={"admin": 7}),  # type: ignore[dict-item]
            "roles.admin must be a RolePolicy, got int",
        ),
        (
            lambda: Policy(credential_kinds={"oauth2": 3}),  # type: ignore[arg-type]
            "credential_kinds must be a CredentialKindThresholds, got dict",
        ),
        (
            lambda: Policy(ladder=True),  # type: ignore[arg-type]
            "ladder must be a Ladder or None, got bool",
        ),
        (lambda: Policy(activity_key="a..b"), "activity_key must be a dotted key path"),
        (lambda: Policy(marker_key="a.b"), "marker_key must be a single top-level key"),
    ],
)
def test_policy_validation_messages(build: Any, message: str) -> None:
    """Each invalid value raises ConfigurationError naming the field and the value."""
    with pytest.raises(ConfigurationError) as caught:
        build()

    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_from_mapping_full_document() -> None:
    """Every table and key of a policy document is read."""
    policy = Policy.from_mapping(
        {
            "name": "strict",
            "default_role": "user",
            "role_trait": "org.role",
            "tracking_started_at": "2026-01-01T00:00:00+02:00",
            "clock_skew_tolerance_seconds": 60,
            "exempt_account_types": ["service"],
            "activity_key": "activity.last",
            "activity_by_kind_key": "activity.by_kind",
            "account_type_key": "kind",
            "opt_out_key": "never_sweep",
            "marker_key": "sweeper",
            "roles": {
                "admin": {"revoke_after_days": 3.5},
                "contractor": {"revoke_after_days": 30, "warn_before_days": 5},
            },
            "credential_kinds": {"personal_access_token": "never"},
            "ladder": {"delete_enabled": True, "re_engage_after_days": "never"},
        }
    )

    assert policy.name == "strict"
    assert policy.role_trait == "org.role"
    assert policy.tracking_started_at == datetime(2025, 12, 31, 22, 0, tzinfo=UTC)
    assert policy.clock_skew_tolerance_seconds == 60
    assert policy.exempt_account_types == frozenset({"service"})
    assert policy.activity_key == "activity.last"
    assert policy.marker_key == "sweeper"
    assert policy.roles["admin"] == RolePolicy(revoke_after_days=3.5, warn_before_days=2)
    assert policy.roles["contractor"] == RolePolicy(revoke_after_days=30, warn_before_days=5)
    assert policy.credential_kinds.personal_access_token is None
    assert policy.credential_kinds.browser_session == 90
    assert policy.ladder == Ladder(delete_enabled=True, re_engage_after_days=None)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"nmae": "x"}, "unknown key 'nmae' at the top level; valid keys are "),
        (
            {"roles": {"admin": {"revoke_after": 3}}},
            (
                "unknown key 'revoke_after' in roles.admin; "
                "valid keys are revoke_after_days, warn_before_days"
            ),
        ),
        ({"ladder": {"warn_days": 3}}, "unknown key 'warn_days' in ladder; valid keys are "),
        (
            {"credential_kinds": {"api_key": 3}},
            (
                "unknown key 'api_key' in credential_kinds; "
                "valid keys are browser_session, oauth2, personal_access_token"
            ),
        ),
        (
            {"roles": {"admin": {"revoke_after_days": -3}}},
            "roles.admin.revoke_after_days must be a positive number of days, got -3",
        ),
        (
            {"roles": {"admin": {"revoke_after_days": "forever"}}},
            (
                "roles.admin.revoke_after_days must be a positive number of days "
                "or \"never\", got 'forever'"
            ),
        ),
        (
            {"roles": {"admin": {"warn_before_days": 7}}},
            "roles.admin.warn_before_days must be shorter than revoke_after_days (7), got 7",
        ),
        ({"roles": {"bot": {"warn_before_days": 1}}}, "roles.bot.revoke_after_days is missing"),
        ({"roles": {"admin": 7}}, "roles.admin must be a table"),
        (
            {"credential_kinds": {"oauth2": False}},
            'credential_kinds.oauth2 must be a positive number of days or "never", got False',
        ),
        (
            {"ladder": {"delete_enabled": "yes"}},
            "ladder.delete_enabled must be true or false, got 'yes'",
        ),
        (
            {"ladder": {"deactivate_after_days": 100}},
            "ladder.deactivate_after_days must be later than re_engage_after_days (180), got 100",
        ),
        ({"tracking_started_at": "last year"}, "tracking_started_at must be an RFC 3339 date-time"),
        ({"exempt_account_types": "service"}, "exempt_account_types must be a list of strings"),
        (
            {"roles": {"admin": {"revoke_after_days": None}}},
            'roles.admin.revoke_after_days must be a positive number of days or "never", got None',
        ),
    ],
)
def test_from_mapping_rejects(document: dict[str, Any], message: str) -> None:
    """Unknown keys and invalid values name the dotted field, the value and the valid keys."""
    with pytest.raises(ConfigurationError) as caught:
        Policy.from_mapping(document)

    assert message in str(caught.value)


def test_from_mapping_empty_ladder_turns_it_on() -> None:
    """An empty ladder table enables the ladder with its defaults."""
    assert Policy.from_mapping({"ladder": {}}).ladder == Ladder()


def test_from_toml_reads_file(tmp_path: Path) -> None:
    """A TOML policy file with dates, floats and never is read into a Policy."""
    path = tmp_path / "policy.toml"
    path.write_text(
        """
name = "production"
tracking_started_at = 2026-03-01

[roles.admin]
revoke_after_days = 10
warn_before_days = 3

[roles.service]
revoke_after_days = "never"

[credential_kinds]
oauth2 = 120.5

[ladder]
delete_enabled = true
delete_notice_days = 14
""",
        encoding="utf-8",
    )

    policy = Policy.from_toml(path)

    assert policy.name == "production"
    assert policy.tracking_started_at == datetime(2026, 3, 1, tzinfo=UTC)
    assert policy.roles["admin"] == RolePolicy(revoke_after_days=10, warn_before_days=3)
    assert policy.roles["service"].is_never_revoked
    assert policy.credential_kinds.oauth2 == 120.5
    assert policy.ladder == Ladder(delete_enabled=True, delete_notice_days=14)


def test_from_toml_local_datetime_rejected(tmp_path: Path) -> None:
    """A TOML local date-time without an offset is rejected as ambiguous."""
    path = tmp_path / "policy.toml"
    path.write_text("tracking_started_at = 2026-03-01T00:00:00\n", encoding="utf-8")

    with pytest.raises(ConfigurationError, match="tracking_started_at must be timezone-aware"):
        Policy.from_toml(path)


def test_from_toml_invalid_syntax(tmp_path: Path) -> None:
    """A file that is not TOML raises ConfigurationError naming the file."""
    path = tmp_path / "policy.toml"
    path.write_text("[roles\n", encoding="utf-8")

    with pytest.raises(ConfigurationError, match="is not valid TOML"):
        Policy.from_toml(path)


def test_from_toml_missing_file(tmp_path: Path) -> None:
    """A missing file raises ConfigurationError naming the path."""
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigurationError, match="cannot read the policy file"):
        Policy.from_toml(path)


def test_reference_examples_agree(tmp_path: Path) -> None:
    """The TOML and Python examples of the policy reference build the same policy."""
    reference = (Path(__file__).parent.parent / "docs" / "policy.md").read_text(encoding="utf-8")
    toml_block = reference.split("```toml\n", 1)[1].split("```", 1)[0]
    python_block = reference.split("The same policy in Python:\n\n```python\n", 1)[1]
    python_block = python_block.split("```", 1)[0]
    path = tmp_path / "policy.toml"
    path.write_text(toml_block, encoding="utf-8")
    namespace: dict[str, Any] = {}

    exec(python_block, namespace)  # noqa: S102 - the documentation's own example

    assert Policy.from_toml(path) == namespace["policy"]


def test_role_warning_default_agrees_with_toml() -> None:
    """RolePolicy without warn_before_days keeps the built-in lead, as a TOML table does."""
    from_python = Policy(roles={"admin": RolePolicy(revoke_after_days=14)})
    from_toml = Policy.from_mapping({"roles": {"admin": {"revoke_after_days": 14}}})

    assert from_python.roles == from_toml.roles
    assert from_python.roles["admin"] == RolePolicy(revoke_after_days=14, warn_before_days=2)


def test_role_warning_none_turns_it_off() -> None:
    """An explicit warn_before_days=None still means no warning."""
    policy = Policy(roles={"admin": RolePolicy(revoke_after_days=14, warn_before_days=None)})

    assert policy.roles["admin"].warn_before_days is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: Policy(roles={"admin": RolePolicy(revoke_after_days=2)}),
        lambda: Policy.from_mapping({"roles": {"admin": {"revoke_after_days": 2}}}),
    ],
)
def test_built_in_warning_too_long_names_the_default(build: Callable[[], object]) -> None:
    """A threshold at or below the built-in lead names the default and how to set it."""
    with pytest.raises(ConfigurationError) as caught:
        build()

    message = str(caught.value)
    assert message.startswith("roles.admin.warn_before_days is not set")
    assert "the built-in 2 days" in message
    assert "revoke_after_days (2)" in message
    assert "set warn_before_days to fewer days" in message


@pytest.mark.parametrize("field", ["revoke_after_days", "warn_before_days"])
def test_role_policy_never_string_says_pass_none(field: str) -> None:
    """The TOML spelling "never" in Python says to pass None."""
    options: dict[str, Any] = {"revoke_after_days": 30, field: "never"}

    with pytest.raises(ConfigurationError, match=f'{field} is "never".*pass None'):
        RolePolicy(**options)


def test_ladder_notice_never_reports_the_written_value() -> None:
    """delete_notice_days = "never" reports "never", not None."""
    with pytest.raises(ConfigurationError, match=r"delete_notice_days .*got 'never'"):
        Policy.from_mapping({"ladder": {"delete_notice_days": "never"}})


def test_findings_use_the_right_article() -> None:
    """A type starting with a vowel takes "an"."""
    identity = Identity.from_json({"id": "i", "metadata_admin": {"last_activity_at": 5}})

    decision = Policy().decide(identity, datetime(2026, 6, 1, tzinfo=UTC))

    assert "is an int, not an RFC 3339 string" in decision.findings[0].message


def test_from_toml_policy_error_names_the_file(tmp_path: Path) -> None:
    """An invalid value in a policy file is reported with the file's path."""
    path = tmp_path / "policy.toml"
    path.write_text("[roles.admin]\nrevoke_after_days = -3\n", encoding="utf-8")

    with pytest.raises(ConfigurationError) as caught:
        Policy.from_toml(path)

    assert str(path) in str(caught.value)
    assert "roles.admin.revoke_after_days must be a positive number of days" in str(caught.value)


UNREACHABLE_LADDER = {
    "suspend_after_days": 35,
    "re_engage_after_days": 40,
    "deactivate_after_days": 50,
    "delete_after_days": 60,
    "delete_enabled": True,
}


def test_ladder_step_before_every_revocation_is_rejected() -> None:
    """A later step on or before every role's revocation day names the step and the fix."""
    mapping = {"roles": {"admin": {"revoke_after_days": 60}}, "ladder": UNREACHABLE_LADDER}

    with pytest.raises(ConfigurationError) as caught:
        Policy.from_mapping(mapping)

    message = str(caught.value)
    assert message.startswith("ladder.re_engage_after_days is 40 days")
    assert "(admin 60, user 90)" in message
    assert "set it later than 60 days" in message


def test_ladder_deletion_before_every_revocation_is_rejected() -> None:
    """An enabled deletion that no role reaches is rejected too."""
    ladder = Ladder(
        re_engage_after_days=None,
        deactivate_after_days=None,
        delete_after_days=110,
        delete_enabled=True,
    )
    roles = {"admin": RolePolicy(revoke_after_days=120), "user": RolePolicy(revoke_after_days=120)}

    with pytest.raises(ConfigurationError, match=r"ladder.delete_after_days is 110 days"):
        Policy(roles=roles, ladder=ladder)


def test_ladder_step_reaching_some_roles_is_valid() -> None:
    """A later step after the admin revocation day but before the user's is valid."""
    policy = Policy.from_mapping({"ladder": UNREACHABLE_LADDER})

    assert policy.ladder is not None
    assert policy.ladder.deactivate_after_days == 50
