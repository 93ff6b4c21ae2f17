"""`reactivate()`: the administrator's way back for a deactivated identity."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ._audit import EVENT_REACTIVATED, OUTCOME_SUCCESS, AuditEvent, AuditSink, LoggingAuditSink
from ._ports import KratosSweepClient
from ._suspend import clear_suspension_patch, suspended_at_of
from ._timestamps import format_timestamp, require_aware

__all__ = ["reactivate"]

logger = logging.getLogger("stale_tokens.sweep")

MANUAL_POLICY_NAME = "manual"


async def reactivate(
    kratos: KratosSweepClient,
    identity_id: str,
    *,
    audit: AuditSink | None = None,
    now: datetime | None = None,
) -> bool:
    """Set an identity back to ``active`` and clear its suspension marker.

    Sessions deleted at deactivation stay deleted, so the user signs in
    again, which starts a new inactivity episode. The sweeper's episode
    markers are left alone: the next activity makes them obsolete.

    Args:
        kratos: The Kratos admin client, such as `KratosAdmin`.
        identity_id: The identity to reactivate.
        audit: Receives an ``identity_reactivated`` event when something
            changed; ``None`` means `LoggingAuditSink`.
        now: The time of the event, timezone-aware; ``None`` means the current time.

    Returns:
        ``True`` when the state or the suspension marker changed. ``False``
        when the identity was already active without a marker: nothing is
        written and no event is emitted.

    Raises:
        NotFoundError: If no identity has this id.
        OryError: If Kratos fails after the client's retries.
        ValueError: If *now* is naive.
    """
    now = datetime.now(UTC) if now is None else now
    require_aware(now, "now")

    identity = await kratos.get_identity(identity_id)
    if identity.is_active and clear_suspension_patch(identity) is None:
        logger.info("Identity %s is already active; nothing changed", identity_id)
        return False
    if not identity.is_active:
        identity = await kratos.set_state(identity_id, "active")
    suspended_at = suspended_at_of(identity)
    patch = clear_suspension_patch(identity)
    if patch is not None:
        await kratos.patch_identity(identity_id, patch)

    logger.info("Reactivated identity %s", identity_id)
    sink = audit if audit is not None else LoggingAuditSink()
    await sink.emit(
        AuditEvent(
            type=EVENT_REACTIVATED,
            identity_id=identity_id,
            days_inactive=None,
            policy=MANUAL_POLICY_NAME,
            step="reactivate",
            outcome=OUTCOME_SUCCESS,
            occurred_at=now,
            details={
                "suspension_cleared": patch is not None,
                "suspended_at": format_timestamp(suspended_at) if suspended_at else None,
            },
        )
    )
    return True
