"""Read what the policy needs from an identity, turning bad data into findings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._decision import ActivitySource, CredentialKind, Finding
from ._models import Identity
from ._timestamps import parse_timestamp
from ._traits import MISSING, describe_value, lookup_path, split_path, type_name

if TYPE_CHECKING:
    from ._policy import Policy

__all__ = [
    "CREATED_AT_CLOCK_SKEW_LIMIT_SECONDS",
    "REGULAR_ACCOUNT_TYPE",
    "IdentityFacts",
    "read_facts",
]

REGULAR_ACCOUNT_TYPE = "regular"
"""The account type of identities without one; the only type that is swept."""

CREATED_AT_CLOCK_SKEW_LIMIT_SECONDS = 86_400
"""How far ahead of the sweeper's clock a ``created_at`` may be and still count, 24 hours.

``created_at`` comes from the clock of the Kratos database, which may run
ahead of the sweeper host by more than the policy's clock-skew tolerance. A
``created_at`` up to this far in the future is clamped to now and reported,
so a just-registered account is never treated as having no timestamp. One
further ahead counts as missing, so a corrupt value never exempts an account.
"""

# Go's zero time.Time, which Kratos and Go clients write for "never set".
_GO_ZERO_YEAR = 1

# Ties go to the most specific source.
_SOURCE_PRIORITY = {
    ActivitySource.BASELINE: 0,
    ActivitySource.CREATED_AT: 1,
    ActivitySource.EXTRA: 2,
    ActivitySource.RECORDED: 3,
}


@dataclass(frozen=True, slots=True)
class IdentityFacts:
    """The parts of one identity that the policy reads, at one moment."""

    role: str
    account_type: str
    is_opted_out: bool
    is_deactivated: bool
    last_activity_at: datetime | None
    activity_source: ActivitySource
    kind_activity: Mapping[CredentialKind, datetime]
    findings: tuple[Finding, ...]


def read_facts(
    policy: Policy, identity: Identity, now: datetime, extra_activity: datetime | None
) -> IdentityFacts:
    """Read role, account type, opt-out, state and activity of *identity* at *now* (aware UTC)."""
    reader = _Reader(policy, identity, now)
    metadata = reader.metadata_admin()
    created_at = reader.created_at()
    baseline = policy.tracking_started_at

    recorded = reader.timestamp(
        lookup_path(metadata, split_path(policy.activity_key)),
        f"metadata_admin.{policy.activity_key}",
    )

    candidates = [
        (recorded, ActivitySource.RECORDED),
        (reader.extra_activity(extra_activity), ActivitySource.EXTRA),
        (created_at, ActivitySource.CREATED_AT),
        (min(baseline, now) if baseline is not None else None, ActivitySource.BASELINE),
    ]
    present = [(moment, source) for moment, source in candidates if moment is not None]
    last_activity_at, source = max(
        present,
        key=lambda pair: (pair[0], _SOURCE_PRIORITY[pair[1]]),
        default=(None, ActivitySource.UNKNOWN),
    )
    if last_activity_at is None:
        reader.note(
            "no_activity_timestamp",
            f"identity {identity.id} has no usable activity timestamp, created_at or "
            "tracking_started_at; at most revoking its credentials, which is reversible",
        )

    floor = max((moment for moment in (created_at, baseline) if moment is not None), default=None)
    kind_activity = reader.kind_activity(metadata, floor, last_activity_at)

    return IdentityFacts(
        role=reader.role(),
        account_type=reader.account_type(metadata),
        is_opted_out=reader.is_opted_out(metadata),
        is_deactivated=reader.is_deactivated(),
        last_activity_at=last_activity_at,
        activity_source=source,
        kind_activity=kind_activity,
        findings=tuple(reader.findings),
    )


class _Reader:
    def __init__(self, policy: Policy, identity: Identity, now: datetime) -> None:
        self.policy = policy
        self.identity = identity
        self.now = now
        self.tolerance = timedelta(seconds=policy.clock_skew_tolerance_seconds)
        self.findings: list[Finding] = []

    def note(self, code: str, message: str) -> None:
        self.findings.append(Finding(code=code, message=message))

    def metadata_admin(self) -> Mapping[str, Any]:
        metadata = self.identity.metadata_admin
        if metadata is None:
            return {}
        if not isinstance(metadata, Mapping):
            self.note(
                "metadata_admin_not_object",
                f"metadata_admin of identity {self.identity.id} is "
                f"{type_name(metadata)}, not an object; treating it as empty",
            )
            return {}
        return metadata

    def timestamp(
        self, value: object, where: str, *, skew_limit: timedelta | None = None
    ) -> datetime | None:
        if value is MISSING or value is None:
            return None
        subject = f"{where} of identity {self.identity.id}"
        if not isinstance(value, str):
            self.note(
                "timestamp_not_string",
                f"{subject} is {type_name(value)}, not an RFC 3339 string; treating it as missing",
            )
            return None
        try:
            moment = parse_timestamp(value)
        except ValueError:
            self.note(
                "invalid_timestamp",
                f"{subject} is not an RFC 3339 timestamp ({describe_value(value)}); "
                "treating it as missing",
            )
            return None
        if moment.year == _GO_ZERO_YEAR:
            self.note(
                "zero_timestamp",
                f"{subject} is Go's zero time ({value}); treating it as missing",
            )
            return None
        return self.bounded(moment, subject, skew_limit=skew_limit)

    def created_at(self) -> datetime | None:
        # Kratos stamps created_at with its database's clock, so a fresh
        # account may look created in the future.
        limit = timedelta(seconds=CREATED_AT_CLOCK_SKEW_LIMIT_SECONDS)
        # Identity.from_json keeps the raw value; a hand-built Identity may only
        # have the parsed attribute.
        raw = self.identity.raw.get("created_at", MISSING)
        if raw is MISSING and self.identity.created_at is not None:
            return self.bounded(
                self.identity.created_at,
                f"created_at of identity {self.identity.id}",
                skew_limit=limit,
            )
        return self.timestamp(raw, "created_at", skew_limit=limit)

    def extra_activity(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        subject = f"extra_activity for identity {self.identity.id}"
        try:
            moment = value.astimezone(UTC)
        except OverflowError:
            moment = None
        if moment is None or moment.year == _GO_ZERO_YEAR:
            # A caller's activity source may pass datetime.min or Go's zero time
            # to mean "no activity", and datetime.min cannot even move to UTC.
            self.note(
                "zero_timestamp",
                f"{subject} is {value.isoformat()}, a placeholder rather than an activity; "
                "treating it as missing",
            )
            return None
        return self.bounded(moment, subject)

    def bounded(
        self, moment: datetime, subject: str, *, skew_limit: timedelta | None = None
    ) -> datetime | None:
        # Clocks of the application, Kratos and the sweeper drift apart a little;
        # anything further ahead is bad data and must not postpone the ladder.
        if moment <= self.now:
            return moment
        ahead = moment - self.now
        if ahead <= self.tolerance:
            return self.now
        if skew_limit is not None and ahead <= skew_limit:
            self.note(
                "future_created_at",
                f"{subject} is {moment.isoformat()}, {ahead.total_seconds():.0f} seconds "
                "ahead of the sweeper's clock; counting it as now, because the Kratos "
                "database's clock runs ahead",
            )
            return self.now
        limit = (
            skew_limit.total_seconds() if skew_limit is not None else self.tolerance.total_seconds()
        )
        self.note(
            "future_timestamp",
            f"{subject} is {moment.isoformat()}, more than {limit:g} seconds in the future; "
            "treating it as missing",
        )
        return None

    def kind_activity(
        self,
        metadata: Mapping[str, Any],
        floor: datetime | None,
        account_activity: datetime | None,
    ) -> dict[CredentialKind, datetime]:
        key = self.policy.activity_by_kind_key
        records = lookup_path(metadata, split_path(key))
        if records is MISSING or records is None:
            records = {}
        elif not isinstance(records, Mapping):
            self.note(
                "activity_by_kind_not_object",
                f"metadata_admin.{key} of identity {self.identity.id} is "
                f"{type_name(records)}, not an object; every credential kind "
                "follows the account's activity",
            )
            records = {}

        activity = {}
        for kind in CredentialKind:
            recorded = self.timestamp(
                records.get(kind.value, MISSING), f"metadata_admin.{key}.{kind.value}"
            )
            if recorded is not None:
                activity[kind] = max(recorded, floor) if floor is not None else recorded
            elif account_activity is not None:
                activity[kind] = account_activity
        return activity

    def role(self) -> str:
        keys = split_path(self.policy.role_trait)
        value = lookup_path(self.identity.traits, keys)
        fallback = self.policy.default_role
        where = f"traits.{self.policy.role_trait} of identity {self.identity.id}"
        if value is MISSING or value is None:
            self.note("missing_role", f"{where} is missing; applying the default role {fallback!r}")
            return fallback
        if not isinstance(value, str):
            self.note(
                "invalid_role",
                f"{where} is {type_name(value)}, not a string; "
                f"applying the default role {fallback!r}",
            )
            return fallback
        if value not in self.policy.roles:
            self.note(
                "unknown_role",
                # The value is a trait, which may be personal data (an email
                # when role_trait points at one), so only its length is shown.
                f"{where} is not a role of the policy (a string of {len(value)} "
                "characters); "
                f"applying the default role {fallback!r}",
            )
            return fallback
        return value

    def account_type(self, metadata: Mapping[str, Any]) -> str:
        key = self.policy.account_type_key
        value = lookup_path(metadata, split_path(key))
        if value is MISSING or value is None or value == REGULAR_ACCOUNT_TYPE:
            return REGULAR_ACCOUNT_TYPE
        if isinstance(value, str) and value in self.policy.exempt_account_types:
            return value
        self.note(
            "unknown_account_type",
            f"metadata_admin.{key} of identity {self.identity.id} is {describe_value(value)}, "
            "not a known account type; sweeping it as 'regular'",
        )
        return REGULAR_ACCOUNT_TYPE

    def is_opted_out(self, metadata: Mapping[str, Any]) -> bool:
        key = self.policy.opt_out_key
        value = lookup_path(metadata, split_path(key))
        if value is MISSING or value is None or isinstance(value, bool):
            return value is True
        self.note(
            "invalid_opt_out",
            f"metadata_admin.{key} of identity {self.identity.id} is {describe_value(value)}, "
            "not true or false; the identity is not exempt",
        )
        return False

    def is_deactivated(self) -> bool:
        state = self.identity.state
        if state not in ("active", "inactive"):
            self.note(
                "unknown_state",
                f"state of identity {self.identity.id} is {describe_value(state)}; "
                "treating it as active",
            )
        return state == "inactive"
