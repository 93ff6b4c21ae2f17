"""The inactivity policy: which identities are swept, by which thresholds, and how."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from os import PathLike
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._decide import decide
from ._errors import ConfigurationError
from ._facts import REGULAR_ACCOUNT_TYPE
from ._markers import DEFAULT_MARKER_KEY
from ._policy_loading import policy_from_mapping, policy_from_toml
from ._thresholds import DEFAULT_ROLES, CredentialKindThresholds, Ladder, RolePolicy
from ._traits import split_path

if TYPE_CHECKING:
    from ._decision import Decision
    from ._models import Identity

__all__ = [
    "DEFAULT_CLOCK_SKEW_TOLERANCE_SECONDS",
    "DEFAULT_EXEMPT_ACCOUNT_TYPES",
    "Policy",
]

DEFAULT_POLICY_NAME = "default"
DEFAULT_ROLE = "user"
DEFAULT_ROLE_TRAIT = "role"
DEFAULT_ACTIVITY_KEY = "last_activity_at"
DEFAULT_ACTIVITY_BY_KIND_KEY = "last_activity_by_kind"
DEFAULT_ACCOUNT_TYPE_KEY = "account_type"
DEFAULT_OPT_OUT_KEY = "skip_stale_revocation"
DEFAULT_CLOCK_SKEW_TOLERANCE_SECONDS = 300.0
MAX_CLOCK_SKEW_TOLERANCE_SECONDS = 86_400
DEFAULT_EXEMPT_ACCOUNT_TYPES = frozenset({"service", "trusted_integration"})


def _check_key(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a dotted key path string, got {value!r}")
    try:
        return split_path(value)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be a dotted key path such as 'last_activity_at', got {value!r}"
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The rules that decide which inactive identities lose which credentials, and when.

    A policy is immutable and validated when built. `decide` applies it to
    one identity and does no I/O.

    Attributes:
        name: Shown in audit events, ``"default"`` by default.
        roles: Role name to thresholds. Roles given here are added to, or
            replace, the built-in `DEFAULT_ROLES` (admin, user, service). A
            `RolePolicy` without ``warn_before_days`` gets the built-in
            warning of its role name, as a TOML ``[roles.<name>]`` table does.
        default_role: The role of identities whose role trait is missing or
            names no configured role, ``"user"`` by default.
        role_trait: Dotted path of the role inside ``traits``, ``"role"`` by
            default.
        credential_kinds: Per-kind thresholds in days.
        ladder: The lifecycle ladder, or ``None`` (the default) for warning
            and revocation only.
        exempt_account_types: Values of ``metadata_admin.account_type`` that
            are never swept, stored as a frozenset; ``"regular"`` (or no
            value) is always swept. Defaults to service and trusted_integration.
        tracking_started_at: When activity tracking was rolled out, aware, or
            ``None``. Inactivity is counted from this moment at the earliest,
            so enabling the library does not act on every existing account.
        clock_skew_tolerance_seconds: How far in the future a timestamp may
            be and still count (clamped to now), 300 seconds by default.
            Timestamps further ahead are treated as missing.
        activity_key: Dotted path in ``metadata_admin`` of the last activity
            the tracker writes, ``"last_activity_at"`` by default.
        activity_by_kind_key: Dotted path in ``metadata_admin`` of the object
            of per-kind last activity, ``"last_activity_by_kind"`` by default.
        account_type_key: Dotted path in ``metadata_admin`` of the account
            type, ``"account_type"`` by default.
        opt_out_key: Dotted path in ``metadata_admin`` of the per-identity
            opt-out flag, ``"skip_stale_revocation"`` by default.
        marker_key: Top-level ``metadata_admin`` key that contains the episode
            markers, ``"stale_tokens"`` by default.

    Raises:
        ConfigurationError: Naming the field and the value, if any value is
            invalid, or if a ladder step after revocation falls on or before
            the revocation day of every role, so that no identity reaches it.
    """

    name: str = DEFAULT_POLICY_NAME
    roles: Mapping[str, RolePolicy] = field(default_factory=lambda: DEFAULT_ROLES)
    default_role: str = DEFAULT_ROLE
    role_trait: str = DEFAULT_ROLE_TRAIT
    credential_kinds: CredentialKindThresholds = field(default_factory=CredentialKindThresholds)
    ladder: Ladder | None = None
    exempt_account_types: Set[str] = DEFAULT_EXEMPT_ACCOUNT_TYPES
    tracking_started_at: datetime | None = None
    clock_skew_tolerance_seconds: float = DEFAULT_CLOCK_SKEW_TOLERANCE_SECONDS
    activity_key: str = DEFAULT_ACTIVITY_KEY
    activity_by_kind_key: str = DEFAULT_ACTIVITY_BY_KIND_KEY
    account_type_key: str = DEFAULT_ACCOUNT_TYPE_KEY
    opt_out_key: str = DEFAULT_OPT_OUT_KEY
    marker_key: str = DEFAULT_MARKER_KEY

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "roles", _merge_roles(self.roles))
        if self.default_role not in self.roles:
            raise ConfigurationError(
                f"default_role {self.default_role!r} is not a configured role; "
                f"choose one of {sorted(self.roles)}"
            )
        if not isinstance(self.credential_kinds, CredentialKindThresholds):
            raise ConfigurationError(
                "credential_kinds must be a CredentialKindThresholds, "
                f"got {type(self.credential_kinds).__name__}"
            )
        if self.ladder is not None and not isinstance(self.ladder, Ladder):
            raise ConfigurationError(
                f"ladder must be a Ladder or None, got {type(self.ladder).__name__}"
            )
        if self.ladder is not None:
            _check_later_steps(self.ladder, self.roles)
        object.__setattr__(
            self, "exempt_account_types", _check_account_types(self.exempt_account_types)
        )
        object.__setattr__(self, "tracking_started_at", _check_baseline(self.tracking_started_at))
        object.__setattr__(
            self,
            "clock_skew_tolerance_seconds",
            _check_tolerance(self.clock_skew_tolerance_seconds),
        )
        for key_field in _KEY_FIELDS:
            _check_key(getattr(self, key_field), key_field)
        if "." in self.marker_key:
            raise ConfigurationError(
                f"marker_key must be a single top-level key without dots, got {self.marker_key!r}"
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Policy:
        """Build a policy from plain data, such as a parsed TOML or JSON document.

        Numbers of days may be integers or floats, and ``"never"`` means
        ``None``. A ``[roles.<name>]`` table changes only the keys it sets of a
        built-in role of that name. A ``[ladder]`` table, even empty, turns the
        ladder on.

        Raises:
            ConfigurationError: For an unknown key (naming the valid keys) or an
                invalid value (naming the dotted field and the value).
        """
        return policy_from_mapping(cls, mapping)

    @classmethod
    def from_toml(cls, path: str | PathLike[str]) -> Policy:
        """Read a policy from a TOML file; see `from_mapping` for the keys.

        Raises:
            ConfigurationError: If the file cannot be read, is not valid TOML,
                or contains an invalid policy.
        """
        return policy_from_toml(cls, path)

    def role_policy(self, role: str) -> RolePolicy:
        """Return the thresholds of *role*, or of `default_role` when it is not configured."""
        if role in self.roles:
            return self.roles[role]
        return self.roles[self.default_role]

    def decide(
        self,
        identity: Identity | Mapping[str, Any],
        now: datetime,
        *,
        extra_activity: datetime | None = None,
    ) -> Decision:
        """Decide which step is due for *identity* at *now*.

        Pure: it reads the identity, including its episode markers, and does
        no I/O. Bad data inside the identity never raises: it becomes a
        `Finding` in the decision.

        Args:
            identity: The identity as the Kratos admin API returned it: an
                `Identity`, or its JSON object, which is read with
                `Identity.from_json`.
            now: The moment of the sweep, timezone-aware.
            extra_activity: A last activity from another source, such as the
                application's audit table, timezone-aware; ``None`` when the
                caller has none.

        Returns:
            The step that is due and not yet done in the current episode, the
            credential kinds to revoke, and what comes next.

        Raises:
            ValueError: If *now* or *extra_activity* is a naive datetime, or
                *identity* is a mapping without a string ``id``.
        """
        return decide(self, identity, now, extra_activity=extra_activity)


_KEY_FIELDS = (
    "role_trait",
    "activity_key",
    "activity_by_kind_key",
    "account_type_key",
    "opt_out_key",
    "marker_key",
)


def _check_name(value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"name must be a non-empty string, got {value!r}")


def _merge_roles(roles: object) -> Mapping[str, RolePolicy]:
    if not isinstance(roles, Mapping):
        raise ConfigurationError(
            f"roles must be a mapping of role name to RolePolicy, got {type(roles).__name__}"
        )
    merged = dict(DEFAULT_ROLES)
    for name, role in roles.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"roles keys must be non-empty role names, got {name!r}")
        if not isinstance(role, RolePolicy):
            raise ConfigurationError(
                f"roles.{name} must be a RolePolicy, got {type(role).__name__}"
            )
        try:
            merged[name] = role.with_built_in_warning(DEFAULT_ROLES.get(name))
        except ConfigurationError as exc:
            raise ConfigurationError(f"roles.{name}.{exc}") from None
    return MappingProxyType(merged)


