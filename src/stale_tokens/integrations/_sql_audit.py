"""`SqlAuditSink`: audit events in an SQL table, with a monthly count per event type."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import anyio
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from .._audit import AuditEvent
from .._timestamps import require_aware
from ._sql_engine import EngineUser, UtcDateTime, check_identifier

__all__ = ["DEFAULT_AUDIT_TABLE", "MonthlyCount", "SqlAuditSink"]

logger = logging.getLogger("stale_tokens.audit")

DEFAULT_AUDIT_TABLE = "security_audit"


@dataclass(frozen=True, slots=True)
class MonthlyCount:
    """How many events of one type were stored in one calendar month (UTC).

    Attributes:
        month: The first day of the month.
        event_type: The event type, such as ``"tokens_revoked_stale"``.
        count: Number of events of that type in that month.
    """

    month: date
    event_type: str
    count: int


class SqlAuditSink(EngineUser):
    """An `AuditSink` that inserts each event as one row of an SQL table.

    The table has the columns ``id``, ``event_type``, ``identity_id``,
    ``outcome``, ``step``, ``policy``, ``days_inactive``, ``metadata`` (the
    event's details as JSON) and ``created_at`` (the event's time, UTC),
    with indexes on ``created_at`` and ``(identity_id, created_at)``. It is
    created on first use when missing; `create_table` creates it up front.
    The same table may hold the application's own events, such as logins,
    which `SqlActivitySource` reads.

    Args:
        url_or_engine: A database URL (``sqlite:///audit.db``,
            ``postgresql://user@127.0.0.1/db``; the async driver is added) or
            an `AsyncEngine`. An engine passed in is not disposed of by `aclose`.
        table_name: The table's name, a plain SQL identifier.

    Raises:
        ConfigurationError: If *table_name* or the URL is invalid.
        MissingExtraError: If the database driver is not installed.
    """

    def __init__(
        self, url_or_engine: str | AsyncEngine, *, table_name: str = DEFAULT_AUDIT_TABLE
    ) -> None:
        check_identifier("table_name", table_name)
        super().__init__(url_or_engine, table_name=table_name)
        self._metadata = MetaData()
        self.table = Table(
            table_name,
            self._metadata,
            Column(
                "id",
                BigInteger().with_variant(Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            Column("event_type", String(100), nullable=False),
            Column("identity_id", String(255), nullable=False),
            Column("outcome", String(32), nullable=True),
            Column("step", String(64), nullable=True),
            Column("policy", String(255), nullable=True),
            Column("days_inactive", Integer(), nullable=True),
            Column("metadata", JSON(), nullable=True),
            Column("created_at", UtcDateTime(), nullable=False, index=True),
            # Serves SqlActivitySource's latest-event query. An index on
            # event_type alone would tempt planners into scanning half the table.
            Index(f"ix_{table_name}_identity_id_created_at", "identity_id", "created_at"),
        )
        self._table_ready = False
        self._table_lock = anyio.Lock()

    async def create_table(self) -> None:
        """Create the table and its indexes unless they exist."""
        async with self._connection("creating the table", transaction=True) as connection:
            await connection.run_sync(self._metadata.create_all, checkfirst=True)
        self._table_ready = True

    async def table_exists(self) -> bool:
        """Return whether the table exists, without creating anything.

        Raises:
            DatabaseError: If the database cannot be reached.
        """
        if self._table_ready:
            return True
        async with self._connection("looking up the table") as connection:
            return await connection.run_sync(
                lambda sync: sync.dialect.has_table(sync, self._table_name)
            )

    async def emit(self, event: AuditEvent) -> None:
        """Insert *event* as one row, creating the table first when needed.

        Raises:
            DatabaseError: If the insert failed; the sweeper counts it in
                ``SweepReport.audit_failures`` and goes on.
        """
        await self._ensure_table()
        async with self._connection("inserting an audit event", transaction=True) as connection:
            await connection.execute(insert(self.table).values(**_row(event)))

    async def record(
        self,
        event_type: str,
        identity_id: str,
        *,
        created_at: datetime,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Insert an application event, such as a login, that is not an `AuditEvent`.

        Args:
            event_type: The event type, such as ``"login"``.
            identity_id: The Kratos identity the event is about.
            created_at: When it happened, timezone-aware.
            metadata: Extra JSON-serialisable facts; never a secret or an email address.
        """
        require_aware(created_at, "created_at")
        await self._ensure_table()
        values = {
            "event_type": event_type,
            "identity_id": identity_id,
            "metadata": metadata,
            "created_at": created_at,
        }
        async with self._connection(
            "inserting an application event", transaction=True
        ) as connection:
            await connection.execute(insert(self.table).values(**values))

    async def monthly_counts(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[MonthlyCount]:
        """Count the events per type per calendar month (UTC), oldest month first.

        Args:
            since: Count events at or after this time (timezone-aware);
                ``None`` means from the first event.
            until: Count events before this time (timezone-aware); ``None``
                means up to the last event.

        Returns:
            One `MonthlyCount` per month and event type that has events,
            sorted by month, then event type; empty when the table does not
            exist. It only reads, so a read-only database user can call it.

        Raises:
            ValueError: If *since* or *until* is naive.
            DatabaseError: If the query failed.
        """
        if since is not None:
            require_aware(since, "since")
        if until is not None:
            require_aware(until, "until")
        if not await self.table_exists():
            return []

        created_at = self.table.c.created_at
        month = _month_label(created_at, self._engine.dialect.name).label("month")
        query = select(month, self.table.c.event_type, func.count())
        if since is not None:
            query = query.where(created_at >= since)
        if until is not None:
            query = query.where(created_at < until)
        query = query.group_by(month, self.table.c.event_type).order_by(
            month, self.table.c.event_type
        )

        async with self._connection("counting events per month") as connection:
            rows = (await connection.execute(query)).all()
        return [
            MonthlyCount(month=_parse_month(label), event_type=event_type, count=total)
            for label, event_type, total in rows
        ]

    async def _ensure_table(self) -> None:
        if self._table_ready:
            return
        async with self._table_lock:
            if not self._table_ready:
                await self.create_table()


def _row(event: AuditEvent) -> dict[str, Any]:
    return {
        "event_type": event.type,
        "identity_id": event.identity_id,
        "outcome": event.outcome,
        "step": event.step,
        "policy": event.policy,
        "days_inactive": event.days_inactive,
        "metadata": dict(event.details),
        "created_at": event.occurred_at,
    }


def _month_label(created_at: ColumnElement[Any], dialect: str) -> ColumnElement[str]:
    """Return an SQL expression for the ``YYYY-MM`` of *created_at* in UTC."""
    if dialect == "postgresql":
        # to_char formats a timestamptz in the session's TimeZone, so the value
        # is converted to UTC first and an event near midnight keeps its UTC
        # month. The literals are constants, not bound parameters, so the
        # select list and GROUP BY contain the identical expression.
        utc = func.timezone(literal_column("'UTC'"), created_at)
        return func.to_char(utc, literal_column("'YYYY-MM'"))
    if dialect == "sqlite":
        # UtcDateTime stores naive UTC text on SQLite.
        return func.strftime(literal_column("'%Y-%m'"), created_at)
    raise NotImplementedError(
        f"monthly_counts supports PostgreSQL and SQLite, not {dialect}; "
        "group the table's created_at by month in your own query"
    )


def _parse_month(label: str) -> date:
    year, month = label.split("-")
    return date(int(year), int(month), 1)
