"""`RedisSweepLock` against the Redis server named by STALE_TOKENS_TEST_REDIS_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from stale_tokens import (
    ConfigurationError,
    Policy,
    RedisSweepLock,
    SweepAbortedError,
    SweepLock,
    sweep,
)
from stale_tokens.testing import OryEmulator
from sweeping import NOW, add_identity, clients

REDIS_URL = os.environ.get("STALE_TOKENS_TEST_REDIS_URL")

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        REDIS_URL is None,
        reason="set STALE_TOKENS_TEST_REDIS_URL, such as redis://127.0.0.1:6379/0",
    ),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[redis.asyncio.Redis]:
    assert REDIS_URL is not None
    connection = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield connection
    finally:
        await connection.aclose()


@pytest.fixture
def key() -> str:
    return f"stale_tokens:test:{uuid.uuid4()}"


@pytest.mark.anyio
async def test_redis_lock_excludes_second_owner(client: redis.asyncio.Redis, key: str) -> None:
    """The lock stores its owner with an expiry and refuses a second owner."""
    lock = RedisSweepLock(client, key=key, ttl=60)

    assert isinstance(lock, SweepLock)
    assert await lock.acquire("run-a")
    assert not await lock.acquire("run-b")
    assert await client.get(key) == "run-a"
    assert 0 < await client.pttl(key) <= 60_000

    await client.delete(key)


@pytest.mark.anyio
async def test_redis_lock_release_checks_owner(client: redis.asyncio.Redis, key: str) -> None:
    """Only the owner's release deletes the key; afterwards another run can take it."""
    lock = RedisSweepLock(client, key=key, ttl=60)
    await lock.acquire("run-a")

    await lock.release("run-b")
    assert await client.get(key) == "run-a"
    await lock.release("run-a")
    assert await client.exists(key) == 0
    assert await lock.acquire("run-b")

    await client.delete(key)


@pytest.mark.anyio
async def test_redis_lock_stops_overlapping_sweep(client: redis.asyncio.Redis, key: str) -> None:
    """A sweep finds the lock held by another machine's run and acts on nothing."""
    emulator = OryEmulator(seed=1, clock=lambda: NOW)
    add_identity(emulator, days_inactive=100)
    lock = RedisSweepLock(client, key=key, ttl=60)
    await client.set(key, "run-on-another-machine")

    async with clients(emulator) as (kratos, hydra):
        with pytest.raises(SweepAbortedError, match="lock"):
            await sweep(kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, lock=lock)

    assert emulator.requests["list_identities"] == 0
    assert await client.get(key) == "run-on-another-machine"

    await client.delete(key)


@pytest.mark.anyio
async def test_redis_lock_released_after_sweep(client: redis.asyncio.Redis, key: str) -> None:
    """A finished sweep deletes its lock key."""
    emulator = OryEmulator(seed=1, clock=lambda: NOW)
    add_identity(emulator, days_inactive=100)
    lock = RedisSweepLock(client, key=key, ttl=60)

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), now=NOW, lock=lock, circuit_breaker=None
        )

    assert report.done == {"revoke": 1}
    assert await client.exists(key) == 0


@pytest.mark.parametrize(("ttl", "key"), [(0.0, "k"), (float("nan"), "k"), (60.0, "")])
def test_redis_lock_rejects_invalid_options(ttl: float, key: str) -> None:
    """A non-positive ttl or an empty key raises ConfigurationError before any command."""
    unconnected = redis.asyncio.Redis()

    with pytest.raises(ConfigurationError):
        RedisSweepLock(unconnected, key=key, ttl=ttl)