def _check_later_steps(ladder: Ladder, roles: Mapping[str, RolePolicy]) -> None:
    """Reject a step after revocation that no role ever reaches.

    A step applies to a role only when it falls after the role's revocation
    day, so a step on or before every revocation day would silently never
    happen. A step that applies to some roles only is valid.
    """
    revoke_days = {
        name: role.revoke_after_days
        for name, role in roles.items()
        if role.revoke_after_days is not None
    }
    if not revoke_days:
        return
    earliest = min(revoke_days.values())
    later_steps = [
        ("re_engage_after_days", ladder.re_engage_after_days),
        ("deactivate_after_days", ladder.deactivate_after_days),
        ("delete_after_days", ladder.delete_after_days if ladder.delete_enabled else None),
    ]
    for name, days in later_steps:
        if days is not None and days <= earliest:
            listed = ", ".join(f"{role} {revoke:g}" for role, revoke in sorted(revoke_days.items()))
            raise ConfigurationError(
                f"ladder.{name} is {days:g} days, on or before the revocation day of every "
                f"role ({listed}), so no identity would ever reach it; set it later than "
                f"{earliest:g} days (later than {max(revoke_days.values()):g} to reach every "
                'role), or to "never" (None in Python) to leave the step out'
            )


def _check_account_types(values: object) -> frozenset[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ConfigurationError(
            f"exempt_account_types must be a collection of strings, got {values!r}"
        )
    types = frozenset(values)
    for value in types:
        if not isinstance(value, str) or not value:
            raise ConfigurationError(
                f"exempt_account_types must contain non-empty strings, got {value!r}"
            )
    if REGULAR_ACCOUNT_TYPE in types:
        raise ConfigurationError(
            "exempt_account_types must not contain 'regular', which would exempt every "
            "identity without an account_type; use a role whose revoke_after_days is "
            "never instead"
        )
    return types


def _check_baseline(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ConfigurationError(
            f"tracking_started_at must be a timezone-aware datetime or None, got {value!r}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigurationError(
            f"tracking_started_at must be timezone-aware, got the naive {value.isoformat()}; "
            "add a UTC offset such as Z"
        )
    return value.astimezone(UTC)


def _check_tolerance(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"clock_skew_tolerance_seconds must be a number of seconds, got {value!r}"
        )
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(
            f"clock_skew_tolerance_seconds must be zero or more seconds, got {value!r}"
        )
    if value > MAX_CLOCK_SKEW_TOLERANCE_SECONDS:
        raise ConfigurationError(
            "clock_skew_tolerance_seconds must be at most "
            f"{MAX_CLOCK_SKEW_TOLERANCE_SECONDS} seconds (one day), got {value!r}; "
            "fix the clocks instead, because a future timestamp postpones the ladder"
        )
    return float(value)
