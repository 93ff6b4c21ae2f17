"""OpenTelemetry metrics (extra ``otel``): `OpenTelemetryMetrics`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.util import find_spec

from .._extras import MissingExtraError
from .._report import SweepReport
from .._tracker import TrackerHealth

if find_spec("opentelemetry") is None:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(
        module="stale_tokens.integrations.opentelemetry",
        extra="otel",
        missing="opentelemetry-api",
    )

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ._metrics_values import (
    TRACKER_COUNTERS,
    TRACKER_GAUGES,
    sweep_counts,
    sweep_outcome,
    tracker_values,
)

__all__ = ["INSTRUMENTATION_NAME", "OpenTelemetryMetrics"]

INSTRUMENTATION_NAME = "stale_tokens"


class OpenTelemetryMetrics:
    """A `Metrics` hook that exports sweeps and the tracker's health through OpenTelemetry.

    It records on a `Meter` of the API, so the application's configured
    `MeterProvider` and exporter decide where the numbers go. Without a
    configured provider, the API's no-op provider drops them. The instruments match
    `PrometheusMetrics` with dots: ``stale_tokens.sweeps{outcome}``,
    ``stale_tokens.sweep.identities``, ``stale_tokens.sweep.steps{step}``,
    ``stale_tokens.sweep.skipped{step}``, ``stale_tokens.sweep.failures{step}``,
    ``stale_tokens.notifications{step,outcome}``, ``stale_tokens.sweep.duration``
    (seconds), and the ``stale_tokens.tracker.*`` instruments of `observe_tracker`.

    Args:
        meter: The meter to record on; ``None`` means
            ``opentelemetry.metrics.get_meter("stale_tokens")``.
    """

    def __init__(self, *, meter: Meter | None = None) -> None:
        self._meter = meter if meter is not None else metrics.get_meter(INSTRUMENTATION_NAME)
        create = self._meter.create_counter
        self._sweeps = create("stale_tokens.sweeps", description="Sweeps run, by outcome.")
        self._identities = create(
            "stale_tokens.sweep.identities", description="Identities listed and decided."
        )
        self._steps = create("stale_tokens.sweep.steps", description="Steps carried out.")
        self._skipped = create(
            "stale_tokens.sweep.skipped", description="Due identities left alone."
        )
        self._failures = create(
            "stale_tokens.sweep.failures", description="Identities whose step failed."
        )
        self._notifications = create(
            "stale_tokens.notifications", description="Notifications sent or failed."
        )
        self._duration = self._meter.create_histogram(
            "stale_tokens.sweep.duration", unit="s", description="Duration of sweeps."
        )

    def record_sweep(self, report: SweepReport) -> None:
        """Add *report*'s counts to the instruments; a dry run counts only as a sweep."""
        self._sweeps.add(1, {"outcome": sweep_outcome(report)})
        self._duration.record(report.duration)
        if report.dry_run or report.aborted:
            return

        counts = sweep_counts(report)
        self._identities.add(report.identities_seen)
        for step, count in counts.done.items():
            self._steps.add(count, {"step": step})
        for step, count in counts.skipped.items():
            self._skipped.add(count, {"step": step})
        for step, count in counts.failed.items():
            self._failures.add(count, {"step": step})
        for step, count in counts.notifications_sent.items():
            self._notifications.add(count, {"step": step, "outcome": "sent"})
        for step, count in counts.notifications_failed.items():
            self._notifications.add(count, {"step": step, "outcome": "failed"})

    def observe_tracker(self, health: Callable[[], TrackerHealth]) -> None:
        """Export the tracker's health, read at each collection from *health* (``tracker.health``).

        Observable counters ``stale_tokens.tracker.writes``, ``.write_failures``,
        ``.dropped``, ``.rejected``, ``.not_found`` and ``.failed_lookups``;
        observable gauges ``stale_tokens.tracker.pending_identities``,
        ``.pending_credentials``,
        ``.consecutive_failed_flushes``, ``.running`` and
        ``.last_successful_flush_timestamp_seconds``.
        """
        for name, description in TRACKER_COUNTERS.items():
            self._meter.create_observable_counter(
                _dotted(name), callbacks=[_counter_callback(health, name)], description=description
            )
        for name, description in TRACKER_GAUGES.items():
            self._meter.create_observable_gauge(
                _dotted(name), callbacks=[_gauge_callback(health, name)], description=description
            )


def _dotted(name: str) -> str:
    return "stale_tokens.tracker." + name.removeprefix("tracker_")


def _counter_callback(
    health: Callable[[], TrackerHealth], name: str
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        counters, _ = tracker_values(health())
        return [Observation(counters[name])]

    return observe


def _gauge_callback(
    health: Callable[[], TrackerHealth], name: str
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        _, gauges = tracker_values(health())
        value = gauges[name]
        return [] if value is None else [Observation(value)]

    return observe
