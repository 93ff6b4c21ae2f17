"""The in-memory buffer of activity timestamps waiting to be written to Kratos.

Timestamps are POSIX seconds (floats): a float costs 24 bytes where an aware
datetime costs 48, and the buffer holds up to ``max_pending`` of them.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ._decision import CredentialKind

__all__ = ["ActivityBuffer", "PendingWrite"]


class PendingWrite(NamedTuple):
    """The values one flush writes for one identity.

    ``activity_at`` is ``None`` when only a per-kind timestamp is newer than
    what this process already wrote.
    """

    identity_id: str
    activity_at: float | None
    kind_at: dict[CredentialKind, float]


class _Written:
    """The values this process last wrote for one identity, and the time of that write."""

    __slots__ = ("activity_at", "kind_at", "written_at")

    def __init__(self) -> None:
        self.written_at = -math.inf
        self.activity_at = -math.inf
        self.kind_at: dict[CredentialKind, float] = {}


class ActivityBuffer:
    """Newest activity per identity (and per credential kind), bounded in size.

    `add` takes no lock, because the middleware calls it on every request from
    the event loop thread, where no flush step can interleave with it. Callers
    on other threads hold `lock` around `add`. Every other method takes `lock`
    itself and releases it before any I/O.
    """

    def __init__(
        self, *, max_pending: int, early_flush_size: int, on_nearly_full: Callable[[], None]
    ) -> None:
        self.lock = threading.Lock()
        self._max_pending = max_pending
        self._early_flush_size = early_flush_size
        self._on_nearly_full = on_nearly_full
        self._activity: dict[str, float] = {}
        self._by_kind: dict[CredentialKind, dict[str, float]] = {
            kind: {} for kind in CredentialKind
        }
        # Ordered by write time, oldest first, so eviction pops from the front.
        self._written: dict[str, _Written] = {}
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._activity)

    def add(self, identity_id: str, at: float, kind: CredentialKind | None) -> None:
        """Keep *at* if it is the newest activity of *identity_id*.

        Calls *on_nearly_full* when a new identity brings the buffer to
        *early_flush_size*. When the buffer is full and *identity_id* is not in
        it yet, the activity is dropped and counted in `dropped`.
        """
        activity = self._activity
        previous = activity.get(identity_id)
        if previous is None:
            size = len(activity)
            if size >= self._max_pending:
                self.dropped += 1
                return
            activity[identity_id] = at
            if size + 1 >= self._early_flush_size:
                self._on_nearly_full()
        elif at > previous:
            activity[identity_id] = at

        if kind is not None:
            by_kind = self._by_kind[kind]
            if at > by_kind.get(identity_id, -math.inf):
                by_kind[identity_id] = at

    def take_due(self, now: float, *, min_write_interval: float, limit: int) -> list[PendingWrite]:
        """Remove and return up to *limit* identities whose write window has closed.

        Entries with nothing newer than what this process already wrote are
        discarded. Entries still inside their window stay. When more are due
        than *limit* allows, the least recently written go first, and among
        those the oldest activity.
        """
        with self.lock:
            due: list[tuple[float, float, str]] = []
            for identity_id, at in list(self._activity.items()):
                written = self._written.get(identity_id)
                if written is None:
                    due.append((-math.inf, at, identity_id))
                elif not self._has_news(identity_id, at, written):
                    self._discard(identity_id)
                elif now - written.written_at >= min_write_interval:
                    due.append((written.written_at, at, identity_id))

            chosen = due if len(due) <= limit else heapq.nsmallest(limit, due)
            return [self._pop(identity_id) for _, _, identity_id in chosen]

    def put_back(self, entries: Iterable[PendingWrite]) -> None:
        """Return entries a flush could not write, keeping the newest timestamp per key.

        Returned entries are accepted even when the buffer is full: they were
        counted when they first arrived, and they are the oldest activity.
        """
        with self.lock:
            for entry in entries:
                identity_id = entry.identity_id
                restored = entry.activity_at
                if restored is None:
                    restored = max(entry.kind_at.values())
                if restored > self._activity.get(identity_id, -math.inf):
                    self._activity[identity_id] = restored
                for kind, at in entry.kind_at.items():
                    by_kind = self._by_kind[kind]
                    if at > by_kind.get(identity_id, -math.inf):
                        by_kind[identity_id] = at

    def mark_written(self, entry: PendingWrite, written_at: float, *, max_remembered: int) -> None:
        """Remember what was written for *entry*, forgetting the oldest beyond *max_remembered*."""
        with self.lock:
            written = self._written.pop(entry.identity_id, None) or _Written()
            written.written_at = written_at
            if entry.activity_at is not None:
                written.activity_at = max(written.activity_at, entry.activity_at)
            for kind, at in entry.kind_at.items():
                written.kind_at[kind] = max(written.kind_at.get(kind, -math.inf), at)
            self._written[entry.identity_id] = written

            while len(self._written) > max_remembered:
                del self._written[next(iter(self._written))]

    def _has_news(self, identity_id: str, at: float, written: _Written) -> bool:
        if at > written.activity_at:
            return True
        return any(
            identity_id in by_kind and by_kind[identity_id] > written.kind_at.get(kind, -math.inf)
            for kind, by_kind in self._by_kind.items()
        )

    def _pop(self, identity_id: str) -> PendingWrite:
        at = self._activity.pop(identity_id)
        kind_at = {
            kind: by_kind.pop(identity_id)
            for kind, by_kind in self._by_kind.items()
            if identity_id in by_kind
        }
        written = self._written.get(identity_id)
        if written is None:
            return PendingWrite(identity_id, at, kind_at)

        newer_kinds = {
            kind: kind_time
            for kind, kind_time in kind_at.items()
            if kind_time > written.kind_at.get(kind, -math.inf)
        }
        newer_activity = at if at > written.activity_at else None
        return PendingWrite(identity_id, newer_activity, newer_kinds)

    def _discard(self, identity_id: str) -> None:
        del self._activity[identity_id]
        for by_kind in self._by_kind.values():
            by_kind.pop(identity_id, None)
