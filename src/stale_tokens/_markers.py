"""Episode markers: which ladder steps were done in the current inactivity episode.

The markers live under one library-owned key of ``metadata_admin``
(``"stale_tokens"`` by default)::

    {
      "episode": "2026-03-01T09:30:00.000000Z",
      "steps": {"warn": "2026-05-23T02:00:00.000000Z", "revoke": "..."},
      "kinds": {"browser_session": {"episode": "...", "revoked_at": "..."}},
      "claim": {"step": "revoke", "run_id": "...", "claimed_at": "...", "episode": "..."}
    }

An episode is named by the effective last activity it is counted from, so any
new activity starts a new episode and the steps of the old one no longer
count. Per-kind revocations carry the episode of the kind's own last activity
because a kind can go unused while the account stays active. The claim is
written before a step is carried out, so a concurrent sweep can see that the
identity is being handled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeGuard

from ._decision import CredentialKind, Decision, Finding, Step
from ._models import Identity
from ._timestamps import format_timestamp, parse_timestamp, require_aware
from ._traits import describe_value

__all__ = [
    "DEFAULT_CLAIM_EXPIRY_SECONDS",
    "DEFAULT_MARKER_KEY",
    "EpisodeMarkers",
    "KindRevocation",
    "PendingClaim",
    "build_claim_markers",
    "build_step_markers",
    "read_markers",
]

DEFAULT_MARKER_KEY = "stale_tokens"
"""The ``metadata_admin`` key of the markers when `Policy.marker_key` keeps its default."""

DEFAULT_CLAIM_EXPIRY_SECONDS = 900.0
"""A claim older than this many seconds is taken to belong to a run that died."""

UNKNOWN_EPISODE = "unknown"


@dataclass(frozen=True, slots=True)
class KindRevocation:
    """The last revocation of one credential kind on its own.

    Attributes:
        episode: The kind's last activity the revocation was counted from.
        revoked_at: When the sweeper revoked the kind, aware UTC.
    """

    episode: str
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class PendingClaim:
    """A sweep run's note that it is about to carry out a step.

    Attributes:
        step: The step the run is carrying out.
        run_id: The run's id, chosen by the sweeper.
        claimed_at: When the claim was written, aware UTC.
        episode: The episode the step belongs to.
    """

    step: Step
    run_id: str
    claimed_at: datetime
    episode: str


@dataclass(frozen=True, slots=True)
class EpisodeMarkers:
    """The episode markers of one identity, as read by `read_markers`.

    Attributes:
        episode: The episode the recorded steps belong to, or ``None``.
        steps: When each step was done in `episode`.
        kinds: The last revocation of each credential kind on its own.
        claim: The pending claim, or ``None``.
        findings: Malformed parts, each treated as absent.
        raw: The marker object as stored, ``{}`` when absent or malformed.
    """

    episode: str | None = None
    steps: Mapping[Step, datetime] = field(default_factory=lambda: MappingProxyType({}))
    kinds: Mapping[CredentialKind, KindRevocation] = field(
        default_factory=lambda: MappingProxyType({})
    )
    claim: PendingClaim | None = None
    findings: tuple[Finding, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def steps_done_in(self, episode: str) -> Mapping[Step, datetime]:
        """Return the steps done in *episode*; none when the markers name another episode."""
        if self.episode is not None and is_same_episode(self.episode, episode):
            return self.steps
        return MappingProxyType({})

    def claim_by_another_run(
        self,
        run_id: str,
        now: datetime,
        *,
        claim_expiry_seconds: float = DEFAULT_CLAIM_EXPIRY_SECONDS,
    ) -> PendingClaim | None:
        """Return the claim of another run that is still fresh, or ``None``.

        Args:
            run_id: The id of the run asking.
            now: The current time, timezone-aware.
            claim_expiry_seconds: Age in seconds after which a claim is
                ignored, because the run that wrote it has likely died.

        Raises:
            ValueError: If *now* is naive.
        """
        require_aware(now, "now")
        claim = self.claim
        if claim is None or claim.run_id == run_id:
            return None
        if now - claim.claimed_at >= timedelta(seconds=claim_expiry_seconds):
            return None
        return claim


def is_same_episode(first: str, second: str) -> bool:
    """Compare two episode names as instants, or as strings when one is not a timestamp."""
    try:
        return parse_timestamp(first) == parse_timestamp(second)
    except ValueError:
        return first == second


def read_markers(identity: Identity, *, marker_key: str = DEFAULT_MARKER_KEY) -> EpisodeMarkers:
    """Read the episode markers of *identity*.

    Bad data never raises. A malformed part becomes a `Finding` and is
    treated as absent.

    Args:
        identity: The identity as the Kratos admin API returned it.
        marker_key: The ``metadata_admin`` key holding the markers
            (`Policy.marker_key`).
    """
    metadata = identity.metadata_admin
    value = metadata.get(marker_key) if isinstance(metadata, Mapping) else None
    if value is None:
        return EpisodeMarkers()

    findings: list[Finding] = []
    where = f"metadata_admin.{marker_key}"
    if not isinstance(value, Mapping):
        findings.append(_malformed(identity.id, where, value))
        return EpisodeMarkers(findings=tuple(findings))

    episode = value.get("episode")
    steps: dict[Step, datetime] = {}
    if episode is not None and not _is_episode(episode):
        findings.append(_malformed(identity.id, f"{where}.episode", episode))
        episode = None
    if episode is not None:
        steps = _read_steps(value.get("steps"), identity.id, f"{where}.steps", findings)

    return EpisodeMarkers(
        episode=episode,
        steps=MappingProxyType(steps),
        kinds=MappingProxyType(
            _read_kinds(value.get("kinds"), identity.id, f"{where}.kinds", findings)
        ),
        claim=_read_claim(value.get("claim"), identity.id, f"{where}.claim", findings),
        findings=tuple(findings),
        raw=value,
    )


def build_step_markers(
    identity: Identity,
    decision: Decision,
    *,
    done_at: datetime,
    marker_key: str = DEFAULT_MARKER_KEY,
) -> dict[str, Any]:
    """Build the marker object to store once the step of *decision* succeeded.

    Steps already recorded for the same episode are kept, with their first
    time; steps of an older episode are dropped. The account-level revocation
    is recorded with any later step that carried it out, and each kind in
    `Decision.revoke_kinds` with the episode of its own last activity. The
    claim is removed. Write the result with
    ``kratos.set_metadata_admin(identity_id, {marker_key: value})``.

    Args:
        identity: The identity the decision was made for, as read before acting.
        decision: The decision whose step and revocations succeeded.
        done_at: When they succeeded, timezone-aware.
        marker_key: The ``metadata_admin`` key holding the markers.

    Returns:
        A JSON-ready object for ``metadata_admin[marker_key]``.

    Raises:
        ValueError: If *done_at* is naive.
    """
    require_aware(done_at, "done_at")
    markers = read_markers(identity, marker_key=marker_key)
    stamp = format_timestamp(done_at)

    steps = {
        step.value: format_timestamp(at)
        for step, at in markers.steps_done_in(decision.episode).items()
    }
    if decision.step is not Step.NONE:
        steps.setdefault(decision.step.value, stamp)
    if decision.revokes_account:
        steps.setdefault(Step.REVOKE.value, stamp)

    kinds = {
        kind.value: {
            "episode": revocation.episode,
            "revoked_at": format_timestamp(revocation.revoked_at),
        }
        for kind, revocation in markers.kinds.items()
    }
    for kind in decision.revoke_kinds:
        episode = decision.kind_episodes.get(kind, decision.episode)
        kinds[kind.value] = {"episode": episode, "revoked_at": stamp}

    value = {key: item for key, item in markers.raw.items() if key not in _KNOWN_KEYS}
    value.update(episode=decision.episode, steps=steps, kinds=kinds)
    return value


def build_claim_markers(
    identity: Identity,
    decision: Decision,
    *,
    run_id: str,
    claimed_at: datetime,
    marker_key: str = DEFAULT_MARKER_KEY,
) -> dict[str, Any]:
    """Build the marker object with a claim on the step of *decision*.

    The sweeper writes it before acting, then reads the identity again: if
    another run's claim replaced it, that run is handling the identity. The
    recorded steps are left as they are.

    Args:
        identity: The identity the decision was made for.
        decision: The decision about to be carried out.
        run_id: The id of the sweep run.
        claimed_at: The current time, timezone-aware.
        marker_key: The ``metadata_admin`` key holding the markers.

    Returns:
        A JSON-ready object for ``metadata_admin[marker_key]``.

    Raises:
        ValueError: If *claimed_at* is naive or *run_id* is empty.
    """
    require_aware(claimed_at, "claimed_at")
    if not run_id:
        raise ValueError("run_id must be a non-empty string, such as a UUID of the sweep run")
    markers = read_markers(identity, marker_key=marker_key)

    value = dict(markers.raw)
    value["claim"] = {
        "step": decision.step.value,
        "run_id": run_id,
        "claimed_at": format_timestamp(claimed_at),
        "episode": decision.episode,
    }
    return value


_KNOWN_KEYS = frozenset({"episode", "steps", "kinds", "claim"})


def _read_steps(
    value: object, identity_id: str, where: str, findings: list[Finding]
) -> dict[Step, datetime]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        findings.append(_malformed(identity_id, where, value))
        return {}
    steps: dict[Step, datetime] = {}
    for name, stamp in value.items():
        step = _step(name)
        at = _moment(stamp)
        if step is None or step is Step.NONE or at is None:
            findings.append(_malformed(identity_id, f"{where}.{name}", stamp))
            continue
        steps[step] = at
    return steps


def _read_kinds(
    value: object, identity_id: str, where: str, findings: list[Finding]
) -> dict[CredentialKind, KindRevocation]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        findings.append(_malformed(identity_id, where, value))
        return {}
    kinds = {}
    for name, entry in value.items():
        kind = _kind(name)
        episode = entry.get("episode") if isinstance(entry, Mapping) else None
        revoked_at = _moment(entry.get("revoked_at")) if isinstance(entry, Mapping) else None
        if kind is None or not _is_episode(episode) or revoked_at is None:
            findings.append(_malformed(identity_id, f"{where}.{name}", entry))
            continue
        kinds[kind] = KindRevocation(episode=episode, revoked_at=revoked_at)
    return kinds


def _read_claim(
    value: object, identity_id: str, where: str, findings: list[Finding]
) -> PendingClaim | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        step = _step(value.get("step"))
        run_id = value.get("run_id")
        claimed_at = _moment(value.get("claimed_at"))
        episode = value.get("episode")
        if (
            step is not None
            and isinstance(run_id, str)
            and run_id
            and claimed_at is not None
            and _is_episode(episode)
        ):
            return PendingClaim(step=step, run_id=run_id, claimed_at=claimed_at, episode=episode)
    findings.append(_malformed(identity_id, where, value))
    return None


def _is_episode(value: object) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    return value == UNKNOWN_EPISODE or _moment(value) is not None


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value).astimezone(UTC)
    except ValueError:
        return None


def _step(value: object) -> Step | None:
    if not isinstance(value, str):
        return None
    try:
        return Step(value)
    except ValueError:
        return None


def _kind(value: object) -> CredentialKind | None:
    if not isinstance(value, str):
        return None
    try:
        return CredentialKind(value)
    except ValueError:
        return None


def _malformed(identity_id: str, where: str, value: object) -> Finding:
    text = describe_value(value)
    return Finding(
        code="malformed_markers",
        message=(
            f"{where} of identity {identity_id} is malformed ({text}); "
            "treating it as absent, so a step it recorded may happen again"
        ),
    )
