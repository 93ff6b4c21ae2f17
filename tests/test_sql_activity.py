"""`SqlActivitySource` on SQLite and, when configured, PostgreSQL, alone and in a sweep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from sql_databases import DATABASES, drop_table, open_database, unique_table_name
from stale_tokens import ConfigurationError, Policy, sweep
from stale_tokens.integrations.sql import SqlActivitySource, SqlAuditSink
from stale_tokens.testing import OryEmulator
from sweeping import NOW, RecordingAuditSink, add_identity, clients

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=DATABASES)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with open_database(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture
async def table(engine: AsyncEngine) -> AsyncIterator[SqlAuditSink]:
    """The application's audit table, written through `SqlAuditSink.record`."""
    name = unique_table_name("app_audit")
    sink = SqlAuditSink(engine, table_name=name)
    await sink.create_table()
    yield sink
    await drop_table(engine, name)


def count_queries(engine: AsyncEngine) -> list[str]:
    """Return a list that collects each SELECT the engine runs from now on."""
    statements: list[str] = []

    def before_execute(*args: Any) -> None:
        statement = args[2]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before_execute)
    return statements


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def test_sql_activity_latest_event_per_identity(table: SqlAuditSink) -> None:
    """The newest login-like event counts; other types and other identities do not."""
    await table.record("login", "alice", created_at=days_ago(30))
    await table.record("whoami", "alice", created_at=days_ago(2))
    await table.record("password_changed", "alice", created_at=days_ago(1))
    await table.record("oauth_token", "bob", created_at=days_ago(200))
    await table.record("login", "mallory", created_at=days_ago(0))
    source = SqlActivitySource(table.engine, table_name=table.table.name)

    latest = await source.last_activity(["alice", "bob", "carol"])

    assert latest == {"alice": days_ago(2), "bob": days_ago(200)}
    assert latest["alice"].tzinfo == UTC


async def test_sql_activity_one_query_per_batch(table: SqlAuditSink) -> None:
    """A page of 250 ids costs one query and 501 ids cost two."""
    source = SqlActivitySource(table.engine, table_name=table.table.name)
    statements = count_queries(table.engine)

    await source.last_activity([f"id-{n}" for n in range(250)])
    one_page = len(statements)
    await source.last_activity([f"id-{n}" for n in range(501)])

    assert one_page == 1
    assert len(statements) == 3


async def test_sql_activity_custom_columns(engine: AsyncEngine) -> None:
    """Custom table, column names and event types are honoured."""
    name = unique_table_name("events")
    sink = SqlAuditSink(engine, table_name=name)
    await sink.record("sign_in", "alice", created_at=days_ago(5))
    await sink.record("login", "alice", created_at=days_ago(1))
    source = SqlActivitySource(
        engine,
        table_name=name,
        identity_column="identity_id",
        type_column="event_type",
        time_column="created_at",
        event_types=["sign_in"],
    )

    try:
        latest = await source.last_activity(["alice"])
    finally:
        await drop_table(engine, name)

    assert latest == {"alice": days_ago(5)}


async def test_sweep_with_sql_activity_merges_sources(table: SqlAuditSink) -> None:
    """A recent login saves an identity; one with no rows falls back to created_at."""
    emulator = OryEmulator()
    logged_in = add_identity(emulator, days_inactive=120)
    no_rows = add_identity(emulator, days_inactive=None, created_days_ago=400)
    metadata_newer = add_identity(emulator, days_inactive=3)
    await table.record("login", logged_in, created_at=days_ago(4))
    await table.record("login", metadata_newer, created_at=days_ago(300))
    source = SqlActivitySource(table.engine, table_name=table.table.name)
    audit = RecordingAuditSink()

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            audit=audit,
            extra_activity=source,
            now=NOW,
            circuit_breaker=None,
        )

    assert report.identities_seen == 3
    assert report.done == {"revoke": 1}
    assert [event.identity_id for event in audit.of_type("tokens_revoked_stale")] == [no_rows]
    assert emulator.requests["delete_sessions"] == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"event_types": ()}, "event_types must be a non-empty collection"),
        ({"event_types": "login"}, r"wrap it as \('login',\)"),
        ({"event_types": ["login", ""]}, "non-empty strings"),
        ({"time_column": "created at"}, "time_column must be an SQL identifier"),
        ({"table_name": "audit;"}, "table_name must be an SQL identifier"),
    ],
)
def test_sql_activity_rejects_invalid_options(options: dict[str, Any], message: str) -> None:
    """Each invalid option raises `ConfigurationError` naming it."""
    with pytest.raises(ConfigurationError, match=message):
        SqlActivitySource("sqlite:///unused.sqlite", **options)
