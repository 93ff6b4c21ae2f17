"""The metrics hook: what a sweep reports to a metrics backend when it ends."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._report import SweepReport

__all__ = ["NOTIFICATION_STEPS", "Metrics"]

# Steps whose action is a message to the user, counted as notifications.
NOTIFICATION_STEPS = frozenset({"warn", "re_engage", "delete_notice"})


@runtime_checkable
class Metrics(Protocol):
    """Receives each sweep's report once the sweep ends, aborted sweeps included.

    It is called once per run, never per identity or per request, so a
    sweep without metrics pays nothing. `PrometheusMetrics` and
    `OpenTelemetryMetrics` in ``stale_tokens.integrations`` implement it and
    also export the tracker's `TrackerHealth` counters.
    """

    def record_sweep(self, report: SweepReport) -> None:
        """Record *report*; must not raise."""
