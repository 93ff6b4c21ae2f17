"""A `SweepLock` held on a file, for sweeps started by cron on one machine."""

from __future__ import annotations

import os
from pathlib import Path

from ._common import CommandError

try:
    import fcntl
except ImportError:  # pragma: no cover - only Windows lacks fcntl.
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileSweepLock"]


class FileSweepLock:
    """A lock taken with ``flock`` on a file, released when the sweep ends or the process dies.

    The kernel drops an ``flock`` with the process, so a crashed sweep
    leaves no stale lock behind. It protects the sweeps of one machine only;
    on Kubernetes use ``concurrencyPolicy: Forbid`` instead. The file
    contains the run id of the holder while it is held.

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
