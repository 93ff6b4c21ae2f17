"""The sweep's metrics hook with Prometheus and OpenTelemetry, and the tracker's health export."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest

from stale_tokens import (
    CircuitBreaker,
    ConfigurationError,
    Metrics,
    MissingExtraError,
    Policy,
    SweepAbortedError,
    SweepReport,
    TrackerHealth,
    sweep,
)
from stale_tokens.integrations.opentelemetry import OpenTelemetryMetrics
from stale_tokens.integrations.prometheus import PrometheusMetrics
from stale_tokens.testing import OryEmulator
from sweeping import NOW, RecordingNotifier, add_identity, clients

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def steady_clock() -> Callable[[], float]:
    """A monotonic clock that advances 0.5 s per reading."""
    ticks = iter(range(10_000))
    return lambda: next(ticks) * 0.5


async def run_sweep(metrics: Metrics, **options: Any) -> SweepReport:
    """Sweep two stale identities, one warned and one whose warning fails."""
    emulator = OryEmulator()
    add_identity(emulator, days_inactive=120)
    add_identity(emulator, days_inactive=100)
    add_identity(emulator, days_inactive=84)
    failing = add_identity(emulator, days_inactive=85)
    notifier = RecordingNotifier(failing_ids={failing})
    async with clients(emulator) as (kratos, hydra):
        return await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            notifier=notifier,
            now=NOW,
            circuit_breaker=options.pop("circuit_breaker", None),
            metrics=metrics,
            clock=steady_clock(),
            **options,
        )


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_prometheus_metrics_record_sweep() -> None:
    """Steps, notifications sent and failed, identities and duration match the report."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry=registry)

    report = await run_sweep(metrics)

    assert report.done == {"revoke": 2, "warn": 1}
    assert sample(registry, "stale_tokens_sweeps_total", outcome="failures") == 1
    assert sample(registry, "stale_tokens_sweep_identities_total") == 4
    assert sample(registry, "stale_tokens_sweep_steps_total", step="revoke") == 2
    assert sample(registry, "stale_tokens_sweep_steps_total", step="warn") == 1
    assert sample(registry, "stale_tokens_sweep_failures_total", step="warn") == 1
    assert sample(registry, "stale_tokens_notifications_total", step="warn", outcome="sent") == 1
    assert sample(registry, "stale_tokens_notifications_total", step="warn", outcome="failed") == 1
    assert sample(registry, "stale_tokens_sweep_duration_seconds_count") == 1
    assert sample(registry, "stale_tokens_sweep_duration_seconds_sum") == report.duration
    assert sample(registry, "stale_tokens_sweep_last_success_timestamp_seconds") == 0


async def test_prometheus_metrics_clean_sweep_sets_last_success() -> None:
    """A sweep without failures sets the last-success time to its end."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry=registry)
    emulator = OryEmulator()
    add_identity(emulator, days_inactive=120)

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            metrics=metrics,
            clock=steady_clock(),
        )

    expected = (NOW + timedelta(seconds=report.duration)).timestamp()
    assert sample(registry, "stale_tokens_sweeps_total", outcome="clean") == 1
    assert sample(registry, "stale_tokens_sweep_last_success_timestamp_seconds") == expected


async def test_prometheus_metrics_aborted_sweep() -> None:
    """An aborted sweep counts as one aborted run and adds no steps."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry=registry)
    breaker = CircuitBreaker(max_destructive_count=1, max_destructive_fraction=None)

    with pytest.raises(SweepAbortedError):
        await run_sweep(metrics, circuit_breaker=breaker)

    assert sample(registry, "stale_tokens_sweeps_total", outcome="aborted") == 1
    assert sample(registry, "stale_tokens_sweep_steps_total", step="revoke") is None
    assert sample(registry, "stale_tokens_sweep_identities_total") == 0


