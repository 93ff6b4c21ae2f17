"""Thresholds of the policy: per role, per credential kind, and the optional ladder."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ._decision import CredentialKind
from ._errors import ConfigurationError

__all__ = [
    "BUILT_IN_WARNING",
    "DEFAULT_ROLES",
    "MAX_DAYS",
    "CredentialKindThresholds",
    "Ladder",
    "RolePolicy",
    "check_days",
]

MAX_DAYS = 36_525
"""The largest number of days a threshold may have, 100 years.

Python's datetime ends at year 9999, so a larger threshold could overflow
when it is added to a timestamp.
"""


class _BuiltInWarning(enum.Enum):
    BUILT_IN_WARNING = "the built-in warning lead time of the role"

    def __repr__(self) -> str:
        return "BUILT_IN_WARNING"


BUILT_IN_WARNING: Final = _BuiltInWarning.BUILT_IN_WARNING
"""The default of `RolePolicy.warn_before_days`: the built-in lead time of the role.

`Policy` replaces it by 2 days for ``admin``, 7 for ``user``, and no warning
for any other role, as a ``[roles.<name>]`` table without
``warn_before_days`` does in TOML.
"""


def check_days(value: object, name: str, *, allow_never: bool = False) -> float | None:
    """Return *value* as a positive number of days up to `MAX_DAYS`, or ``None`` for never.

    Raises:
        ConfigurationError: Naming *name* and the value, for a bool, a
            non-number, or a number that is not positive or exceeds `MAX_DAYS`.
    """
    if value is None and allow_never:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        expected = "a positive number of days"
        if allow_never:
            expected += ' or "never"'
        raise ConfigurationError(f"{name} must be {expected}, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of days, got {value!r}")
    if value > MAX_DAYS:
        never = ', or "never" for no limit' if allow_never else ""
        raise ConfigurationError(
            f"{name} must be at most {MAX_DAYS} days (100 years){never}, got {value!r}"
        )
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class RolePolicy:
    """How long an identity of one role may stay inactive.

    Attributes:
        revoke_after_days: Days of inactivity before every credential is
            revoked, or ``None`` for never: the role is then exempt from the
            whole ladder.
        warn_before_days: Lead time of the warning in days, so the warning is
            due at ``revoke_after_days - warn_before_days``; ``None`` sends no
            warning. Must be shorter than ``revoke_after_days``. Left out, it
            is `BUILT_IN_WARNING`: `Policy` uses the built-in lead time of
            the role it is given for (2 days for admin, 7 for user) and no
            warning for other roles, as TOML does.

    Raises:
        ConfigurationError: If a value is not a positive number of days or
            the warning lead time is not shorter than the threshold.
    """

    revoke_after_days: float | None
    warn_before_days: float | _BuiltInWarning | None = BUILT_IN_WARNING

    def __post_init__(self) -> None:
        # "never" is the TOML spelling, so a Python caller who copies it learns the fix.
        written: tuple[object, object] = (self.revoke_after_days, self.warn_before_days)
        if written[0] == "never":
            raise ConfigurationError(
                'revoke_after_days is "never", which is the TOML spelling; '
                "in Python pass None for a role that is never revoked"
            )
        if written[1] == "never":
            raise ConfigurationError(
                'warn_before_days is "never", which is the TOML spelling; '
                "in Python pass None for no warning"
            )
        revoke = check_days(self.revoke_after_days, "revoke_after_days", allow_never=True)
        object.__setattr__(self, "revoke_after_days", revoke)
        if isinstance(self.warn_before_days, _BuiltInWarning):
            return
        warn = check_days(self.warn_before_days, "warn_before_days", allow_never=True)
        if revoke is None and warn is not None:
            raise ConfigurationError(
                f"warn_before_days is {warn:g} but revoke_after_days is never; "
                "remove warn_before_days or set a revocation threshold"
            )
        if revoke is not None and warn is not None and warn >= revoke:
            raise ConfigurationError(
                f"warn_before_days must be shorter than revoke_after_days ({revoke:g}), "
                f"got {warn:g}"
            )
        object.__setattr__(self, "warn_before_days", warn)

    @property
    def warning_lead_days(self) -> float | None:
        """The warning lead time in days, or ``None`` for no warning.

        `BUILT_IN_WARNING` counts as no warning here; `Policy` resolves it
        for the roles it is given.
        """
        if isinstance(self.warn_before_days, _BuiltInWarning):
            return None
        return self.warn_before_days

    def with_built_in_warning(self, built_in: RolePolicy | None) -> RolePolicy:
        """Return this role with `BUILT_IN_WARNING` replaced by the lead time of *built_in*.

        Raises:
            ConfigurationError: If the built-in lead time is not shorter than
                `revoke_after_days`, naming the default and how to set it.
        """
        if not isinstance(self.warn_before_days, _BuiltInWarning):
            return self
        lead = built_in.warning_lead_days if built_in is not None else None
        revoke = self.revoke_after_days
        if revoke is None or lead is None:
            return RolePolicy(revoke_after_days=revoke, warn_before_days=None)
        if lead >= revoke:
            raise ConfigurationError(
                f"warn_before_days is not set, so it is the built-in {lead:g} days, which is "
                f"not shorter than revoke_after_days ({revoke:g}); set warn_before_days to "
                'fewer days, or to "never" in TOML (None in Python) for no warning'
            )
        return RolePolicy(revoke_after_days=revoke, warn_before_days=lead)

    @property
    def is_never_revoked(self) -> bool:
        """Whether identities of this role are never revoked."""
        return self.revoke_after_days is None


DEFAULT_ROLES: Mapping[str, RolePolicy] = MappingProxyType(
    {
        "admin": RolePolicy(revoke_after_days=7, warn_before_days=2),
        "user": RolePolicy(revoke_after_days=90, warn_before_days=7),
        "service": RolePolicy(revoke_after_days=None),
    }
)
"""The built-in roles: admin 7 days (warned 2 before), user 90 (warned 7 before), service never."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialKindThresholds:
    """Days a credential kind may go unused before it is revoked on its own.

    Each value is a positive number of days, or ``None`` for never. When an
    identity passes its role's threshold, every kind that is not never is
    revoked. A kind is also revoked on its own once unused for its threshold.

    Raises:
        ConfigurationError: If a value is not a positive number of days.
    """

    browser_session: float | None = 90
    oauth2: float | None = 180
    personal_access_token: float | None = 365

    def __post_init__(self) -> None:
        for kind in CredentialKind:
            days = check_days(getattr(self, kind.value), kind.value, allow_never=True)
            object.__setattr__(self, kind.value, days)

    def revoke_after_days(self, kind: CredentialKind) -> float | None:
        """Return the threshold of *kind* in days, or ``None`` for never."""
        days: float | None = getattr(self, kind.value)
        return days

    @property
    def revocable_kinds(self) -> frozenset[CredentialKind]:
        """The kinds whose threshold is not never."""
        return frozenset(
            kind for kind in CredentialKind if self.revoke_after_days(kind) is not None
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Ladder:
    """The optional lifecycle ladder; days are counted from the last activity.

    Revocation stays at each role's ``revoke_after_days``. `warn_after_days`
    and `suspend_after_days` apply to a role only when they fall before its
    revocation day. Otherwise the role's own warning lead time is used, and
    there is no suspension. The later steps apply only when they fall after
    the role's revocation day. Any step may be ``None`` to leave it out.

    Attributes:
        warn_after_days: The warning, 30 days by default.
        suspend_after_days: Suspension of new actions, 60 days by default.
        re_engage_after_days: The "we miss you" message, 180 days by default.
        deactivate_after_days: Kratos ``state: inactive``, 365 days by default.
        delete_after_days: The deletion notice, 730 days by default. Deletion
            itself follows `delete_notice_days` after the notice.
        delete_enabled: Whether the notice and deletion happen at all; off by
            default.
        delete_notice_days: Minimum days between the deletion notice and the
            deletion, 30 by default.

    Raises:
        ConfigurationError: If a value is not a positive number of days, or
            the steps are not in ladder order.
    """

    warn_after_days: float | None = 30
    suspend_after_days: float | None = 60
    re_engage_after_days: float | None = 180
    deactivate_after_days: float | None = 365
    delete_after_days: float | None = 730
    delete_enabled: bool = False
    delete_notice_days: float = 30

    def __post_init__(self) -> None:
        previous: tuple[str, float] | None = None
        for name in _LADDER_DAY_FIELDS:
            days = check_days(getattr(self, name), name, allow_never=True)
            object.__setattr__(self, name, days)
            if days is None:
                continue
            if previous is not None and days <= previous[1]:
                raise ConfigurationError(
                    f"{name} must be later than {previous[0]} ({previous[1]:g}), got {days:g}; "
                    "the ladder steps must be in increasing order"
                )
            previous = (name, days)

        if not isinstance(self.delete_enabled, bool):
            raise ConfigurationError(
                f"delete_enabled must be true or false, got {self.delete_enabled!r}"
            )
        if self.delete_enabled and self.delete_after_days is None:
            raise ConfigurationError(
                'delete_enabled is true but delete_after_days is "never"; set both or neither'
            )
        notice = check_days(self.delete_notice_days, "delete_notice_days")
        object.__setattr__(self, "delete_notice_days", notice)


_LADDER_DAY_FIELDS = (
    "warn_after_days",
    "suspend_after_days",
    "re_engage_after_days",
    "deactivate_after_days",
    "delete_after_days",
)
