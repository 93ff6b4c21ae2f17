"""`SqlAuditSink` on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from sql_databases import DATABASES, drop_table, has_table, open_database, unique_table_name
from stale_tokens import (
    AuditEvent,
    ConfigurationError,
    DatabaseError,
    MissingExtraError,
    Policy,
    sweep,
)
from stale_tokens.integrations.sql import (
    MonthlyCount,
    SqlActivitySource,
    SqlAuditSink,
    to_async_url,
)
from stale_tokens.testing import OryEmulator
from sweeping import NOW, add_identity, clients
from test_smtp import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=DATABASES)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with open_database(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture
async def table_name(engine: AsyncEngine) -> AsyncIterator[str]:
    name = unique_table_name("audit")
    yield name
    await drop_table(engine, name)


def event(
    event_type: str = "tokens_revoked_stale",
    *,
    identity_id: str = "id-1",
    occurred_at: datetime = NOW,
) -> AuditEvent:
    return AuditEvent(
        type=event_type,
        identity_id=identity_id,
        days_inactive=91,
        policy="default",
        step="revoke",
        outcome="success",
        occurred_at=occurred_at,
        details={"kinds": ["browser_session"], "had_kratos_sessions": True},
    )


async def test_sql_audit_sink_emit_stores_row(engine: AsyncEngine, table_name: str) -> None:
    """An emitted event becomes one row with its type, identity, metadata and UTC time."""
    sink = SqlAuditSink(engine, table_name=table_name)
    occurred_at = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=timezone(timedelta(hours=2)))

    await sink.emit(event(occurred_at=occurred_at))

    async with engine.connect() as connection:
        rows = (await connection.execute(select(sink.table))).mappings().all()
    assert len(rows) == 1
    row = rows[0]
    assert row["event_type"] == "tokens_revoked_stale"
    assert row["identity_id"] == "id-1"
    assert row["outcome"] == "success"
    assert row["step"] == "revoke"
    assert row["policy"] == "default"
    assert row["days_inactive"] == 91
    assert row["metadata"] == {"kinds": ["browser_session"], "had_kratos_sessions": True}
    assert row["created_at"] == occurred_at
    assert row["created_at"].tzinfo == UTC


async def test_sql_audit_sink_creates_table_on_first_use(
    engine: AsyncEngine, table_name: str
) -> None:
    """The table does not exist before the first event and does after it."""
    sink = SqlAuditSink(engine, table_name=table_name)
    assert not await has_table(engine, table_name)

    await sink.emit(event())

    assert await has_table(engine, table_name)


async def test_sql_audit_sink_create_table_is_idempotent(
    engine: AsyncEngine, table_name: str
) -> None:
    """Creating the table twice keeps the rows already stored."""
    sink = SqlAuditSink(engine, table_name=table_name)
    await sink.create_table()
    await sink.emit(event())

    await SqlAuditSink(engine, table_name=table_name).create_table()

    counts = await sink.monthly_counts()
    assert counts == [MonthlyCount(date(2026, 6, 1), "tokens_revoked_stale", 1)]


async def test_sql_audit_sink_monthly_counts_per_type(engine: AsyncEngine, table_name: str) -> None:
    """Events are counted per UTC calendar month and type, oldest month first."""
    sink = SqlAuditSink(engine, table_name=table_name)
    minus_five = timezone(timedelta(hours=-5))
    occurred = [
        ("tokens_revoked_stale", datetime(2026, 1, 3, tzinfo=UTC)),
        ("tokens_revoked_stale", datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)),
        ("stale_warning_sent", datetime(2026, 1, 15, tzinfo=UTC)),
        # 21:00 on 31 January at UTC-5 is 02:00 on 1 February in UTC.
        ("tokens_revoked_stale", datetime(2026, 1, 31, 21, 0, tzinfo=minus_five)),
        ("stale_warning_sent", datetime(2026, 3, 1, tzinfo=UTC)),
    ]
    for event_type, occurred_at in occurred:
        await sink.emit(event(event_type, occurred_at=occurred_at))

    counts = await sink.monthly_counts()

    assert counts == [
        MonthlyCount(date(2026, 1, 1), "stale_warning_sent", 1),
        MonthlyCount(date(2026, 1, 1), "tokens_revoked_stale", 2),
        MonthlyCount(date(2026, 2, 1), "tokens_revoked_stale", 1),
        MonthlyCount(date(2026, 3, 1), "stale_warning_sent", 1),
    ]


async def test_sql_audit_sink_monthly_counts_since_until(
    engine: AsyncEngine, table_name: str
) -> None:
    """*since* is inclusive and *until* exclusive."""
    sink = SqlAuditSink(engine, table_name=table_name)
    for day in (1, 2, 3):
        await sink.emit(event(occurred_at=datetime(2026, 5, day, tzinfo=UTC)))

    counts = await sink.monthly_counts(
        since=datetime(2026, 5, 2, tzinfo=UTC), until=datetime(2026, 5, 3, tzinfo=UTC)
    )

    assert counts == [MonthlyCount(date(2026, 5, 1), "tokens_revoked_stale", 1)]


async def test_sql_audit_sink_record_application_event(
    engine: AsyncEngine, table_name: str
) -> None:
    """`record` stores an application event with no sweep fields."""
    sink = SqlAuditSink(engine, table_name=table_name)

    await sink.record("login", "id-7", created_at=NOW, metadata={"method": "password"})

    async with engine.connect() as connection:
        row = (await connection.execute(select(sink.table))).mappings().one()
    assert row["event_type"] == "login"
    assert row["identity_id"] == "id-7"
    assert row["metadata"] == {"method": "password"}
    assert row["outcome"] is None
    assert row["created_at"] == NOW


async def test_sql_audit_sink_sweep_writes_events(engine: AsyncEngine, table_name: str) -> None:
    """A sweep's revocation lands in the table and in the monthly report."""
    emulator = OryEmulator()
    stale = add_identity(emulator, days_inactive=120)
    add_identity(emulator, days_inactive=3)
    sink = SqlAuditSink(engine, table_name=table_name)

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), audit=sink, now=NOW, circuit_breaker=None
        )

    assert report.audit_failures == 0
    async with engine.connect() as connection:
        rows = (await connection.execute(select(sink.table))).mappings().all()
    assert [(row["event_type"], row["identity_id"]) for row in rows] == [
        ("tokens_revoked_stale", stale)
    ]
    assert await sink.monthly_counts() == [
        MonthlyCount(date(2026, 6, 1), "tokens_revoked_stale", 1)
    ]


