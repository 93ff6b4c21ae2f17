"""Messages to inactive users: the notification, the notifier protocol, a logging default."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from ._models import Identity
from ._timestamps import format_timestamp

__all__ = ["LoggingNotifier", "Notification", "Notifier"]

logger = logging.getLogger("stale_tokens.notify")


@dataclass(frozen=True, slots=True)
class Notification:
    """A message the policy wants sent to one identity.

    Every number comes from the policy's decision, so a template can write
    "you have not signed in for {days_inactive} days; on {revoke_at:%d %B}
    your sessions will be signed out" without hard-coding thresholds.

    Attributes:
        step: ``"warn"``, ``"re_engage"`` or ``"delete_notice"``.
        identity: The identity as Kratos returned it just before sending; the
            address to write to is in its traits.
        days_inactive: Whole days since the last recorded activity.
        last_activity_at: Aware UTC time of the last activity the policy used.
        next_step: The step that follows if the user stays away, or ``None``.
        next_step_at: When that step becomes due (aware UTC), or ``None``.
        policy_name: The policy that decided the step.
        episode: The inactivity episode the message belongs to; a notifier
            that deduplicates on its own can key on ``(identity.id, step, episode)``.
        revoke_at: When every session and token of the account is revoked
            (aware UTC), or ``None`` when the role is never revoked. With a
            ladder, the step after a warning is the suspension, so the
            revocation date is here and not in `next_step_at`.
    """

    step: str
    identity: Identity = field(repr=False)
    days_inactive: int
    last_activity_at: datetime
    next_step: str | None
    next_step_at: datetime | None
    policy_name: str
    episode: str
    revoke_at: datetime | None = None

    @property
    def identity_id(self) -> str:
        return self.identity.id


@runtime_checkable
class Notifier(Protocol):
    """Sends warnings, re-engagement messages and deletion notices.

    ``notify`` must raise when the message was not accepted (a mail server
    error, a full queue). The sweeper then records no marker for the step
    and the next run tries again; a notifier that swallows errors loses the
    message.
    """

    async def notify(self, notification: Notification) -> None:
        """Send *notification*, raising when it could not be handed over."""


class LoggingNotifier:
    """A `Notifier` that only logs, on ``stale_tokens.notify`` at INFO.

    It logs the identity id, the step and the numbers, never the traits, so
    no email address reaches a log. It is the default, so that a sweep without
    a configured notifier still shows which messages would have gone out.
    """

    async def notify(self, notification: Notification) -> None:
        """Log that *notification* would be sent."""
        logger.info(
            "notification %s for identity %s: %d days inactive, next step %s at %s",
            notification.step,
            notification.identity_id,
            notification.days_inactive,
            notification.next_step,
            format_timestamp(notification.next_step_at) if notification.next_step_at else None,
        )
