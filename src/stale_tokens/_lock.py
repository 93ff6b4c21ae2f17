"""Locks that keep two sweeps from acting at the same time."""

from __future__ import annotations

import math
import threading
from typing import Any, Protocol, runtime_checkable

from ._errors import ConfigurationError

__all__ = ["InProcessSweepLock", "RedisSweepLock", "SweepLock"]

DEFAULT_REDIS_LOCK_KEY = "stale_tokens:sweep_lock"
DEFAULT_REDIS_LOCK_TTL_SECONDS = 6 * 3600.0

# Deletes the key only while it still names this owner, in one server-side
# step, so a run whose lock expired cannot release the next run's lock.
_RELEASE_SCRIPT = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


@runtime_checkable
class SweepLock(Protocol):
    """A mutual-exclusion lock shared by every process that may run a sweep.

    ``acquire`` must not wait: it returns ``False`` at once when another
    owner holds the lock, and the sweep then stops without acting.
    """

    async def acquire(self, owner: str) -> bool:
        """Take the lock for *owner* (a sweep's run id); return whether it was taken."""

    async def release(self, owner: str) -> None:
        """Release the lock if *owner* still holds it, and do nothing otherwise."""


class InProcessSweepLock:
    """A `SweepLock` for sweeps started from one process, such as an APScheduler job.

    It does not protect against a second process or a second machine; use
    `RedisSweepLock` for those.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._owner: str | None = None

    @property
    def owner(self) -> str | None:
        """The run id holding the lock, or ``None``."""
        return self._owner

    async def acquire(self, owner: str) -> bool:
        with self._guard:
            if self._owner is not None:
                return False
            self._owner = owner
            return True

    async def release(self, owner: str) -> None:
        with self._guard:
            if self._owner == owner:
                self._owner = None


class RedisCommands(Protocol):
    """The two commands `RedisSweepLock` sends, as ``redis.asyncio.Redis`` offers them."""

    def set(self, name: str, value: str, *, px: int, nx: bool) -> Any: ...

    def eval(self, script: str, numkeys: int, *keys_and_args: str) -> Any: ...


class RedisSweepLock:
    """A `SweepLock` in Redis, shared by sweeps on every machine that reaches the server.

    The lock is one key set with ``SET key owner NX PX ttl``, and released by
    a script that deletes it only while it still names the owner. The key
    expires after *ttl*, so a sweep that crashed blocks the next one for at
    most that long. A sweep that runs longer than *ttl* loses the lock while
    running, so set it above the longest sweep.

    Args:
        client: A ``redis.asyncio.Redis`` client (``pip install
            'stale-tokens[redis]'``), or anything with the same ``set`` and
            ``eval`` coroutines.
        key: The Redis key of the lock.
        ttl: Seconds until the lock expires, 6 hours by default.

    Raises:
        ConfigurationError: If *ttl* is not a positive number of seconds or
            *key* is empty.
    """

    def __init__(
        self,
        client: RedisCommands,
        *,
        key: str = DEFAULT_REDIS_LOCK_KEY,
        ttl: float = DEFAULT_REDIS_LOCK_TTL_SECONDS,
    ) -> None:
        if not (math.isfinite(ttl) and ttl >= 0.001):
            raise ConfigurationError(
                f"ttl must be a positive number of seconds (at least 0.001), got {ttl!r}; "
                "set it above the duration of the longest sweep"
            )
        if not key:
            raise ConfigurationError("key must be a non-empty Redis key, such as 'sweep_lock'")
        self._client = client
        self.key = key
        self.ttl = ttl

    async def acquire(self, owner: str) -> bool:
        taken = await self._client.set(self.key, owner, px=round(self.ttl * 1000), nx=True)
        return bool(taken)

    async def release(self, owner: str) -> None:
        await self._client.eval(_RELEASE_SCRIPT, 1, self.key, owner)
