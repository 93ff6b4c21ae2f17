"""`SqlActivitySource`: the latest login-like event per identity from an application's table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Column, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .._errors import ConfigurationError
from ._sql_audit import DEFAULT_AUDIT_TABLE
from ._sql_engine import EngineUser, UtcDateTime, check_identifier

__all__ = ["DEFAULT_ACTIVITY_EVENT_TYPES", "SqlActivitySource"]

DEFAULT_ACTIVITY_EVENT_TYPES = ("login", "whoami", "oauth_token")
# Ids per query: well below the bound-parameter limits of SQLite (32,766
# since 3.32) and PostgreSQL (32,767), and above the default page of 250
# identities, so a sweep's page needs one query.
MAX_IDS_PER_QUERY = 500


class SqlActivitySource(EngineUser):
    """An `ExtraActivitySource` that reads an application's own audit table.

    For a batch of identity ids it runs one query, the latest event time
    per identity among *event_types*::

        SELECT identity_id, max(created_at) FROM security_audit
        WHERE identity_id IN (...) AND event_type IN (...)
        GROUP BY identity_id

    An index on ``(identity_id, created_at)`` keeps it fast on large tables.
    An identity with no matching row is left out of the result, so the
    policy treats it like a never-active identity (it falls back to the
    identity's ``created_at``) and never skips it.

    Args:
        url_or_engine: A database URL or an `AsyncEngine`, as for `SqlAuditSink`.
        table_name: The table to read.
        identity_column: The column with the Kratos identity id.
        type_column: The column with the event type.
        time_column: The column with the event time; ``timestamp with time
            zone`` on PostgreSQL, naive UTC on SQLite.
        event_types: The event types that count as activity; not empty.

    Raises:
        ConfigurationError: If a name is not an SQL identifier, *event_types*
            is empty, or the URL is invalid.
        MissingExtraError: If the database driver is not installed.
    """

    def __init__(
        self,
        url_or_engine: str | AsyncEngine,
        *,
        table_name: str = DEFAULT_AUDIT_TABLE,
        identity_column: str = "identity_id",
        type_column: str = "event_type",
        time_column: str = "created_at",
        event_types: Iterable[str] = DEFAULT_ACTIVITY_EVENT_TYPES,
    ) -> None:
        self.event_types = _event_types(event_types)
        table = Table(
            check_identifier("table_name", table_name),
            MetaData(),
            Column(check_identifier("identity_column", identity_column), String()),
            Column(check_identifier("type_column", type_column), String()),
            Column(check_identifier("time_column", time_column), UtcDateTime()),
        )
        self._identity = table.c[identity_column]
        self._type = table.c[type_column]
        self._time = table.c[time_column]
        super().__init__(url_or_engine, table_name=table_name)

    async def last_activity(self, identity_ids: Sequence[str]) -> dict[str, datetime]:
        """Return the latest event time (aware UTC) of each identity that has one.

        Runs one query per `MAX_IDS_PER_QUERY` ids, so one per page of a
        Kratos listing with the default page size.

        Raises:
            DatabaseError: If the query failed.
        """
        latest: dict[str, datetime] = {}
        unique = list(dict.fromkeys(identity_ids))
        async with self._connection("reading the latest activity") as connection:
            for start in range(0, len(unique), MAX_IDS_PER_QUERY):
                batch = unique[start : start + MAX_IDS_PER_QUERY]
                query = (
                    select(self._identity, func.max(self._time))
                    .where(self._identity.in_(batch), self._type.in_(self.event_types))
                    .group_by(self._identity)
                )
                rows = (await connection.execute(query)).all()
                latest.update({identity_id: at for identity_id, at in rows if at is not None})
        return latest


def _event_types(event_types: Iterable[str]) -> tuple[str, ...]:
    if isinstance(event_types, str):
        raise ConfigurationError(
            f"event_types must be a collection of event type strings, got the string "
            f"{event_types!r}; wrap it as ({event_types!r},)"
        )
    types = tuple(event_types)
    is_valid = all(isinstance(value, str) for value in types) and all(types)
    if not types or not is_valid:
        raise ConfigurationError(
            f"event_types must be a non-empty collection of non-empty strings, got {types!r}"
        )
    return types
