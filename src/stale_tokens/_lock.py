"""Locks that keep two sweeps from acting at the same time."""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

__all__ = ["InProcessSweepLock", "SweepLock"]


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

    It does not protect against a second process or a second machine, so
    sweeps started there need a lock shared through a server such as Redis.
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
