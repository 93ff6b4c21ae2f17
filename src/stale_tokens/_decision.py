"""The result of `Policy.decide`: the step due for one identity, and why."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

__all__ = ["ActivitySource", "CredentialKind", "Decision", "Finding", "Step"]


class Step(enum.StrEnum):
    """A step of the inactivity ladder, in the order an identity reaches them.

    New activity starts a new episode, and the ladder starts over. Every
    step but `DELETE` can be undone: a revoked user signs in again, and a
    deactivated identity needs an administrator to reactivate it first.
    """

    NONE = "none"
    WARN = "warn"
    SUSPEND = "suspend"
    REVOKE = "revoke"
    RE_ENGAGE = "re_engage"
    DEACTIVATE = "deactivate"
    DELETE_NOTICE = "delete_notice"
    DELETE = "delete"

    @property
    def rank(self) -> int:
        """The position on the ladder; `NONE` is 0 and `DELETE` the highest."""
        return _STEP_RANKS[self]


_STEP_RANKS = {step: rank for rank, step in enumerate(Step)}


class ActivitySource(enum.StrEnum):
    """The source of the timestamp that became the identity's effective last activity."""

    RECORDED = "recorded"
    """The activity key in ``metadata_admin`` that the tracker writes."""
    EXTRA = "extra"
    """The ``extra_activity`` the caller passed, for example from an audit table."""
    CREATED_AT = "created_at"
    """The identity's ``created_at``: it never had recorded activity after creation."""
    BASELINE = "baseline"
    """The policy's ``tracking_started_at``: activity before it was never recorded."""
    UNKNOWN = "unknown"
    """No usable timestamp at all; `Decision.last_activity_at` is then the sweep time."""


class CredentialKind(enum.StrEnum):
    """A kind of credential the sweeper can revoke."""

    BROWSER_SESSION = "browser_session"
    """Kratos sessions: the ``ory_kratos_session`` cookie or an ``X-Session-Token``."""
    OAUTH2 = "oauth2"
    """Hydra consent sessions, with the access and refresh tokens issued under them."""
    PERSONAL_ACCESS_TOKEN = "personal_access_token"  # noqa: S105 - a kind name, not a secret
    """Tokens the application issues and stores itself."""


@dataclass(frozen=True, slots=True)
class Finding:
    """A piece of bad or surprising data that `Policy.decide` worked around.

    Attributes:
        code: A stable identifier such as ``"invalid_timestamp"``; the policy
            reference lists every code.
        message: A sentence naming the identity id, the value and the rule
            applied. It never contains trait values such as an email address.
    """

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of `Policy.decide` for one identity at one moment.

    Attributes:
        identity_id: The identity's id.
        step: The most advanced ladder step that is due and not yet done in
            the current episode, or `Step.NONE`.
        days_inactive: Whole days since `last_activity_at`, never negative.
        last_activity_at: The effective last activity, aware UTC.
        activity_source: Which timestamp `last_activity_at` came from.
        exempt_reason: Why the identity is never swept, or ``None``. An exempt
            identity always has `step` `Step.NONE` and no `revoke_kinds`.
        findings: Bad data found on the identity and how it was handled.
        role: The role whose thresholds applied.
        account_type: The account type read from ``metadata_admin``, or
            ``"regular"`` when absent or unknown.
        revoke_kinds: The credential kinds to revoke now. For `Step.REVOKE`,
            and for later steps when this episode has no revocation yet, it
            lists every kind whose threshold is not never. With any step,
            `Step.NONE` included, it lists a kind that went unused for its own
            threshold.
        next_step: The step after `step` on this identity's ladder, or ``None``.
        next_step_at: When `next_step` becomes due if the identity stays
            inactive, aware UTC, or ``None``.
        episode: The name of the inactivity episode, the RFC 3339 form of
            `last_activity_at` (``"unknown"`` without any timestamp).
        policy_name: `Policy.name`, for audit events.
        kind_episodes: For each kind in `revoke_kinds`, the RFC 3339 form of
            the kind's own last activity. The episode markers record it, so a
            kind is revoked once per period of disuse.
        revoke_at: When the account-level revocation of this episode is due,
            aware UTC: `last_activity_at` plus the role's
            ``revoke_after_days``, or the sweep time for an identity without
            any timestamp. It stays set after the revocation is done.
            ``None`` when the identity is exempt (its role never revoked
            included) or deactivated in Kratos. With a ladder, `next_step`
            of a warning is the suspension, so a message that names the
            revocation date reads this field.
    """

    identity_id: str
    step: Step
    days_inactive: int
    last_activity_at: datetime
    activity_source: ActivitySource
    exempt_reason: str | None
    findings: tuple[Finding, ...]
    role: str
    account_type: str
    revoke_kinds: frozenset[CredentialKind]
    next_step: Step | None
    next_step_at: datetime | None
    episode: str
    policy_name: str
    # Left out of the hash so that decisions stay hashable.
    kind_episodes: Mapping[CredentialKind, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    revoke_at: datetime | None = None

    @property
    def is_exempt(self) -> bool:
        """Whether the identity is never swept under this policy."""
        return self.exempt_reason is not None

    @property
    def has_action(self) -> bool:
        """Whether the sweeper has something to do: a step, a revocation, or both."""
        return self.step is not Step.NONE or bool(self.revoke_kinds)

    @property
    def revokes_account(self) -> bool:
        """Whether this decision carries the account-level revocation of the episode.

        True when `step` is `Step.REVOKE` or later and `revoke_kinds` is not
        empty. False when only kinds unused for their own threshold are revoked.
        """
        return self.step.rank >= Step.REVOKE.rank and bool(self.revoke_kinds)
