"""The scheduled sweep: one `sweep()` every *interval* seconds, for the app's lifespan."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio

from stale_tokens import (
    HydraAdmin,
    KratosAdmin,
    Policy,
    StaleTokensError,
    SweepAbortedError,
    SweepLock,
    SweepReport,
    format_timestamp,
    sweep,
)

__all__ = ["SweepSchedule"]

logger = logging.getLogger("fastapi_app.sweep")


@dataclass(slots=True)
class SweepSchedule:
    """Runs a sweep every *interval* seconds and keeps the outcome of the last one.

    The first sweep starts one interval after the app, so a restart loop
    cannot sweep over and over. Run it in one replica only (set the interval
    to 0 elsewhere), or give every replica the same *lock*; see the
    deployment guide.
    """

    kratos: KratosAdmin
    hydra: HydraAdmin | None
    policy: Policy
    interval: float
    dry_run: bool = False
    lock: SweepLock | None = None
    last_report: SweepReport | None = None
    last_error: str | None = None
    last_finished_at: datetime | None = None

    async def run_forever(self) -> None:
        """Sweep every *interval* seconds until cancelled."""
        while True:
            await anyio.sleep(self.interval)
            await self.run_once()

    async def run_once(self) -> SweepReport | None:
        """Run one sweep and keep its report; return ``None`` when it failed or was aborted."""
        report: SweepReport | None = None
        try:
            report = await sweep(
                kratos=self.kratos,
                hydra=self.hydra,
                policy=self.policy,
                dry_run=self.dry_run,
                lock=self.lock,
            )
        except SweepAbortedError as exc:
            self.last_report = exc.report
            self.last_error = str(exc)
            # The sweeper has logged the reason at ERROR already.
            logger.warning("Scheduled sweep aborted: %s", exc.report.abort_reason)
        except StaleTokensError as exc:
            # Listing identities failed after the client's retries; the next
            # interval tries again.
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.exception("Scheduled sweep failed")
        else:
            self.last_report = report
            self.last_error = None
        self.last_finished_at = datetime.now(UTC)
        return report

    def status(self) -> dict[str, Any]:
        """Return the schedule and the last outcome as JSON-ready values."""
        report = self.last_report
        return {
            "interval_seconds": self.interval,
            "dry_run": self.dry_run,
            "last_finished_at": (
                None if self.last_finished_at is None else format_timestamp(self.last_finished_at)
            ),
            "last_error": self.last_error,
            "last_done": None if report is None else dict(report.done),
            "last_failures": None if report is None else len(report.failures),
        }
