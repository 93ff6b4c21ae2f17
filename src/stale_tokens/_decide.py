"""`Policy.decide`: the ladder step due for one identity, computed without I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from ._decision import CredentialKind, Decision, Step
from ._facts import IdentityFacts, read_facts
from ._markers import UNKNOWN_EPISODE, EpisodeMarkers, is_same_episode, read_markers
from ._models import Identity
from ._timestamps import format_timestamp, require_aware

if TYPE_CHECKING:
    from ._policy import Policy
    from ._thresholds import RolePolicy

__all__ = ["decide"]

_DAY = timedelta(days=1)

# One moment per ladder step; None while it cannot be scheduled yet, which is
# the case of a deletion whose notice has not been recorded.
_Timeline = list[tuple[Step, datetime | None]]


def decide(
    policy: Policy,
    identity: Identity | Mapping[str, Any],
    now: datetime,
    *,
    extra_activity: datetime | None = None,
) -> Decision:
    """Apply *policy* to *identity* at *now*; see `Policy.decide`."""
    identity = as_identity(identity)
    require_aware(now, "now")
    if extra_activity is not None:
        require_aware(extra_activity, "extra_activity")
    now = now.astimezone(UTC)

    facts = read_facts(policy, identity, now, extra_activity)
    markers = read_markers(identity, marker_key=policy.marker_key)
    last_activity_at = facts.last_activity_at or now
    episode = (
        UNKNOWN_EPISODE if facts.last_activity_at is None else format_timestamp(last_activity_at)
    )
    role_policy = policy.role_policy(facts.role)
    exempt_reason = _exempt_reason(policy, facts, role_policy)

    due = _due(
        policy,
        facts,
        markers,
        role_policy,
        episode=episode,
        is_exempt=exempt_reason is not None,
        now=now,
    )

    return Decision(
        identity_id=identity.id,
        step=due.step,
        days_inactive=max(0, (now - last_activity_at) // _DAY),
        last_activity_at=last_activity_at,
        activity_source=facts.activity_source,
        exempt_reason=exempt_reason,
        findings=facts.findings + markers.findings,
        role=facts.role,
        account_type=facts.account_type,
        revoke_kinds=due.revoke_kinds,
        next_step=due.next_step,
        next_step_at=due.next_step_at,
        episode=episode,
        policy_name=policy.name,
        kind_episodes=_kind_episodes(facts, due.revoke_kinds, episode),
        revoke_at=_revoke_at(facts, role_policy, is_exempt=exempt_reason is not None, now=now),
    )


def _revoke_at(
    facts: IdentityFacts, role_policy: RolePolicy, *, is_exempt: bool, now: datetime
) -> datetime | None:
    revoke = role_policy.revoke_after_days
    if is_exempt or revoke is None or facts.is_deactivated:
        return None
    if facts.last_activity_at is None:
        return now
    return facts.last_activity_at + timedelta(days=revoke)


def as_identity(identity: Identity | Mapping[str, Any]) -> Identity:
    """Return *identity*, reading a Kratos JSON object with `Identity.from_json`.

    Raises:
        ValueError: If a mapping has no string ``id``, or *identity* is neither.
    """
    if isinstance(identity, Identity):
        return identity
    if isinstance(identity, Mapping):
        try:
            return Identity.from_json(identity)
        except ValueError as exc:
            raise ValueError(
                f"cannot decide on this identity: {exc}; pass the identity object exactly "
                "as the Kratos admin API returns it, which always has an 'id'"
            ) from None
    raise ValueError(
        "identity must be an Identity or the JSON object the Kratos admin API returns, "
        f"got {type(identity).__name__}"
    )


class _Due(NamedTuple):
    step: Step
    next_step: Step | None
    next_step_at: datetime | None
    revoke_kinds: frozenset[CredentialKind]


_NOTHING_DUE = _Due(Step.NONE, None, None, frozenset())


def _due(
    policy: Policy,
    facts: IdentityFacts,
    markers: EpisodeMarkers,
    role_policy: RolePolicy,
    *,
    episode: str,
    is_exempt: bool,
    now: datetime,
) -> _Due:
    if is_exempt:
        return _NOTHING_DUE

    start = facts.last_activity_at
    if start is None:
        # Without any timestamp the identity cannot be placed on the ladder, and
        # revoking is the one step a user undoes by signing in again.
        if facts.is_deactivated or Step.REVOKE in markers.steps_done_in(UNKNOWN_EPISODE):
            return _NOTHING_DUE
        return _Due(Step.REVOKE, None, None, policy.credential_kinds.revocable_kinds)

    done = markers.steps_done_in(episode)
    timeline = _timeline(policy, role_policy, facts, start, done)
    step, next_step, next_step_at = _pick(timeline, done, now, policy)
    revoke_kinds = _revoke_kinds(policy, facts, markers, step=step, done=done, now=now)
    return _Due(step, next_step, next_step_at, revoke_kinds)


def _kind_episodes(
    facts: IdentityFacts, kinds: frozenset[CredentialKind], episode: str
) -> Mapping[CredentialKind, str]:
    episodes = {}
    for kind in kinds:
        last_used = facts.kind_activity.get(kind)
        if last_used is None or last_used == facts.last_activity_at:
            episodes[kind] = episode
        else:
            episodes[kind] = format_timestamp(last_used)
    return MappingProxyType(episodes)


def _exempt_reason(policy: Policy, facts: IdentityFacts, role_policy: RolePolicy) -> str | None:
    if facts.is_opted_out:
        return f"metadata_admin.{policy.opt_out_key} is true"
    if facts.account_type in policy.exempt_account_types:
        return f"account type {facts.account_type!r} is exempt"
    if role_policy.is_never_revoked:
        return f"role {facts.role!r} is never revoked"
    return None


def _schedule(
    policy: Policy, role_policy: RolePolicy, *, is_deactivated: bool
) -> list[tuple[Step, float]]:
    """List the ladder steps of one role as (step, days after the last activity)."""
    revoke = role_policy.revoke_after_days
    if revoke is None:
        return []
    ladder = policy.ladder
    steps: list[tuple[Step, float]] = []

    warn: float | None = None
    if ladder is not None and ladder.warn_after_days is not None:
        warn = ladder.warn_after_days if ladder.warn_after_days < revoke else None
    lead = role_policy.warning_lead_days
    if warn is None and lead is not None:
        warn = revoke - lead
    if warn is not None:
        steps.append((Step.WARN, warn))
    if ladder is not None and ladder.suspend_after_days is not None:
        suspend = ladder.suspend_after_days
        if (warn is None or warn < suspend) and suspend < revoke:
            steps.append((Step.SUSPEND, suspend))
    steps.append((Step.REVOKE, revoke))

    if ladder is not None:
        later = [
            (Step.RE_ENGAGE, ladder.re_engage_after_days),
            (Step.DEACTIVATE, ladder.deactivate_after_days),
            (Step.DELETE_NOTICE, ladder.delete_after_days if ladder.delete_enabled else None),
        ]
        steps.extend((step, days) for step, days in later if days is not None and days > revoke)

    # Kratos refuses every session of an inactive identity (whoami returns 401),
    # so only the deletion steps remain. Reactivation by an administrator puts
    # the identity back on the ladder where its markers left it.
    if is_deactivated:
        steps = [(step, days) for step, days in steps if step is Step.DELETE_NOTICE]
    return steps


def _timeline(
    policy: Policy,
    role_policy: RolePolicy,
    facts: IdentityFacts,
    start: datetime,
    done: Mapping[Step, datetime],
) -> _Timeline:
    timeline: _Timeline = [
        (step, start + timedelta(days=days))
        for step, days in _schedule(policy, role_policy, is_deactivated=facts.is_deactivated)
    ]
    if timeline and timeline[-1][0] is Step.DELETE_NOTICE and policy.ladder is not None:
        # Deletion always waits delete_notice_days after a recorded notice.
        notice_at = done.get(Step.DELETE_NOTICE)
        delete_at = None
        if notice_at is not None:
            notice_days = timedelta(days=policy.ladder.delete_notice_days)
            delete_at = max(timeline[-1][1] or notice_at, notice_at + notice_days)
        timeline.append((Step.DELETE, delete_at))
    return timeline


def _pick(
    timeline: _Timeline, done: Mapping[Step, datetime], now: datetime, policy: Policy
) -> tuple[Step, Step | None, datetime | None]:
    """Pick the most advanced due step not done yet, and the step after it with its time."""
    due = [step for step, at in timeline if at is not None and at <= now]
    reached = max((step.rank for step in done), default=Step.NONE.rank)
    step = due[-1] if due and due[-1].rank > reached else Step.NONE
    reached = max(reached, step.rank)

    for next_step, at in timeline:
        if next_step.rank <= reached:
            continue
        if at is None and policy.ladder is not None:
            # Only a deletion waits on its notice, which is being sent now.
            return step, next_step, now + timedelta(days=policy.ladder.delete_notice_days)
        return step, next_step, at
    return step, None, None


def _revoke_kinds(
    policy: Policy,
    facts: IdentityFacts,
    markers: EpisodeMarkers,
    *,
    step: Step,
    done: Mapping[Step, datetime],
    now: datetime,
) -> frozenset[CredentialKind]:
    if facts.is_deactivated:
        return frozenset()
    thresholds = policy.credential_kinds
    if step.rank >= Step.REVOKE.rank and Step.REVOKE not in done:
        return thresholds.revocable_kinds

    kinds = set()
    for kind in thresholds.revocable_kinds:
        days = thresholds.revoke_after_days(kind)
        last_used = facts.kind_activity.get(kind)
        if days is None or last_used is None or now - last_used < timedelta(days=days):
            continue
        revocation = markers.kinds.get(kind)
        if revocation is not None and is_same_episode(
            revocation.episode, format_timestamp(last_used)
        ):
            continue
        kinds.add(kind)
    return frozenset(kinds)
