"""`stale-tokens sweep --redis-lock-url`: one sweep lock for every machine that reaches Redis."""

from __future__ import annotations

import os
import uuid

import anyio
import pytest
import redis.asyncio

from cli_helpers import BASE_URL, add_inactive_identity, run_on
from stale_tokens import RedisSweepLock
from stale_tokens.testing import OryEmulator

REDIS_URL = os.environ.get("STALE_TOKENS_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    REDIS_URL is None,
    reason="set STALE_TOKENS_TEST_REDIS_URL, such as redis://127.0.0.1:6379/0",
)


def test_redis_lock_with_lock_file_exits_2() -> None:
    """--lock-file and --redis-lock-url together are a usage error, before any request."""
    emulator = OryEmulator()

    result = run_on(
        emulator,
        "sweep",
        "--kratos-url",
        BASE_URL,
        "--lock-file",
        "sweep.lock",
        "--redis-lock-url",
        "redis://127.0.0.1:1/0",
    )

    assert result.code == 2
    assert "--lock-file and a Redis lock URL were both given" in result.stderr
    assert sum(emulator.requests.values()) == 0


def test_redis_lock_unreachable_exits_1() -> None:
    """A Redis server that refuses the connection ends the run with 1 before any listing."""
    emulator = OryEmulator()

    result = run_on(
        emulator,
        "sweep",
        "--kratos-url",
        BASE_URL,
        environ={"STALE_TOKENS_REDIS_LOCK_URL": "redis://:s3cret-pw@127.0.0.1:1/0"},
    )

    assert result.code == 1
    assert result.stderr.startswith(
        "stale-tokens: error: the Redis lock at redis://***@127.0.0.1:1/0 failed: "
    )
    assert "s3cret-pw" not in result.stderr
    assert emulator.requests["list_identities"] == 0


def test_redis_lock_ttl_invalid_exits_2() -> None:
    """A zero --redis-lock-ttl is rejected with the option's name."""
    emulator = OryEmulator()

    result = run_on(
        emulator,
        "sweep",
        "--kratos-url",
        BASE_URL,
        "--redis-lock-url",
        "redis://127.0.0.1:1/0",
        "--redis-lock-ttl",
        "0",
    )

    assert result.code == 2
    assert "--redis-lock-ttl must be a positive number of seconds" in result.stderr
    assert sum(emulator.requests.values()) == 0


async def _redis(key: str, command: str, *args: str) -> object:
    assert REDIS_URL is not None
    client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        if command == "hold":
            return await RedisSweepLock(client, key=key, ttl=60).acquire(args[0])
        if command == "get":
            return await client.get(key)
        return await client.delete(key)
    finally:
        await client.aclose()


@pytest.mark.redis
@needs_redis
def test_redis_lock_held_exits_2() -> None:
    """When another run holds the Redis lock, the sweep lists nothing and exits with 2."""
    assert REDIS_URL is not None
    key = "stale_tokens:sweep_lock"
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)
    assert anyio.run(_redis, key, "hold", f"other-{uuid.uuid4()}")
    try:
        result = run_on(emulator, "sweep", "--kratos-url", BASE_URL, "--redis-lock-url", REDIS_URL)
    finally:
        anyio.run(_redis, key, "delete")

    assert result.code == 2
    assert "the sweep lock is held by another run" in result.stderr
    assert emulator.requests["list_identities"] == 0


@pytest.mark.redis
@needs_redis
def test_redis_lock_free_is_taken_and_released() -> None:
    """A free Redis lock is taken for the run and deleted afterwards."""
    assert REDIS_URL is not None
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)
    anyio.run(_redis, "stale_tokens:sweep_lock", "delete")

    result = run_on(emulator, "sweep", "--kratos-url", BASE_URL, "--redis-lock-url", REDIS_URL)

    assert result.code == 0, result.stderr
    assert emulator.requests["delete_sessions"] == 1
    assert anyio.run(_redis, "stale_tokens:sweep_lock", "get") is None
