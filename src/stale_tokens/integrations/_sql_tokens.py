"""`SqlPersonalAccessTokenRevoker`: revoke an application's personal access tokens in SQL."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, and_, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Update

from .._audit import OUTCOME_SUCCESS, AuditEvent, AuditSink
from .._timestamps import format_timestamp, require_aware
from ._sql_engine import EngineUser, UtcDateTime, check_identifier

__all__ = [
    "DEFAULT_TOKEN_TABLE",
    "EVENT_TOKEN_REVOKED_UNUSED",
    "SqlPersonalAccessTokenRevoker",
]

logger = logging.getLogger("stale_tokens.tokens")

DEFAULT_TOKEN_TABLE = "personal_access_tokens"  # noqa: S105 - a table name, not a secret
DEFAULT_UNUSED_POLICY_NAME = "unused_personal_access_tokens"
EVENT_TOKEN_REVOKED_UNUSED = "personal_access_token_revoked_unused"  # noqa: S105 - an event type
_SECONDS_PER_DAY = 86_400


class SqlPersonalAccessTokenRevoker(EngineUser):
    """A `PersonalAccessTokenRevoker` for tokens kept in an application's SQL table.

    Revoking sets ``revoked_at``; rows are never deleted, so the
    application's own checks (``revoked_at IS NULL``) keep working and the
    history stays. A token that is already revoked keeps its original
    ``revoked_at``.

    Args:
        url_or_engine: A database URL or an `AsyncEngine`, as for `SqlAuditSink`.
        table_name: The token table.
        id_column: The token's primary key.
        identity_column: The Kratos identity id that owns the token.
        created_at_column: When the token was issued.
        last_used_at_column: When it was last used, ``NULL`` if never.
        revoked_at_column: When it was revoked, ``NULL`` while valid.
        audit: Receives one event per token `revoke_unused_tokens` revokes;
            ``None`` emits none.
        clock: Returns the aware time written to ``revoked_at``; the current
            UTC time by default.

    The timestamp columns are ``timestamp with time zone`` on PostgreSQL and
    naive UTC on SQLite.

    Raises:
        ConfigurationError: If a name is not an SQL identifier or the URL is invalid.
        MissingExtraError: If the database driver is not installed.
    """

    def __init__(
        self,
        url_or_engine: str | AsyncEngine,
        *,
        table_name: str = DEFAULT_TOKEN_TABLE,
        id_column: str = "id",
        identity_column: str = "identity_id",
        created_at_column: str = "created_at",
        last_used_at_column: str = "last_used_at",
        revoked_at_column: str = "revoked_at",
        audit: AuditSink | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._metadata = MetaData()
        self.table = Table(
            check_identifier("table_name", table_name),
            self._metadata,
            Column(check_identifier("id_column", id_column), String(255), primary_key=True),
            Column(
                check_identifier("identity_column", identity_column),
                String(255),
                nullable=False,
                index=True,
            ),
            Column(check_identifier("created_at_column", created_at_column), UtcDateTime()),
            Column(check_identifier("last_used_at_column", last_used_at_column), UtcDateTime()),
            Column(check_identifier("revoked_at_column", revoked_at_column), UtcDateTime()),
        )
        self._id = self.table.c[id_column]
        self._identity = self.table.c[identity_column]
        self._created_at = self.table.c[created_at_column]
        self._last_used_at = self.table.c[last_used_at_column]
        self._revoked_at = self.table.c[revoked_at_column]
        self._audit = audit
        self._clock = clock if clock is not None else _utc_now
        super().__init__(url_or_engine, table_name=table_name)

    async def create_table(self) -> None:
        """Create the token table with the configured names unless it exists.

        Applications usually own this table already; this is for new ones and tests.
        """
        async with self._connection("creating the table", transaction=True) as connection:
            await connection.run_sync(self._metadata.create_all, checkfirst=True)

    async def revoke_personal_access_tokens(self, identity_id: str) -> int:
        """Revoke every still-valid token of *identity_id* and return how many were revoked.

        Idempotent: tokens already revoked are left untouched, so a second
        call returns 0.
        """
        statement = (
            update(self.table)
            .where(self._identity == identity_id, self._revoked_at.is_(None))
            .values({self._revoked_at: self._now()})
        )
        async with self._connection(
            "revoking the tokens of an identity", transaction=True
        ) as connection:
            result = await connection.execute(statement)
        return result.rowcount

    def unused_tokens_statement(self, cutoff: datetime, revoked_at: datetime) -> Update:
        """Build the UPDATE that `revoke_unused_tokens` runs, for review or logging.

        Its condition is ``revoked_at IS NULL AND (last_used_at < :cutoff OR
        (last_used_at IS NULL AND created_at < :cutoff))``. The parentheses
        keep tokens that are already revoked out of the update.
        """
        # self_group() prints the inner parentheses, which AND's precedence
        # makes optional, so the logged SQL reads like the documented condition.
        never_used_and_old = and_(
            self._last_used_at.is_(None), self._created_at < cutoff
        ).self_group()
        return (
            update(self.table)
            .where(
                and_(
                    self._revoked_at.is_(None),
                    or_(self._last_used_at < cutoff, never_used_and_old),
                )
            )
            .values({self._revoked_at: revoked_at})
            .returning(self._id, self._identity, self._created_at, self._last_used_at)
        )

    async def revoke_unused_tokens(
        self, cutoff: datetime, *, policy_name: str = DEFAULT_UNUSED_POLICY_NAME
    ) -> list[Any]:
        """Revoke every valid token not used since *cutoff*; return the ids revoked.

        A token counts as unused when it was last used before *cutoff*, or
        was never used and was issued before *cutoff*. Each revoked token
        gets an audit event ``personal_access_token_revoked_unused`` with
        its id in the details, once the update has committed.

        Args:
            cutoff: Tokens idle since before this time are revoked (aware).
            policy_name: The ``policy`` field of the audit events.

        Returns:
            The revoked tokens' ids, as the id column stores them.

        Raises:
            ValueError: If *cutoff* is naive.
            DatabaseError: If the update failed; nothing was revoked.
        """
        require_aware(cutoff, "cutoff")
        revoked_at = self._now()
        async with self._connection("revoking unused tokens", transaction=True) as connection:
            rows = (
                await connection.execute(self.unused_tokens_statement(cutoff, revoked_at))
            ).all()
        logger.info("Revoked %d personal access tokens unused since %s", len(rows), cutoff)

        if self._audit is not None:
            for token_id, identity_id, created_at, last_used_at in rows:
                await self._audit.emit(
                    _revoked_event(
                        token_id,
                        identity_id,
                        last_used_at=last_used_at,
                        created_at=created_at,
                        cutoff=cutoff,
                        revoked_at=revoked_at,
                        policy_name=policy_name,
                    )
                )
        return [row[0] for row in rows]

    def _now(self) -> datetime:
        now = self._clock()
        require_aware(now, "clock()")
        return now


def _revoked_event(
    token_id: Any,
    identity_id: str,
    *,
    last_used_at: datetime | None,
    created_at: datetime | None,
    cutoff: datetime,
    revoked_at: datetime,
    policy_name: str,
) -> AuditEvent:
    idle_since = last_used_at if last_used_at is not None else created_at
    days_inactive = (
        int((revoked_at - idle_since).total_seconds() // _SECONDS_PER_DAY)
        if idle_since is not None
        else None
    )
    return AuditEvent(
        type=EVENT_TOKEN_REVOKED_UNUSED,
        identity_id=identity_id,
        days_inactive=days_inactive,
        policy=policy_name,
        step="revoke",
        outcome=OUTCOME_SUCCESS,
        occurred_at=revoked_at,
        details={
            "token_id": str(token_id),
            "last_used_at": format_timestamp(last_used_at) if last_used_at else None,
            "cutoff": format_timestamp(cutoff),
        },
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)
