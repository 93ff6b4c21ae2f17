"""`SqlPersonalAccessTokenRevoker` on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sql_databases import DATABASES, drop_table, open_database, unique_table_name
from stale_tokens import ConfigurationError, Policy, sweep
from stale_tokens.integrations.sql import (
    EVENT_TOKEN_REVOKED_UNUSED,
    SqlPersonalAccessTokenRevoker,
)
from stale_tokens.testing import OryEmulator
from sweeping import NOW, RecordingAuditSink, add_identity, clients

pytestmark = pytest.mark.anyio

CUTOFF = NOW - timedelta(days=365)
EARLIER_REVOCATION = NOW - timedelta(days=500)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=DATABASES)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with open_database(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture
async def revoker(engine: AsyncEngine) -> AsyncIterator[SqlPersonalAccessTokenRevoker]:
    name = unique_table_name("tokens")
    revoker = SqlPersonalAccessTokenRevoker(
        engine, table_name=name, audit=RecordingAuditSink(), clock=lambda: NOW
    )
    await revoker.create_table()
    yield revoker
    await drop_table(engine, name)


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


TOKENS: list[dict[str, Any]] = [
    # Used 400 days ago: unused since the cutoff.
    {"id": "used-long-ago", "identity_id": "alice", "created_at": days_ago(900),
     "last_used_at": days_ago(400), "revoked_at": None},
    # Used yesterday, though issued long ago.
    {"id": "used-recently", "identity_id": "alice", "created_at": days_ago(900),
     "last_used_at": days_ago(1), "revoked_at": None},
    # Never used and issued 400 days ago.
    {"id": "never-used-old", "identity_id": "bob", "created_at": days_ago(400),
     "last_used_at": None, "revoked_at": None},
    # Never used but issued 10 days ago.
    {"id": "never-used-new", "identity_id": "bob", "created_at": days_ago(10),
     "last_used_at": None, "revoked_at": None},
    # Unused for years and revoked 500 days ago: its revoked_at must stay.
    {"id": "already-revoked", "identity_id": "carol", "created_at": days_ago(900),
     "last_used_at": days_ago(800), "revoked_at": EARLIER_REVOCATION},
]  # fmt: skip


async def insert_tokens(revoker: SqlPersonalAccessTokenRevoker) -> None:
    async with revoker.engine.begin() as connection:
        await connection.execute(insert(revoker.table), TOKENS)


async def revoked_at_by_id(revoker: SqlPersonalAccessTokenRevoker) -> dict[str, datetime | None]:
    table = revoker.table
    async with revoker.engine.connect() as connection:
        rows = (await connection.execute(select(table.c.id, table.c.revoked_at))).all()
    return dict(rows)


def recorded_events(revoker: SqlPersonalAccessTokenRevoker) -> RecordingAuditSink:
    audit = revoker._audit
    assert isinstance(audit, RecordingAuditSink)
    return audit


async def test_revoke_unused_tokens_revokes_idle_only(
    revoker: SqlPersonalAccessTokenRevoker,
) -> None:
    """Tokens idle since before the cutoff are revoked; recent and new ones stay valid."""
    await insert_tokens(revoker)

    revoked = await revoker.revoke_unused_tokens(CUTOFF)

    assert sorted(revoked) == ["never-used-old", "used-long-ago"]
    revoked_at = await revoked_at_by_id(revoker)
    assert revoked_at["used-long-ago"] == NOW
    assert revoked_at["never-used-old"] == NOW
    assert revoked_at["used-recently"] is None
    assert revoked_at["never-used-new"] is None


async def test_revoke_unused_tokens_keeps_earlier_revocation(
    revoker: SqlPersonalAccessTokenRevoker,
) -> None:
    """An already-revoked token keeps its original revoked_at and is not reported again."""
    await insert_tokens(revoker)

    revoked = await revoker.revoke_unused_tokens(CUTOFF)

    assert "already-revoked" not in revoked
    revoked_at = await revoked_at_by_id(revoker)
    assert revoked_at["already-revoked"] == EARLIER_REVOCATION


async def test_revoke_unused_tokens_emits_audit_events(
    revoker: SqlPersonalAccessTokenRevoker,
) -> None:
    """Each revoked token gets one audit event with its owner, idle days and id."""
    await insert_tokens(revoker)

    await revoker.revoke_unused_tokens(CUTOFF, policy_name="tokens-yearly")

    events = sorted(recorded_events(revoker).events, key=lambda event: event.details["token_id"])
    assert [event.type for event in events] == [EVENT_TOKEN_REVOKED_UNUSED] * 2
    assert [event.identity_id for event in events] == ["bob", "alice"]
    assert [event.details["token_id"] for event in events] == ["never-used-old", "used-long-ago"]
    assert [event.days_inactive for event in events] == [400, 400]
    assert {event.policy for event in events} == {"tokens-yearly"}
    assert {event.occurred_at for event in events} == {NOW}


async def test_revoke_unused_tokens_second_run_revokes_nothing(
    revoker: SqlPersonalAccessTokenRevoker,
) -> None:
    """A second run finds nothing left and keeps the first run's revoked_at."""
    await insert_tokens(revoker)
    await revoker.revoke_unused_tokens(CUTOFF)
    first = await revoked_at_by_id(revoker)

    revoked = await revoker.revoke_unused_tokens(CUTOFF)

    assert revoked == []
    assert await revoked_at_by_id(revoker) == first


