"""Progress of a running sweep: a status line on a terminal, log lines elsewhere."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from .._models import Identity, Session
from .._policy import Policy
from .._ports import KratosSweepClient
from ._logging import StatusLine

__all__ = ["ProgressKratos", "SweepProgress"]

logger = logging.getLogger("stale_tokens.cli")

TERMINAL_REFRESH_SECONDS = 0.2
LOG_INTERVAL_SECONDS = 10.0
SAMPLE_EVERY = 16
"""Decide one listed identity in this many for the estimate; the sweep decides each one anyway."""

_NO_TOTAL = "total unknown: Kratos sends no identity count in keyset pagination"


class SweepProgress:
    """Counts, rates and an estimate of what is left, for the two phases of a sweep.

    While the identities are listed there is no total, because Kratos's
    keyset pagination sends no count, so only the count and the rate are
    shown. The listing also decides a sample of the identities with the
    policy, one in *sample_every*, to estimate how many are due. Deciding
    every identity a second time would double the listing's CPU time. The
    act phase then shows how many of the due identities it has reached and
    an estimate of the time left. The estimate can be off, because of the
    sample, because the sweep leaves out credential kinds it has no client
    for, and because it defers destructive steps beyond
    ``--max-destructive-steps``.

    Args:
        policy: The sweep's policy, for the estimate of identities due.
        now: The sweep's moment, for the same estimate.
        status_line: Where to draw on a terminal; ``None`` writes log lines
            on ``stale_tokens.cli`` at INFO instead.
        clock: Monotonic seconds.
        log_interval: Seconds between two log lines when not on a terminal.
        sample_every: Decide one listed identity in this many; 1 decides all.
    """

    def __init__(
        self,
        *,
        policy: Policy,
        now: datetime,
        status_line: StatusLine | None,
        clock: Callable[[], float] = time.monotonic,
        log_interval: float = LOG_INTERVAL_SECONDS,
        sample_every: int = SAMPLE_EVERY,
    ) -> None:
        self._policy = policy
        self._now = now
        self._status_line = status_line
        self._clock = clock
        self._interval = TERMINAL_REFRESH_SECONDS if status_line is not None else log_interval
        self._phase_started = clock()
        self._last_shown: float | None = None
        self._sample_every = sample_every
        self._sampled = 0
        self._sampled_due = 0
        self.listed = 0
        self.is_listing = True
        self._reached: set[str] = set()

    @property
    def estimated_due(self) -> int:
        """Identities due, extrapolated from the decided sample."""
        if self._sampled == 0:
            return 0
        return round(self._sampled_due * self.listed / self._sampled)

    @property
    def reached(self) -> int:
        """Due identities the act phase has started on."""
        return len(self._reached)

    def add_page(self, page: Sequence[Identity]) -> None:
        """Count a listed page and decide the identities of the sample that are on it."""
        first = -self.listed % self._sample_every
        for identity in page[first :: self._sample_every]:
            self._sampled += 1
            self._sampled_due += self._policy.decide(identity, self._now).has_action
        self.listed += len(page)
        self._show_if_due()

    def end_listing(self) -> None:
        """Switch to the act phase."""
        self._show(self._listing_text(), is_final=True)
        self.is_listing = False
        self._phase_started = self._clock()
        self._last_shown = None

    def reach(self, identity_id: str) -> None:
        """Count an identity the act phase reads, once however often it is read."""
        if identity_id not in self._reached:
            self._reached.add(identity_id)
            self._show_if_due()

    def finish(self) -> None:
        """Show the final counts of the act phase and release the terminal line."""
        if not self.is_listing:
            self._show(self._acting_text(), is_final=True)
        self.close()

    def describe(self) -> str:
        """Return how far the sweep got, for the line printed when it is stopped."""
        if self.is_listing:
            return f"while listing identities (listed: {self.listed:,})"
        return (
            f"while acting (listed: {self.listed:,}, due identities reached: "
            f"{self.reached:,} of about {self.estimated_due:,})"
        )

    def close(self) -> None:
        """Release the terminal line without showing more, as when the sweep was aborted."""
        if self._status_line is not None:
            self._status_line.clear()

    def _show_if_due(self) -> None:
        if self._last_shown is None or self._clock() - self._last_shown >= self._interval:
            text = self._listing_text() if self.is_listing else self._acting_text()
            self._show(text, is_final=False)

    def _show(self, text: str, *, is_final: bool) -> None:
        self._last_shown = self._clock()
        if self._status_line is not None:
            self._status_line.show(text)
        elif is_final or self._last_shown - self._phase_started >= self._interval:
            logger.info("%s", text)

    def _rate(self, count: int) -> float:
        elapsed = self._clock() - self._phase_started
        return count / elapsed if elapsed > 0 else 0.0

    def _listing_text(self) -> str:
        return (
            f"listing: {self.listed:,} identities ({self._rate(self.listed):,.0f}/s), "
            f"about {self.estimated_due:,} due; {_NO_TOTAL}"
        )

    def _acting_text(self) -> str:
        rate = self._rate(self.reached)
        text = (
            f"acting: {self.reached:,} of about {self.estimated_due:,} due identities "
            f"({rate:,.1f}/s)"
        )
        remaining = self.estimated_due - self.reached
        if rate > 0 and remaining > 0:
            text += f", about {_duration(remaining / rate)} left (estimate)"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ProgressKratos:
    """A `KratosSweepClient` that reports listed pages and identity reads to a `SweepProgress`.

    Every call is passed to the wrapped client unchanged.
    """

    def __init__(self, kratos: KratosSweepClient, progress: SweepProgress) -> None:
        self._kratos = kratos
        self._progress = progress

    async def iter_identity_pages(
        self, *, page_size: int | None = None
    ) -> AsyncIterator[list[Identity]]:
        async for page in self._kratos.iter_identity_pages(page_size=page_size):
            self._progress.add_page(page)
            yield page
        self._progress.end_listing()

    async def get_identity(self, identity_id: str) -> Identity:
        self._progress.reach(identity_id)
        return await self._kratos.get_identity(identity_id)

    async def patch_identity(
        self,
        identity_id: str,
        operations: Sequence[Mapping[str, Any]],
        *,
        idempotent: bool = False,
    ) -> Identity:
        return await self._kratos.patch_identity(identity_id, operations, idempotent=idempotent)

    async def set_metadata_admin(
        self, identity_id: str, values: Mapping[str | tuple[str, ...], Any]
    ) -> Identity:
        return await self._kratos.set_metadata_admin(identity_id, values)

    async def list_sessions(self, identity_id: str, *, active: bool | None = None) -> list[Session]:
        return await self._kratos.list_sessions(identity_id, active=active)

    async def delete_sessions(self, identity_id: str) -> bool:
        return await self._kratos.delete_sessions(identity_id)

    async def set_state(self, identity_id: str, state: Literal["active", "inactive"]) -> Identity:
        return await self._kratos.set_state(identity_id, state)

    async def delete_identity(self, identity_id: str) -> bool:
        return await self._kratos.delete_identity(identity_id)