async def test_prometheus_metrics_dry_run_counts_no_steps() -> None:
    """A dry run counts as a sweep but its would-be steps are not counted."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry=registry)

    report = await run_sweep(metrics, dry_run=True)

    assert report.done["revoke"] == 2
    assert sample(registry, "stale_tokens_sweeps_total", outcome="dry_run") == 1
    assert sample(registry, "stale_tokens_sweep_steps_total", step="revoke") is None
    assert sample(registry, "stale_tokens_notifications_total", step="warn", outcome="sent") is None


def health(**values: Any) -> TrackerHealth:
    fields: dict[str, Any] = {
        "is_running": True,
        "last_successful_flush_at": None,
        "consecutive_failures": 0,
        "pending": 0,
        "written": 0,
        "failed": 0,
        "dropped": 0,
        "rejected": 0,
        "not_found": 0,
    }
    fields.update(values)
    return TrackerHealth(**fields)


def test_prometheus_metrics_observe_tracker_reads_at_scrape() -> None:
    """Tracker health is read when Prometheus scrapes, not when it is registered."""
    registry = CollectorRegistry()
    snapshots = [
        health(written=5, failed=2, dropped=1, rejected=3, not_found=4, pending=7,
               consecutive_failures=2, last_successful_flush_at=NOW, pending_credentials=6,
               failed_lookups=8),
    ]  # fmt: skip
    reads: list[TrackerHealth] = []

    def read() -> TrackerHealth:
        reads.append(snapshots[0])
        return snapshots[0]

    PrometheusMetrics(registry=registry).observe_tracker(read)
    registered_reads = len(reads)
    exposition = generate_latest(registry).decode()

    assert registered_reads == 0
    assert len(reads) == 1
    assert "stale_tokens_tracker_writes_total 5.0" in exposition
    assert sample(registry, "stale_tokens_tracker_writes_total") == 5
    assert sample(registry, "stale_tokens_tracker_write_failures_total") == 2
    assert sample(registry, "stale_tokens_tracker_dropped_total") == 1
    assert sample(registry, "stale_tokens_tracker_rejected_total") == 3
    assert sample(registry, "stale_tokens_tracker_not_found_total") == 4
    assert sample(registry, "stale_tokens_tracker_pending_identities") == 7
    assert sample(registry, "stale_tokens_tracker_pending_credentials") == 6
    assert sample(registry, "stale_tokens_tracker_failed_lookups_total") == 8
    assert sample(registry, "stale_tokens_tracker_consecutive_failed_flushes") == 2
    assert sample(registry, "stale_tokens_tracker_running") == 1
    assert (
        sample(registry, "stale_tokens_tracker_last_successful_flush_timestamp_seconds")
        == NOW.timestamp()
    )


def test_prometheus_metrics_tracker_before_first_flush() -> None:
    """Before any successful flush the last-flush gauge is absent, not zero."""
    registry = CollectorRegistry()
    PrometheusMetrics(registry=registry, namespace="app").observe_tracker(health)

    assert sample(registry, "app_tracker_last_successful_flush_timestamp_seconds") is None
    assert sample(registry, "app_tracker_pending_identities") == 0


@pytest.mark.parametrize("namespace", ["", "1app", "app-name"])
def test_prometheus_metrics_rejects_invalid_namespace(namespace: str) -> None:
    """A namespace that is not a metric name prefix raises `ConfigurationError`."""
    with pytest.raises(ConfigurationError, match="namespace must be letters"):
        PrometheusMetrics(registry=CollectorRegistry(), namespace=namespace)


def otel_points(reader: InMemoryMetricReader) -> dict[tuple[str, frozenset[tuple[str, Any]]], Any]:
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[tuple[str, frozenset[tuple[str, Any]]], Any] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = frozenset((point.attributes or {}).items())
                    value = getattr(point, "value", None)
                    points[metric.name, attributes] = (
                        value if value is not None else getattr(point, "count", None)
                    )
    return points


async def test_opentelemetry_metrics_record_sweep() -> None:
    """The OpenTelemetry instruments carry the same counts as the report."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics = OpenTelemetryMetrics(meter=provider.get_meter("test"))

    await run_sweep(metrics)

    points = otel_points(reader)
    assert points["stale_tokens.sweeps", frozenset({("outcome", "failures")})] == 1
    assert points["stale_tokens.sweep.identities", frozenset()] == 4
    assert points["stale_tokens.sweep.steps", frozenset({("step", "revoke")})] == 2
    assert points["stale_tokens.sweep.failures", frozenset({("step", "warn")})] == 1
    warn_sent = frozenset({("step", "warn"), ("outcome", "sent")})
    warn_failed = frozenset({("step", "warn"), ("outcome", "failed")})
    assert points["stale_tokens.notifications", warn_sent] == 1
    assert points["stale_tokens.notifications", warn_failed] == 1
    assert points["stale_tokens.sweep.duration", frozenset()] == 1
    provider.shutdown()


def test_opentelemetry_metrics_observe_tracker() -> None:
    """Tracker health is observed at collection time through callbacks."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    current = [health(written=3, pending=2)]

    OpenTelemetryMetrics(meter=provider.get_meter("test")).observe_tracker(lambda: current[0])
    current[0] = health(written=8, pending=1, last_successful_flush_at=NOW)
    points = otel_points(reader)

    assert points["stale_tokens.tracker.writes", frozenset()] == 8
    assert points["stale_tokens.tracker.pending_identities", frozenset()] == 1
    assert points["stale_tokens.tracker.last_successful_flush_timestamp_seconds", frozenset()] == (
        NOW.timestamp()
    )
    provider.shutdown()


@pytest.mark.parametrize(
    ("module", "package", "extra"),
    [
        ("stale_tokens.integrations.prometheus", "prometheus_client", "prometheus"),
        ("stale_tokens.integrations.opentelemetry", "opentelemetry", "otel"),
        ("stale_tokens.integrations.smtp", "aiosmtplib", "smtp"),
        ("stale_tokens.integrations.sql", "sqlalchemy", "sql"),
    ],
)
def test_integration_without_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, module: str, package: str, extra: str
) -> None:
    """An integration whose package is missing raises `MissingExtraError` naming the extra."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == package else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.delitem(sys.modules, module, raising=False)

    with pytest.raises(
        MissingExtraError, match=rf"pip install 'stale-tokens\[{extra}\]'"
    ) as caught:
        importlib.import_module(module)

    assert caught.value.extra == extra