async def test_revoke_personal_access_tokens_per_identity(
    revoker: SqlPersonalAccessTokenRevoker,
) -> None:
    """Every valid token of one identity is revoked, once; other identities keep theirs."""
    await insert_tokens(revoker)

    first = await revoker.revoke_personal_access_tokens("alice")
    second = await revoker.revoke_personal_access_tokens("alice")

    assert first == 2
    assert second == 0
    revoked_at = await revoked_at_by_id(revoker)
    assert revoked_at["used-recently"] == NOW
    assert revoked_at["used-long-ago"] == NOW
    assert revoked_at["never-used-old"] is None
    assert revoked_at["already-revoked"] == EARLIER_REVOCATION


async def test_revoke_personal_access_tokens_keeps_earlier_revocation(
    revoker: SqlPersonalAccessTokenRevoker,
) -> None:
    """Revoking an identity whose only token is revoked changes nothing."""
    await insert_tokens(revoker)

    assert await revoker.revoke_personal_access_tokens("carol") == 0

    revoked_at = await revoked_at_by_id(revoker)
    assert revoked_at["already-revoked"] == EARLIER_REVOCATION


@pytest.mark.parametrize(
    "url", ["sqlite:///unused.sqlite", "postgresql://postgres@127.0.0.1:5432/unused"]
)
def test_unused_tokens_statement_groups_the_or(url: str) -> None:
    """The compiled condition keeps the OR inside parentheses after revoked_at IS NULL."""
    revoker = SqlPersonalAccessTokenRevoker(url, table_name="pat")
    dialect = revoker.engine.dialect

    sql = str(revoker.unused_tokens_statement(CUTOFF, NOW).compile(dialect=dialect))

    where = " ".join(sql.split("WHERE", 1)[1].split("RETURNING", 1)[0].split())
    # Placeholders differ by driver (?, $1, %(name)s) and PostgreSQL adds a cast.
    where = re.sub(r"(\?|\$\d+|%\(\w+\)s)(::TIMESTAMP WITH TIME ZONE)?", ":cutoff", where)
    assert where == (
        "pat.revoked_at IS NULL AND (pat.last_used_at < :cutoff "
        "OR (pat.last_used_at IS NULL AND pat.created_at < :cutoff))"
    )


@pytest.mark.parametrize(
    "option",
    ["table_name", "id_column", "identity_column", "created_at_column", "last_used_at_column",
     "revoked_at_column"],
)  # fmt: skip
def test_sql_token_revoker_rejects_invalid_names(option: str) -> None:
    """Every configurable name is checked as an SQL identifier."""
    options: dict[str, Any] = {option: "x; DELETE FROM t"}
    with pytest.raises(ConfigurationError, match=f"{option} must be an SQL identifier"):
        SqlPersonalAccessTokenRevoker("sqlite:///unused.sqlite", **options)


def test_sql_token_revoker_custom_names() -> None:
    """Custom table and column names are used in the statement."""
    revoker = SqlPersonalAccessTokenRevoker(
        "sqlite:///unused.sqlite",
        table_name="api_keys",
        id_column="key_id",
        identity_column="owner",
        created_at_column="issued",
        last_used_at_column="seen",
        revoked_at_column="disabled",
    )

    sql = str(revoker.unused_tokens_statement(CUTOFF, NOW).compile(dialect=revoker.engine.dialect))

    assert sql.startswith("UPDATE api_keys SET disabled=?")
    assert "api_keys.seen IS NULL AND api_keys.issued < ?" in sql
    assert sql.endswith("RETURNING key_id, owner, issued, seen")


async def test_sql_token_revoker_rejects_naive_cutoff(
    revoker: SqlPersonalAccessTokenRevoker,
) -> None:
    """A naive cutoff raises instead of being read in an unknown zone."""
    with pytest.raises(ValueError, match="cutoff"):
        await revoker.revoke_unused_tokens(datetime(2025, 1, 1))  # noqa: DTZ001


def test_sql_token_revoker_uses_utc_clock_by_default() -> None:
    """Without a clock the revocation time is the current UTC time."""
    revoker = SqlPersonalAccessTokenRevoker("sqlite:///unused.sqlite")
    before = datetime.now(UTC)

    now = revoker._now()

    assert now.tzinfo is UTC
    assert now >= before


async def test_sweep_with_sql_tokens_revokes_stale_identity(
    revoker: SqlPersonalAccessTokenRevoker,
) -> None:
    """A sweep's revocation revokes the stale identity's tokens and leaves the active one's."""
    emulator = OryEmulator()
    stale = add_identity(emulator, days_inactive=120)
    active = add_identity(emulator, days_inactive=2)
    async with revoker.engine.begin() as connection:
        await connection.execute(
            insert(revoker.table),
            [
                {"id": "stale-token", "identity_id": stale, "created_at": days_ago(300),
                 "last_used_at": days_ago(120), "revoked_at": None},
                {"id": "active-token", "identity_id": active, "created_at": days_ago(300),
                 "last_used_at": days_ago(2), "revoked_at": None},
            ],
        )  # fmt: skip
    audit = RecordingAuditSink()

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            audit=audit,
            personal_access_tokens=revoker,
            now=NOW,
            circuit_breaker=None,
        )

    assert report.done == {"revoke": 1}
    revoked_at = await revoked_at_by_id(revoker)
    assert revoked_at == {"stale-token": NOW, "active-token": None}
    (event,) = audit.of_type("tokens_revoked_stale")
    assert event.identity_id == stale
    assert event.details["personal_access_tokens_revoked"] == 1