async def test_sql_audit_sink_monthly_counts_rejects_naive(
    engine: AsyncEngine, table_name: str
) -> None:
    """A naive *since* raises instead of being read in an unknown zone."""
    sink = SqlAuditSink(engine, table_name=table_name)

    with pytest.raises(ValueError, match="since"):
        await sink.monthly_counts(since=datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize("name", ["audit; DROP TABLE users", "1audit", "", "a" * 64, "a-b"])
def test_sql_audit_sink_rejects_invalid_table_name(name: str) -> None:
    """A table name that is not a plain identifier raises `ConfigurationError`."""
    with pytest.raises(ConfigurationError, match="table_name must be an SQL identifier"):
        SqlAuditSink("sqlite:///unused.sqlite", table_name=name)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/test",
            "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        ),
        ("postgres://u:p@127.0.0.1/db", "postgresql+asyncpg://u:p@127.0.0.1/db"),
        ("sqlite:///audit.db", "sqlite+aiosqlite:///audit.db"),
        ("postgresql+asyncpg://127.0.0.1/db", "postgresql+asyncpg://127.0.0.1/db"),
    ],
)
def test_to_async_url_adds_driver(url: str, expected: str) -> None:
    """Plain PostgreSQL and SQLite URLs get their async driver; explicit drivers stay."""
    assert to_async_url(url) == expected


def test_sql_audit_sink_missing_driver_names_extra() -> None:
    """A URL whose async driver is not installed raises `MissingExtraError` with the extra."""
    with pytest.raises(MissingExtraError, match=r"stale-tokens\[sql\]") as caught:
        SqlAuditSink("mysql+aiomysql://127.0.0.1/db")
    assert isinstance(caught.value, ImportError)


def test_to_async_url_rejects_garbage() -> None:
    """A string that is not a URL raises `ConfigurationError`."""
    with pytest.raises(ConfigurationError, match="not a database URL"):
        to_async_url("not a url")


async def test_sql_activity_missing_table_raises_database_error(engine: AsyncEngine) -> None:
    """A query on a table that does not exist raises `DatabaseError` naming the table."""
    source = SqlActivitySource(engine, table_name="no_such_table")

    with pytest.raises(
        DatabaseError, match="reading the latest activity failed \\(table 'no_such_table'\\)"
    ):
        await source.last_activity(["id-1"])


async def test_sql_audit_sink_unreachable_database_raises_database_error() -> None:
    """A database that refuses the connection raises `DatabaseError`, not a driver error."""
    sink = SqlAuditSink(f"postgresql://postgres@127.0.0.1:{free_port()}/test")

    with pytest.raises(DatabaseError, match="creating the table failed") as caught:
        await sink.emit(event())

    assert caught.value.table == "security_audit"
    await sink.aclose()


def test_sql_audit_sink_unknown_dialect_raises_configuration_error() -> None:
    """A URL whose dialect SQLAlchemy does not know raises `ConfigurationError`."""
    with pytest.raises(ConfigurationError, match="unknown SQLAlchemy dialect"):
        SqlAuditSink("nosuchdb://127.0.0.1/audit")
