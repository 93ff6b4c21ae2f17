"""Numbers that both metrics backends derive from a `SweepReport` and a `TrackerHealth`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .._metrics import NOTIFICATION_STEPS
from .._report import SweepReport
from .._tracker import TrackerHealth

__all__ = [
    "TRACKER_COUNTERS",
    "TRACKER_GAUGES",
    "SweepCounts",
    "sweep_counts",
    "sweep_outcome",
    "tracker_values",
]

OUTCOME_CLEAN = "clean"
OUTCOME_FAILURES = "failures"
OUTCOME_ABORTED = "aborted"
OUTCOME_DRY_RUN = "dry_run"


@dataclass(frozen=True, slots=True)
class SweepCounts:
    """Counts of one sweep's actions by step: done, skipped, failed, notifications."""

    done: Counter[str]
    skipped: Counter[str]
    failed: Counter[str]
    notifications_sent: Counter[str]
    notifications_failed: Counter[str]


def sweep_outcome(report: SweepReport) -> str:
    """Return ``"aborted"``, ``"dry_run"``, ``"failures"`` or ``"clean"``."""
    if report.aborted:
        return OUTCOME_ABORTED
    if report.dry_run:
        return OUTCOME_DRY_RUN
    return OUTCOME_FAILURES if report.failures else OUTCOME_CLEAN


def sweep_counts(report: SweepReport) -> SweepCounts:
    """Count *report*'s actions by step; a dry run counts nothing, because nothing happened."""
    if report.dry_run:
        return SweepCounts(Counter(), Counter(), Counter(), Counter(), Counter())
    done = Counter(report.done)
    failed = Counter(failure.step for failure in report.failures)
    return SweepCounts(
        done=done,
        skipped=Counter(skipped.step for skipped in report.skipped),
        failed=failed,
        notifications_sent=Counter({s: n for s, n in done.items() if s in NOTIFICATION_STEPS}),
        notifications_failed=Counter({s: n for s, n in failed.items() if s in NOTIFICATION_STEPS}),
    )


TRACKER_COUNTERS = {
    "tracker_writes": "Successful metadata_admin writes.",
    "tracker_write_failures": "Writes that failed and went back to the buffer for a retry.",
    "tracker_dropped": "Activities of new identities discarded because the buffer was full.",
    "tracker_rejected": "Identities discarded after Kratos rejected their write with 400.",
    "tracker_not_found": "Identities discarded because Kratos answered 404.",
    "tracker_failed_lookups": "Kratos whoami lookups of session credentials that failed.",
}
TRACKER_GAUGES = {
    "tracker_pending_identities": "Identities whose activity waits in the buffer.",
    "tracker_pending_credentials": "Session credentials waiting for a Kratos whoami lookup.",
    "tracker_consecutive_failed_flushes": "Flushes in a row with at least one failed write.",
    "tracker_running": "1 while the flush loop runs, else 0.",
    "tracker_last_successful_flush_timestamp_seconds": (
        "Unix time when the last flush without a failed write ended."
    ),
}


def tracker_values(health: TrackerHealth) -> tuple[dict[str, int], dict[str, float | None]]:
    """Return *health* as counter and gauge values.

    The keys are those of `TRACKER_COUNTERS` and `TRACKER_GAUGES`. The
    last-flush gauge is ``None`` until the first successful flush.
    """
    counters = {
        "tracker_writes": health.written,
        "tracker_write_failures": health.failed,
        "tracker_dropped": health.dropped,
        "tracker_rejected": health.rejected,
        "tracker_not_found": health.not_found,
        "tracker_failed_lookups": health.failed_lookups,
    }
    flushed_at = health.last_successful_flush_at
    gauges = {
        "tracker_pending_identities": float(health.pending),
        "tracker_pending_credentials": float(health.pending_credentials),
        "tracker_consecutive_failed_flushes": float(health.consecutive_failures),
        "tracker_running": float(health.is_running),
        "tracker_last_successful_flush_timestamp_seconds": (
            flushed_at.timestamp() if flushed_at is not None else None
        ),
    }
    return counters, gauges
