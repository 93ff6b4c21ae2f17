"""Prometheus metrics (extra ``prometheus``): `PrometheusMetrics`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from importlib.util import find_spec

from .._errors import ConfigurationError
from .._extras import MissingExtraError
from .._report import SweepReport
from .._tracker import TrackerHealth

if find_spec("prometheus_client") is None:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(
        module="stale_tokens.integrations.prometheus",
        extra="prometheus",
        missing="prometheus-client",
    )

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._metrics_values import (
    TRACKER_COUNTERS,
    TRACKER_GAUGES,
    sweep_counts,
    sweep_outcome,
    tracker_values,
)

__all__ = ["DEFAULT_NAMESPACE", "SWEEP_DURATION_BUCKETS", "PrometheusMetrics"]

DEFAULT_NAMESPACE = "stale_tokens"
# Seconds: a small deployment sweeps in seconds, a large one in hours.
SWEEP_DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 10800.0, float("inf"))
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class PrometheusMetrics:
    """A `Metrics` hook that exports sweeps and the tracker's health to Prometheus.

    Sweep metrics are updated once per sweep by `record_sweep`; pass the
    object as ``sweep(metrics=...)``. Tracker metrics are read from
    `TrackerHealth` when Prometheus scrapes, through `observe_tracker`, so
    the request path is never touched. The names, with the default namespace:

    - ``stale_tokens_sweeps_total{outcome}``: ``clean``, ``failures``,
      ``aborted`` or ``dry_run``.
    - ``stale_tokens_sweep_identities_total``: identities listed and decided.
    - ``stale_tokens_sweep_steps_total{step}``: steps carried out.
    - ``stale_tokens_sweep_skipped_total{step}`` and
      ``stale_tokens_sweep_failures_total{step}``.
    - ``stale_tokens_notifications_total{step,outcome}``: ``sent`` or ``failed``.
    - ``stale_tokens_sweep_duration_seconds``: a histogram.
    - ``stale_tokens_sweep_last_success_timestamp_seconds``: the end of the
      last sweep that was not aborted and had no failure.
    - ``stale_tokens_tracker_*``: see `observe_tracker`.

    A dry run only counts in ``sweeps_total`` and the duration.

    Args:
        registry: Where the metrics are registered; ``None`` means the
            default ``prometheus_client.REGISTRY``.
        namespace: Prefix of every metric name.

    Raises:
        ConfigurationError: If *namespace* is not a valid metric name prefix.
    """

    def __init__(
        self, *, registry: CollectorRegistry | None = None, namespace: str = DEFAULT_NAMESPACE
    ) -> None:
        if _NAME.fullmatch(namespace) is None:
            raise ConfigurationError(
                f"namespace must be letters, digits and underscores, starting with a letter "
                f"or underscore, got {namespace!r}"
            )
        self._registry = registry if registry is not None else REGISTRY
        self._namespace = namespace

        registry = self._registry
        self._sweeps = Counter(
            "sweeps", "Sweeps run, by outcome.", ["outcome"], namespace=namespace, registry=registry
        )
        self._identities = Counter(
            "sweep_identities",
            "Identities listed and decided by sweeps.",
            namespace=namespace,
            registry=registry,
        )
        self._steps = Counter(
            "sweep_steps",
            "Steps carried out, by step.",
            ["step"],
            namespace=namespace,
            registry=registry,
        )
        self._skipped = Counter(
            "sweep_skipped",
            "Due identities left alone, by step.",
            ["step"],
            namespace=namespace,
            registry=registry,
        )
        self._failures = Counter(
            "sweep_failures",
            "Identities whose step failed, by step.",
            ["step"],
            namespace=namespace,
            registry=registry,
        )
        self._notifications = Counter(
            "notifications",
            "Notifications by step and outcome (sent or failed).",
            ["step", "outcome"],
            namespace=namespace,
            registry=registry,
        )

        self._duration = Histogram(
            "sweep_duration_seconds",
            "Duration of sweeps in seconds.",
            buckets=SWEEP_DURATION_BUCKETS,
            namespace=namespace,
            registry=registry,
        )
        self._last_success = Gauge(
            "sweep_last_success_timestamp_seconds",
            "Unix time when the last sweep without failures ended.",
            namespace=namespace,
            registry=registry,
        )

    def record_sweep(self, report: SweepReport) -> None:
        """Add *report*'s counts to the sweep metrics."""
        outcome = sweep_outcome(report)
        self._sweeps.labels(outcome=outcome).inc()
        self._duration.observe(report.duration)
        if report.dry_run or report.aborted:
            return

        counts = sweep_counts(report)
        self._identities.inc(report.identities_seen)
        for step, count in counts.done.items():
            self._steps.labels(step=step).inc(count)
        for step, count in counts.skipped.items():
            self._skipped.labels(step=step).inc(count)
        for step, count in counts.failed.items():
            self._failures.labels(step=step).inc(count)
        for step, count in counts.notifications_sent.items():
            self._notifications.labels(step=step, outcome="sent").inc(count)
        for step, count in counts.notifications_failed.items():
            self._notifications.labels(step=step, outcome="failed").inc(count)
        if not report.failures:
            self._last_success.set(report.started_at.timestamp() + report.duration)

    def observe_tracker(self, health: Callable[[], TrackerHealth]) -> None:
        """Export the tracker's health, read at each scrape from *health* (``tracker.health``).

        Counters: ``tracker_writes_total``, ``tracker_write_failures_total``,
        ``tracker_dropped_total``, ``tracker_rejected_total``,
        ``tracker_not_found_total``, ``tracker_failed_lookups_total``. Gauges:
        ``tracker_pending_identities``, ``tracker_pending_credentials``,
        ``tracker_consecutive_failed_flushes``, ``tracker_running`` and
        ``tracker_last_successful_flush_timestamp_seconds``.
        """
        self._registry.register(_TrackerCollector(health, self._namespace))


class _TrackerCollector(Collector):
    def __init__(self, health: Callable[[], TrackerHealth], namespace: str) -> None:
        self._health = health
        self._namespace = namespace

    def describe(self) -> list[Metric]:
        # An empty description keeps registration from calling health() early.
        return []

    def collect(self) -> Iterator[Metric]:
        counters, gauges = tracker_values(self._health())
        for name, count in counters.items():
            yield CounterMetricFamily(
                f"{self._namespace}_{name}", TRACKER_COUNTERS[name], value=count
            )
        for name, value in gauges.items():
            if value is not None:
                yield GaugeMetricFamily(
                    f"{self._namespace}_{name}", TRACKER_GAUGES[name], value=value
                )
