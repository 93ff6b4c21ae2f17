"""The sweep's locks: a file for cron on one machine, Redis for sweeps on several."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .._errors import ConfigurationError
from .._lock import DEFAULT_REDIS_LOCK_TTL_SECONDS, RedisSweepLock, SweepLock
from ._common import CommandError, redact_url

try:
    import fcntl
except ImportError:  # pragma: no cover - only Windows lacks fcntl.
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_REDIS_LOCK_TTL_SECONDS",
    "REDIS_LOCK_URL_VARIABLE",
    "FileSweepLock",
    "RedisLockError",
    "open_redis_lock",
]

REDIS_LOCK_URL_VARIABLE = "STALE_TOKENS_REDIS_LOCK_URL"


class RedisLockError(Exception):
    """Raised by the Redis lock when the server cannot be reached or rejects a command."""


class _CheckedRedisLock:
    """A `RedisSweepLock` that raises `RedisLockError`, so callers need not import redis."""

    def __init__(self, lock: RedisSweepLock, errors: tuple[type[Exception], ...]) -> None:
        self._lock = lock
        self._errors = errors

    async def acquire(self, owner: str) -> bool:
        try:
            return await self._lock.acquire(owner)
        except self._errors as exc:
            raise RedisLockError(f"{type(exc).__name__}: {exc}") from exc

    async def release(self, owner: str) -> None:
        try:
            await self._lock.release(owner)
        except self._errors as exc:
            raise RedisLockError(f"{type(exc).__name__}: {exc}") from exc


def open_redis_lock(url: str, *, ttl: float, stack: contextlib.AsyncExitStack) -> SweepLock:
    """Return a `SweepLock` in the Redis server at *url*, its client closed with *stack*.

    Raises:
        CommandError: If the ``redis`` package is missing, or the URL or *ttl* is invalid.
    """
    try:
        import redis.asyncio  # noqa: PLC0415 - an optional extra.
        from redis.exceptions import RedisError  # noqa: PLC0415 - an optional extra.
    except ImportError as exc:
        raise CommandError(
            "--redis-lock-url needs the 'redis' package, which is not installed; install it "
            "with: pip install 'stale-tokens[redis]'"
        ) from exc
    try:
        client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    except ValueError as exc:
        raise CommandError(
            f"invalid Redis lock URL {redact_url(url)!r}: {exc}; pass one such as "
            "redis://127.0.0.1:6379/0"
        ) from None
    stack.push_async_callback(client.aclose)
    try:
        lock = RedisSweepLock(client, ttl=ttl)
    except ConfigurationError as exc:
        raise CommandError(str(exc).replace("ttl ", "--redis-lock-ttl ", 1)) from exc
    return _CheckedRedisLock(lock, (RedisError, OSError))


class FileSweepLock:
    """A lock taken with ``flock`` on a file, released when the sweep ends or the process dies.

    The kernel drops an ``flock`` with the process, so a crashed sweep
    leaves no stale lock behind. It protects the sweeps of one machine only.
    On Kubernetes use ``concurrencyPolicy: Forbid`` and ``--redis-lock-url``
    instead. The file contains the run id of the holder while it is held.

    Args:
        path: The lock file; it is created if missing and never deleted.

    Raises:
        CommandError: If the platform has no ``flock`` or the file cannot be opened.
    """

    def __init__(self, path: str) -> None:
        if fcntl is None:  # pragma: no cover - only Windows lacks fcntl.
            raise CommandError("--lock-file needs flock(), which this platform lacks")
        self._path = Path(path)
        self._descriptor: int | None = None
        self._owner: str | None = None

    async def acquire(self, owner: str) -> bool:
        """Take the lock without waiting; return ``False`` when another process holds it."""
        try:
            descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CommandError(
                f"cannot open the lock file {str(self._path)!r}: {exc.strerror}; "
                "pass a --lock-file in a writable directory"
            ) from exc
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{owner}\n".encode())
        self._descriptor = descriptor
        self._owner = owner
        return True

    async def release(self, owner: str) -> None:
        """Release the lock if *owner* holds it."""
        if self._descriptor is None or self._owner != owner:
            return
        os.ftruncate(self._descriptor, 0)
        fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        os.close(self._descriptor)
        self._descriptor = None
        self._owner = None
