"""Databases for the SQL integration tests: SQLite always, PostgreSQL when its URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from stale_tokens.integrations.sql import to_async_url

POSTGRES_URL_VARIABLE = "STALE_TOKENS_TEST_POSTGRES_URL"
# A zone far from UTC, so grouping by the session's zone instead of UTC
# would move events across a month boundary.
POSTGRES_SESSION_TIME_ZONE = "Pacific/Kiritimati"

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not os.environ.get(POSTGRES_URL_VARIABLE),
                reason=f"{POSTGRES_URL_VARIABLE} is not set",
            ),
        ],
    ),
]


@asynccontextmanager
async def open_database(kind: str, directory: Path) -> AsyncIterator[AsyncEngine]:
    """Yield an engine on a fresh SQLite file or on the PostgreSQL test database."""
    options: dict[str, Any] = {}
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / 'test.sqlite'}"
    else:
        url = to_async_url(os.environ[POSTGRES_URL_VARIABLE])
        options["connect_args"] = {"server_settings": {"timezone": POSTGRES_SESSION_TIME_ZONE}}
    engine = create_async_engine(url, **options)
    if kind == "sqlite":
        # Each audit event commits on its own; skipping fsync keeps the tests fast.
        event.listen(engine.sync_engine, "connect", _skip_fsync)
    try:
        yield engine
    finally:
        await engine.dispose()


def unique_table_name(prefix: str) -> str:
    """Return a table name no other test run uses, so runs can share one PostgreSQL database."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def drop_table(engine: AsyncEngine, name: str) -> None:
    """Drop table *name* if it exists."""
    table = Table(name, MetaData())
    async with engine.begin() as connection:
        await connection.run_sync(table.drop, checkfirst=True)


async def has_table(engine: AsyncEngine, name: str) -> bool:
    """Whether table *name* exists."""
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: sync.dialect.has_table(sync, name))


def _skip_fsync(connection: Any, record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous = OFF")
    cursor.close()
