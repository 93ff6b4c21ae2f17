"""Audit events of the sweeper and the sink protocol they are emitted to."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ._timestamps import format_timestamp, require_aware

__all__ = ["AuditEvent", "AuditSink", "LoggingAuditSink"]

AUDIT_LOGGER_NAME = "stale_tokens.audit"

EVENT_TOKENS_REVOKED = "tokens_revoked_stale"
EVENT_WARNING_SENT = "stale_warning_sent"
EVENT_RE_ENGAGEMENT_SENT = "stale_re_engagement_sent"
EVENT_DELETE_NOTICE_SENT = "stale_delete_notice_sent"
EVENT_SUSPENDED = "identity_suspended_stale"
EVENT_SUSPENSION_CLEARED = "identity_suspension_cleared"
EVENT_DEACTIVATED = "identity_deactivated_stale"
EVENT_DELETED = "identity_deleted_stale"
EVENT_REACTIVATED = "identity_reactivated"
EVENT_SKIPPED_RECENT_ACTIVITY = "sweep_skipped_recent_activity"
EVENT_SKIPPED_CLAIMED = "sweep_skipped_claimed_by_other_run"
EVENT_SKIPPED_CHANGED = "sweep_skipped_decision_changed"
EVENT_SKIPPED_NO_RECIPIENT = "sweep_skipped_no_recipient"
EVENT_FAILED = "sweep_step_failed"

OUTCOME_SUCCESS = "success"
OUTCOME_FAILURE = "failure"
OUTCOME_SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One action of the sweeper, or one notable decision not to act.

    Attributes:
        type: What happened, for example ``"tokens_revoked_stale"`` or
            ``"sweep_skipped_recent_activity"``.
        identity_id: The Kratos identity the event is about.
        days_inactive: Whole days without activity when the step was decided,
            or ``None`` when unknown (a manual reactivation).
        policy: The name of the policy that decided the step.
        step: The policy step, for example ``"revoke"``.
        outcome: ``"success"``, ``"failure"`` or ``"skipped"``.
        occurred_at: Aware UTC time of the event.
        details: Extra JSON-serialisable facts (credential kinds revoked, the
            skip reason, the error). Never an email address or a token.
    """

    type: str
    identity_id: str
    days_inactive: int | None
    policy: str
    step: str
    outcome: str
    occurred_at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_aware(self.occurred_at, "occurred_at")

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-ready dict with an RFC 3339 ``occurred_at``."""
        return {
            "type": self.type,
            "identity_id": self.identity_id,
            "days_inactive": self.days_inactive,
            "policy": self.policy,
            "step": self.step,
            "outcome": self.outcome,
            "occurred_at": format_timestamp(self.occurred_at),
            "details": dict(self.details),
        }


@runtime_checkable
class AuditSink(Protocol):
    """The destination of the sweeper's audit events, such as a database table, a SIEM or a log.

    ``emit`` may raise; the sweeper logs the error, counts it in the report
    and goes on, because the action it describes has already happened.
    """

    async def emit(self, event: AuditEvent) -> None:
        """Store or forward *event*."""


class LoggingAuditSink:
    """An `AuditSink` that logs each event as one JSON object.

    Events go to the ``stale_tokens.audit`` logger at INFO, so any log
    pipeline that keeps INFO records keeps the audit trail.

    Args:
        logger: The logger to write to; ``None`` means ``stale_tokens.audit``.
    """

    def __init__(self, *, logger: logging.Logger | None = None) -> None:
        self._logger = logger if logger is not None else logging.getLogger(AUDIT_LOGGER_NAME)

    async def emit(self, event: AuditEvent) -> None:
        """Log *event* as JSON."""
        self._logger.info("%s", _JSONMessage(event))


class _JSONMessage:
    """Defers JSON encoding until a handler formats the record."""

    __slots__ = ("_event",)

    def __init__(self, event: AuditEvent) -> None:
        self._event = event

    def __str__(self) -> str:
        return json.dumps(self._event.to_dict(), sort_keys=True, default=str)
