"""The act phase for one identity: re-read, re-check, claim, act, record, audit."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ._audit import (
    EVENT_DEACTIVATED,
    EVENT_DELETE_NOTICE_SENT,
    EVENT_DELETED,
    EVENT_FAILED,
    EVENT_RE_ENGAGEMENT_SENT,
    EVENT_SKIPPED_CHANGED,
    EVENT_SKIPPED_CLAIMED,
    EVENT_SKIPPED_NO_RECIPIENT,
    EVENT_SKIPPED_RECENT_ACTIVITY,
    EVENT_SUSPENDED,
    EVENT_SUSPENSION_CLEARED,
    EVENT_TOKENS_REVOKED,
    EVENT_WARNING_SENT,
    OUTCOME_FAILURE,
    OUTCOME_SKIPPED,
    OUTCOME_SUCCESS,
    AuditEvent,
    AuditSink,
)
from ._decision import CredentialKind, Decision, Step
from ._errors import NotFoundError, StaleTokensError
from ._extra_activity import ExtraActivitySource
from ._markers import build_claim_markers, build_step_markers, read_markers
from ._models import Identity
from ._notify import Notification, Notifier
from ._notify_errors import MissingRecipientError
from ._policy import Policy
from ._ports import KratosSweepClient
from ._report import ActedIdentity, FailedIdentity, ReportBuilder, SkippedIdentity
from ._revoke import Revoker
from ._suspend import clear_suspension_patch, suspended_at_of, suspension_patch
from ._timestamps import format_timestamp

__all__ = ["DueEntry", "IdentityActor"]

logger = logging.getLogger("stale_tokens.sweep")

NOTIFICATION_EVENTS = {
    Step.WARN: EVENT_WARNING_SENT,
    Step.RE_ENGAGE: EVENT_RE_ENGAGEMENT_SENT,
    Step.DELETE_NOTICE: EVENT_DELETE_NOTICE_SENT,
}
DESTRUCTIVE_STEPS = frozenset({Step.REVOKE, Step.DEACTIVATE, Step.DELETE})
LABEL_REVOKE_KINDS = "revoke_kinds"
LABEL_CLEAR_SUSPENSION = "clear_suspension"
# A notifier or token store may put the recipient's address in its error,
# and the error goes into logs, the report and audit events.
_EMAIL_ADDRESS = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+")


@dataclass(frozen=True, slots=True)
class DueEntry:
    """A compact record of one identity with something due; the plan keeps it, not the identity.

    Attributes:
        label: The name the report and audit events use: the step value,
            ``"revoke_kinds"`` for a revocation of single credential kinds, or
            ``"clear_suspension"``.
    """

    identity_id: str
    label: str
    step: Step
    kinds: frozenset[CredentialKind]
    last_activity_at: datetime
    days_inactive: int
    is_destructive: bool

    @property
    def clears_suspension_only(self) -> bool:
        return self.label == LABEL_CLEAR_SUSPENSION


def revocation_label(decision: Decision) -> str:
    """Return ``"revoke"`` for the account-level revocation, ``"revoke_kinds"`` otherwise."""
    return str(Step.REVOKE) if decision.revokes_account else LABEL_REVOKE_KINDS


@dataclass(slots=True)
class _Progress:
    """The parts of one identity's act phase that have completed."""

    kinds_done: bool = False
    step_done: bool = False
    identity_deleted: bool = False
    events: list[AuditEvent] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class IdentityActor:
    """Carries out the plan for one identity at a time; shared by the sweep's workers."""

    kratos: KratosSweepClient
    policy: Policy
    revoker: Revoker
    notifier: Notifier
    audit: AuditSink
    report: ReportBuilder
    now: datetime
    moment: Callable[[], datetime]
    run_id: str
    dry_run: bool
    recent_session_window: timedelta
    claim_expiry_seconds: float
    extra_activity: ExtraActivitySource | None

    async def act(self, entry: DueEntry) -> None:
        """Act on *entry*, recording any failure in the report instead of raising."""
        try:
            await self._act(entry)
        except NotFoundError:
            await self._skip(entry, "the identity was deleted since the listing", event=None)
        except MissingRecipientError as error:
            # Bad data on one identity, not a failed run; the next run tries again.
            await self._skip(entry, str(error), event=EVENT_SKIPPED_NO_RECIPIENT)
        except StaleTokensError as error:
            await self._fail(entry, error)
        except Exception as error:  # noqa: BLE001 - a notifier or revoker plug-in may raise anything; one identity must not end the sweep.
            await self._fail(entry, error)

    async def _act(self, entry: DueEntry) -> None:
        identity = await self.kratos.get_identity(entry.identity_id)
        if entry.clears_suspension_only:
            await self._clear_suspension(entry, identity)
            return

        extra = None
        if self.extra_activity is not None:
            extra = (await self.extra_activity.last_activity([identity.id])).get(identity.id)
        decision = self.policy.decide(identity, self.now, extra_activity=extra)
        skip = await self._check(entry, identity, decision)
        if skip is not None:
            reason, event_type = skip
            await self._skip(entry, reason, event=event_type)
            return

        if self.dry_run:
            # Reading another run's claim writes nothing, and a real run would skip.
            if await self._is_claimed_elsewhere(entry, identity):
                return
        else:
            claimed = await self._claim(entry, identity, decision)
            if claimed is None:
                return
            identity = claimed

        progress = _Progress()
        error: BaseException | None = None
        try:
            await self._perform(entry, identity, decision, progress)
        except Exception as exc:  # noqa: BLE001 - recorded below and re-raised after the markers are written.
            error = exc

        if not self.dry_run and not progress.identity_deleted:
            await self._record(entry, identity, decision, progress)
        for event in progress.events:
            await self._emit(event)
        if error is not None:
            raise error

    async def _check(
        self, entry: DueEntry, identity: Identity, decision: Decision
    ) -> tuple[str, str] | None:
        """Return why the planned step must not happen now, with the audit event type."""
        if decision.last_activity_at > entry.last_activity_at:
            return "activity was recorded since the listing", EVENT_SKIPPED_RECENT_ACTIVITY

        kinds = decision.revoke_kinds & self.revoker.supported_kinds
        if decision.step is not entry.step or kinds != entry.kinds:
            reason = f"the step due changed since the listing, to {decision.step}"
            return reason, EVENT_SKIPPED_CHANGED

        if not entry.is_destructive:
            return None
        sessions = await self.kratos.list_sessions(identity.id, active=True)
        since = self.now - self.recent_session_window
        recent = [
            session.authenticated_at
            for session in sessions
            if session.authenticated_at is not None and session.authenticated_at >= since
        ]
        if not recent:
            return None
        reason = f"a session was authenticated at {format_timestamp(max(recent))}, recently"
        return reason, EVENT_SKIPPED_RECENT_ACTIVITY

    async def _claim(
        self, entry: DueEntry, identity: Identity, decision: Decision
    ) -> Identity | None:
        key = self.policy.marker_key
        if await self._is_claimed_elsewhere(entry, identity):
            return None

        value = build_claim_markers(
            identity, decision, run_id=self.run_id, claimed_at=self.moment(), marker_key=key
        )
        await self.kratos.set_metadata_admin(identity.id, {key: value})
        # The write's response always shows this run's claim; only a fresh read
        # can show that a concurrent sweep wrote its own claim over it.
        reread = await self.kratos.get_identity(identity.id)
        claim = read_markers(reread, marker_key=key).claim
        if claim is None or claim.run_id != self.run_id:
            owner = f"sweep {claim.run_id}" if claim else "another sweep"
            await self._skip(entry, f"{owner} claimed it", event=EVENT_SKIPPED_CLAIMED)
            return None
        return reread

    async def _is_claimed_elsewhere(self, entry: DueEntry, identity: Identity) -> bool:
        markers = read_markers(identity, marker_key=self.policy.marker_key)
        claim = markers.claim_by_another_run(
            self.run_id, self.moment(), claim_expiry_seconds=self.claim_expiry_seconds
        )
        if claim is None:
            return False
        await self._skip(entry, f"sweep {claim.run_id} claimed it", event=EVENT_SKIPPED_CLAIMED)
        return True

    async def _perform(
        self, entry: DueEntry, identity: Identity, decision: Decision, progress: _Progress
    ) -> None:
        step = decision.step
        if entry.kinds or step is Step.REVOKE:
            details: dict[str, Any] = {"kinds": sorted(entry.kinds)}
            if not self.dry_run and entry.kinds:
                details = await self.revoker.revoke(identity, entry.kinds)
            progress.kinds_done = True
            label = str(step) if step is Step.REVOKE else revocation_label(decision)
            self._done(progress, decision, EVENT_TOKENS_REVOKED, label, details)

        if step in NOTIFICATION_EVENTS:
            if not self.dry_run:
                await self.notifier.notify(_notification(identity, decision))
            self._done(progress, decision, NOTIFICATION_EVENTS[step], str(step), {})
        elif step is Step.SUSPEND:
            details = await self._suspend(identity)
            self._done(progress, decision, EVENT_SUSPENDED, str(step), details)
        elif step is Step.DEACTIVATE:
            details = await self._deactivate(identity)
            self._done(progress, decision, EVENT_DEACTIVATED, str(step), details)
        elif step is Step.DELETE:
            details = await self._delete(identity)
            progress.identity_deleted = not self.dry_run
            self._done(progress, decision, EVENT_DELETED, str(step), details)

    async def _suspend(self, identity: Identity) -> dict[str, Any]:
        # The sweep's reference time, not the wall clock: a session authenticated
        # after it belongs to a user who came back during the sweep.
        patch = suspension_patch(identity, self.now)
        if patch is None:
            raise ValueError(
                f"metadata_public of identity {identity.id} is a "
                f"{type(identity.metadata_public).__name__}, not an object, so the suspension "
                "marker cannot be added; make it an object or null"
            )
        if not self.dry_run:
            await self.kratos.patch_identity(identity.id, patch, idempotent=True)
        return {"suspended_at": patch[0]["value"]}

    async def _deactivate(self, identity: Identity) -> dict[str, Any]:
        # Kratos keeps the sessions of an inactive identity and revives them on
        # reactivation, so every kind is revoked as well.
        kinds = self.revoker.supported_kinds
        details: dict[str, Any] = {"kinds": sorted(kinds)}
        if not self.dry_run:
            await self.kratos.set_state(identity.id, "inactive")
            details = await self.revoker.revoke(identity, kinds)
        return details

    async def _delete(self, identity: Identity) -> dict[str, Any]:
        # Deleting a Kratos identity does not touch Hydra or the application's
        # own tokens, so those are revoked first.
        kinds = self.revoker.supported_kinds - {CredentialKind.BROWSER_SESSION}
        details: dict[str, Any] = {"kinds": sorted(kinds)}
        if not self.dry_run:
            details = await self.revoker.revoke(identity, kinds)
            details["deleted"] = await self.kratos.delete_identity(identity.id)
        return details

    async def _clear_suspension(self, entry: DueEntry, identity: Identity) -> None:
        patch = clear_suspension_patch(identity)
        if patch is None:
            return
        suspended_at = suspended_at_of(identity)
        if not self.dry_run:
            await self.kratos.patch_identity(identity.id, patch)
        self.report.suspensions_cleared += 1
        details = {"suspended_at": format_timestamp(suspended_at) if suspended_at else None}
        await self._emit(self._event(EVENT_SUSPENSION_CLEARED, entry, OUTCOME_SUCCESS, details))

    def _done(
        self,
        progress: _Progress,
        decision: Decision,
        event_type: str,
        label: str,
        details: dict[str, Any],
    ) -> None:
        if label == str(decision.step):
            progress.step_done = True
        self.report.done[label] += 1
        self.report.acted.append(ActedIdentity(decision.identity_id, label, decision.days_inactive))
        progress.events.append(
            AuditEvent(
                type=event_type,
                identity_id=decision.identity_id,
                days_inactive=decision.days_inactive,
                policy=decision.policy_name,
                step=label,
                outcome=OUTCOME_SUCCESS,
                occurred_at=self.moment(),
                details=details,
            )
        )

    async def _record(
        self, entry: DueEntry, identity: Identity, decision: Decision, progress: _Progress
    ) -> None:
        """Write the episode markers of what succeeded, which also drops the claim.

        Only the kinds actually revoked are recorded. When the revocation
        succeeded but the later step failed, the revocation alone is recorded,
        so the next run retries only the step.
        """
        kinds = entry.kinds if progress.kinds_done else frozenset()
        done = replace(decision, revoke_kinds=kinds)
        if not progress.step_done:
            step = Step.REVOKE if kinds and decision.revokes_account else Step.NONE
            done = replace(done, step=step)

        key = self.policy.marker_key
        value = build_step_markers(identity, done, done_at=self.moment(), marker_key=key)
        await self.kratos.set_metadata_admin(identity.id, {key: value})

    async def _skip(self, entry: DueEntry, reason: str, *, event: str | None) -> None:
        logger.warning("Skipped identity %s (%s): %s", entry.identity_id, entry.label, reason)
        self.report.skipped.append(SkippedIdentity(entry.identity_id, entry.label, reason))
        if event is not None:
            await self._emit(self._event(event, entry, OUTCOME_SKIPPED, {"reason": reason}))

    async def _fail(self, entry: DueEntry, error: BaseException) -> None:
        message = _EMAIL_ADDRESS.sub("<email address>", f"{type(error).__name__}: {error}")
        logger.warning("Failed %s of identity %s: %s", entry.label, entry.identity_id, message)
        self.report.failures.append(FailedIdentity(entry.identity_id, entry.label, message))
        await self._emit(self._event(EVENT_FAILED, entry, OUTCOME_FAILURE, {"error": message}))

    def _event(
        self, event_type: str, entry: DueEntry, outcome: str, details: dict[str, Any]
    ) -> AuditEvent:
        return AuditEvent(
            type=event_type,
            identity_id=entry.identity_id,
            days_inactive=entry.days_inactive,
            policy=self.policy.name,
            step=entry.label,
            outcome=outcome,
            occurred_at=self.moment(),
            details=details,
        )

    async def _emit(self, event: AuditEvent) -> None:
        if self.dry_run:
            self.report.audit_events.append(event)
            return
        try:
            await self.audit.emit(event)
        except Exception:
            self.report.audit_failures += 1
            logger.exception(
                "Audit sink failed on %s for identity %s", event.type, event.identity_id
            )


def _notification(identity: Identity, decision: Decision) -> Notification:
    return Notification(
        step=str(decision.step),
        identity=identity,
        days_inactive=decision.days_inactive,
        last_activity_at=decision.last_activity_at,
        next_step=str(decision.next_step) if decision.next_step is not None else None,
        next_step_at=decision.next_step_at,
        policy_name=decision.policy_name,
        episode=decision.episode,
        revoke_at=decision.revoke_at,
    )
