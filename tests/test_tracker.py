"""ActivityTracker with a fake writer and an injected clock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from stale_tokens import (
    ActivityTracker,
    BadRequestError,
    ConfigurationError,
    CredentialKind,
    NotFoundError,
    OryAPIError,
    OryConnectionError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
)
from stale_tokens._tracker import MAX_BAD_REQUEST_TRIES, WarningLimiter

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

Values = dict[str | tuple[str, ...], Any]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """POSIX seconds that advance only when a test calls `advance`."""

    def __init__(self) -> None:
        self.now = START.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeWriter:
    """Stores metadata_admin writes like Kratos; `failures` raise instead, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Values]] = []
        self.stored: dict[str, Values] = {}
        self.failures: dict[str, list[BaseException]] = {}
        self.during_write: Callable[[str], None] | None = None
        self.stored_event = anyio.Event()

    async def set_metadata_admin(
        self, identity_id: str, values: Mapping[str | tuple[str, ...], Any]
    ) -> object:
        self.calls.append((identity_id, dict(values)))
        if self.during_write is not None:
            self.during_write(identity_id)
        await anyio.lowlevel.checkpoint()
        queued = self.failures.get(identity_id)
        if queued:
            raise queued.pop(0)
        self.stored.setdefault(identity_id, {}).update(values)
        self.stored_event.set()
        self.stored_event = anyio.Event()
        return None

    async def wait_until_stored(self, count: int) -> None:
        with anyio.fail_after(5):
            while len(self.stored) < count:
                await self.stored_event.wait()

    def written_ids(self) -> list[str]:
        return [identity_id for identity_id, _ in self.calls]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _api_error(cls: type[OryAPIError], status: int) -> OryAPIError:
    kwargs: dict[str, Any] = {"service": "kratos", "operation": "patch identity"}
    if cls is RateLimitedError:
        kwargs["retry_after"] = None
    return cls(f"Kratos answered {status}", status_code=status, **kwargs)


def _tracker(writer: FakeWriter, clock: FakeClock, **options: Any) -> ActivityTracker:
    return ActivityTracker(writer, clock=clock, **options)


@pytest.mark.anyio
async def test_flush_writes_newest_timestamp_once_per_identity() -> None:
    """Many activities of one identity become one write with the newest timestamp."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock)

    tracker.record("id-1")
    clock.advance(5)
    tracker.record("id-1")
    tracker.record("id-2", at=START - timedelta(minutes=1))
    await tracker.flush()

    assert sorted(writer.written_ids()) == ["id-1", "id-2"]
    assert writer.stored["id-1"] == {"last_activity_at": _stamp(START + timedelta(seconds=5))}
    assert writer.stored["id-2"] == {"last_activity_at": _stamp(START - timedelta(minutes=1))}
    assert tracker.health().pending == 0
    assert tracker.health().written == 2


@pytest.mark.anyio
async def test_flush_writes_kind_under_nested_key() -> None:
    """A credential kind is written as a tuple path under kind_key."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock, activity_key="seen", kind_key="seen_by")

    tracker.record("id-1", kind=CredentialKind.OAUTH2)
    tracker.record("id-1", kind="personal_access_token", at=START - timedelta(hours=1))
    await tracker.flush()

    assert writer.calls == [
        (
            "id-1",
            {
                "seen": _stamp(START),
                ("seen_by", "oauth2"): _stamp(START),
                ("seen_by", "personal_access_token"): _stamp(START - timedelta(hours=1)),
            },
        )
    ]


@pytest.mark.anyio
async def test_record_clamps_future_timestamp_to_now() -> None:
    """An activity dated in the future is written as the current time."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock)

    tracker.record("id-1", at=START + timedelta(days=3))
    await tracker.flush()

    assert writer.stored["id-1"] == {"last_activity_at": _stamp(START)}


def test_record_rejects_bad_arguments() -> None:
    """Empty ids, naive datetimes and unknown kinds raise ValueError naming the value."""
    tracker = _tracker(FakeWriter(), FakeClock())

    with pytest.raises(ValueError, match="identity_id"):
        tracker.record("")
    with pytest.raises(ValueError, match="naive"):
        tracker.record("id-1", at=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="'cookie' is not a credential kind"):
        tracker.record("id-1", kind="cookie")
    assert tracker.health().pending == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("flush_interval", 0),
        ("min_write_interval", -1),
        ("max_writes_per_minute", 0),
        ("max_pending", 1.5),
        ("concurrency", True),
        ("activity_key", ""),
        ("shutdown_timeout", -5),
    ],
)
def test_tracker_rejects_invalid_option(option: str, value: Any) -> None:
    """Each invalid option raises ConfigurationError naming it."""
    options: dict[str, Any] = {option: value}
    with pytest.raises(ConfigurationError, match=option):
        ActivityTracker(FakeWriter(), **options)


@pytest.mark.anyio
async def test_flush_holds_activity_inside_write_window() -> None:
    """Activity inside min_write_interval is kept and written when the window closes."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock, min_write_interval=900)

    tracker.record("id-1")
    await tracker.flush()
    clock.advance(60)
    tracker.record("id-1")
    await tracker.flush()

    assert len(writer.calls) == 1
    assert tracker.health().pending == 1

    clock.advance(840)
    await tracker.flush()

    assert len(writer.calls) == 2
    assert writer.stored["id-1"] == {"last_activity_at": _stamp(START + timedelta(seconds=60))}


@pytest.mark.anyio
async def test_flush_never_writes_older_timestamp() -> None:
    """An activity older than one already written is discarded without a write."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock, min_write_interval=0)

    tracker.record("id-1")
    await tracker.flush()
    tracker.record("id-1", at=START - timedelta(hours=2))
    await tracker.flush()

    assert len(writer.calls) == 1
    assert tracker.health().pending == 0


@pytest.mark.anyio
async def test_flush_writes_only_keys_with_newer_values() -> None:
    """A new kind with an old timestamp is written without rewinding last_activity_at."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock, min_write_interval=0)

    tracker.record("id-1")
    await tracker.flush()
    tracker.record("id-1", at=START - timedelta(hours=2), kind="oauth2")
    await tracker.flush()

    assert writer.calls[1] == (
        "id-1",
        {("last_activity_by_kind", "oauth2"): _stamp(START - timedelta(hours=2))},
    )
    assert writer.stored["id-1"]["last_activity_at"] == _stamp(START)


@pytest.mark.anyio
async def test_flush_respects_budget_least_recently_written_first() -> None:
    """Over the budget, never-written identities go first, then the oldest writes."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock, min_write_interval=0, max_writes_per_minute=2)

    tracker.record("early")
    await tracker.flush()
    clock.advance(10)
    tracker.record("late")
    await tracker.flush()
    clock.advance(60)
    tracker.record("late")
    tracker.record("early")
    tracker.record("new")
    await tracker.flush()

    assert writer.written_ids()[2:] == ["new", "early"]
    assert tracker.health().pending == 1

    await tracker.flush()
    assert len(writer.calls) == 4

    clock.advance(60)
    await tracker.flush()
    assert writer.written_ids()[4:] == ["late"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "error",
    [
        OryConnectionError("refused", service="kratos", operation="patch identity"),
        _api_error(RateLimitedError, 429),
        _api_error(ServerError, 503),
        TimeoutError(),
        _api_error(UnauthorizedError, 401),
    ],
    ids=["connection", "429", "503", "timeout", "401"],
)
async def test_flush_keeps_entries_on_failure(error: Exception) -> None:
    """A failed write returns the entry to the buffer, merged with newer activity."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock)
    writer.failures["id-1"] = [error]

    def record_during_write(identity_id: str) -> None:
        clock.advance(1)
        tracker.record(identity_id)

    writer.during_write = record_during_write
    tracker.record("id-1")
    await tracker.flush()

    health = tracker.health()
    assert health.pending == 1
    assert health.failed == 1
    assert health.consecutive_failures == 1
    assert health.last_successful_flush_at is None
    assert "id-1" not in writer.stored

    writer.during_write = None
    await tracker.flush()

    assert writer.calls[-1] == ("id-1", {"last_activity_at": _stamp(START + timedelta(seconds=1))})
    assert tracker.health().consecutive_failures == 0
    assert tracker.health().last_successful_flush_at is not None


@pytest.mark.anyio
async def test_flush_drops_deleted_identity() -> None:
    """A 404 from Kratos drops the entry and counts it."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock)
    writer.failures["gone"] = [_api_error(NotFoundError, 404)]

    tracker.record("gone")
    await tracker.flush()
    await tracker.flush()

    assert writer.written_ids() == ["gone"]
    assert tracker.health().not_found == 1
    assert tracker.health().pending == 0


@pytest.mark.anyio
async def test_flush_drops_rejected_identity_after_tries(caplog: pytest.LogCaptureFixture) -> None:
    """A 400 is retried, then dropped, counted and logged with the identity id only."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock)
    writer.failures["bad"] = [
        _api_error(BadRequestError, 400) for _ in range(MAX_BAD_REQUEST_TRIES)
    ]

    tracker.record("bad")
    with caplog.at_level(logging.WARNING, logger="stale_tokens.tracking"):
        for _ in range(MAX_BAD_REQUEST_TRIES + 1):
            await tracker.flush()

    assert writer.written_ids() == ["bad"] * MAX_BAD_REQUEST_TRIES
    assert tracker.health().rejected == 1
    assert tracker.health().pending == 0
    rejected = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejected) == 1
    assert "bad" in rejected[0].getMessage()
    assert "Kratos answered" not in rejected[0].getMessage()


@pytest.mark.anyio
async def test_record_drops_new_identities_when_full(caplog: pytest.LogCaptureFixture) -> None:
    """A full buffer keeps its entries, drops new identities and logs the count at flush."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock, max_pending=2)
    writer.failures = {"a": [_api_error(ServerError, 500)], "b": [_api_error(ServerError, 500)]}

    tracker.record("a")
    tracker.record("b")
    tracker.record("c")
    tracker.record("a")

    assert tracker.health().pending == 2
    assert tracker.health().dropped == 1

    with caplog.at_level(logging.WARNING, logger="stale_tokens.tracking"):
        await tracker.flush()

    assert sorted(writer.written_ids()) == ["a", "b"]
    assert tracker.health().pending == 2
    assert any("dropped the activity of 1 new" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_tracker_exit_runs_final_flush() -> None:
    """Leaving `async with` writes what is buffered."""
    clock, writer = FakeClock(), FakeWriter()

    async with _tracker(writer, clock) as tracker:
        assert tracker.health().is_running
        tracker.record("id-1")

    assert writer.written_ids() == ["id-1"]
    assert not tracker.health().is_running


@pytest.mark.anyio
async def test_tracker_exit_writes_inside_window_and_over_budget() -> None:
    """The final flush writes activity whose window is open or whose budget is spent."""
    clock, writer = FakeClock(), FakeWriter()

    async with _tracker(writer, clock, min_write_interval=1800, max_writes_per_minute=1) as tracker:
        tracker.record("id-1")
        await tracker.flush()
        clock.advance(30)
        tracker.record("id-1")
        tracker.record("id-2")
        await tracker.flush()
        assert writer.written_ids() == ["id-1"]

    assert sorted(writer.written_ids()) == ["id-1", "id-1", "id-2"]
    assert writer.stored["id-1"] == {"last_activity_at": _stamp(START + timedelta(seconds=30))}
    assert tracker.health().pending == 0


@pytest.mark.anyio
async def test_tracker_exit_stops_final_flush_at_deadline(caplog: pytest.LogCaptureFixture) -> None:
    """A hanging writer cannot hold shutdown past shutdown_timeout; the entry stays counted."""
    clock = FakeClock()
    started = anyio.Event()

    class HangingWriter:
        async def set_metadata_admin(
            self, identity_id: str, values: Mapping[str | tuple[str, ...], Any]
        ) -> object:
            started.set()
            await anyio.sleep_forever()
            return None

    with caplog.at_level(logging.WARNING, logger="stale_tokens.tracking"):
        async with ActivityTracker(HangingWriter(), clock=clock, shutdown_timeout=0.05) as tracker:
            tracker.record("id-1")

    assert started.is_set()
    assert tracker.health().pending == 1
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages == [
        (
            "Activity tracker stopped and lost activity (unwritten identities: 1, "
            "credentials not looked up: 0): the final flush timed out after "
            "shutdown_timeout=0.05 seconds"
        )
    ]


@pytest.mark.anyio
async def test_flush_loop_runs_every_interval() -> None:
    """The loop inside `async with` flushes on its own every flush_interval."""
    clock, writer = FakeClock(), FakeWriter()

    async with _tracker(writer, clock, flush_interval=0.01, min_write_interval=0) as tracker:
        tracker.record("id-1")
        await writer.wait_until_stored(1)

    assert writer.calls[0] == ("id-1", {"last_activity_at": _stamp(START)})


@pytest.mark.anyio
async def test_flush_loop_survives_writer_bug(caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected exception from the writer is logged and the loop keeps flushing."""
    clock, writer = FakeClock(), FakeWriter()
    writer.failures["id-1"] = [KeyError("bug")]

    with caplog.at_level(logging.WARNING, logger="stale_tokens.tracking"):
        async with _tracker(writer, clock, flush_interval=0.01) as tracker:
            tracker.record("id-1")
            await writer.wait_until_stored(1)

    assert writer.written_ids() == ["id-1", "id-1"]
    assert any("KeyError" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_flush_loop_flushes_early_near_bound() -> None:
    """A nearly full buffer is flushed before flush_interval has passed."""
    clock, writer = FakeClock(), FakeWriter()

    async with _tracker(writer, clock, flush_interval=3600, max_pending=10) as tracker:
        for number in range(9):
            tracker.record(f"id-{number}")
        await writer.wait_until_stored(9)

    assert tracker.health().written == 9


@pytest.mark.anyio
async def test_record_from_other_threads() -> None:
    """Records from worker threads all reach the buffer."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock)

    def record_many(prefix: str) -> None:
        for number in range(500):
            tracker.record(f"{prefix}-{number}")

    threads = [threading.Thread(target=record_many, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert tracker.health().pending == 2000
    await tracker.flush()
    assert len(writer.calls) == 100


@pytest.mark.anyio
async def test_flush_writes_many_identities_with_bounded_concurrency() -> None:
    """Writes run concurrently, never more than `concurrency` at once."""
    clock = FakeClock()
    in_flight = 0
    peak = 0
    stored: dict[str, Values] = {}

    class SlowWriter:
        async def set_metadata_admin(
            self, identity_id: str, values: Mapping[str | tuple[str, ...], Any]
        ) -> object:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await anyio.sleep(0.001)
            in_flight -= 1
            stored[identity_id] = dict(values)
            return None

    tracker = ActivityTracker(SlowWriter(), clock=clock, concurrency=4, max_writes_per_minute=1000)
    for number in range(200):
        tracker.record(f"id-{number}")
    await tracker.flush()

    assert len(stored) == 200
    assert peak == 4


def test_health_to_dict_is_json_ready() -> None:
    """to_dict returns plain values with the timestamp as RFC 3339."""
    tracker = _tracker(FakeWriter(), FakeClock())
    tracker.record("id-1")

    values = tracker.health().to_dict()

    assert values == {
        "is_running": False,
        "last_successful_flush_at": None,
        "consecutive_failures": 0,
        "pending": 1,
        "pending_credentials": 0,
        "written": 0,
        "failed": 0,
        "failed_lookups": 0,
        "dropped": 0,
        "rejected": 0,
        "not_found": 0,
    }


@pytest.mark.anyio
async def test_flush_survives_failing_resolver(caplog: pytest.LogCaptureFixture) -> None:
    """A deferred resolver that raises is logged and counted, and the writes still happen."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock)

    class BrokenResolver:
        def count_pending(self) -> int:
            return 0

        async def resolve_pending(
            self, record: Callable[[str, float, CredentialKind | None], None], /
        ) -> int:
            raise RuntimeError("resolver bug")

    tracker._attach_resolver(BrokenResolver())
    tracker.record("id-1")
    with caplog.at_level(logging.WARNING, logger="stale_tokens.tracking"):
        await tracker.flush()

    assert writer.written_ids() == ["id-1"]
    assert [record.getMessage() for record in caplog.records] == [
        "Resolving session credentials failed with RuntimeError: resolver bug"
    ]
    assert tracker.health().consecutive_failures == 1
    assert tracker.health().last_successful_flush_at is None


class StalledResolver:
    """A deferred resolver whose lookups all fail, like whoami at a wrong public URL."""

    def __init__(self, credentials: int) -> None:
        self.pending = credentials
        self.calls = 0

    def count_pending(self) -> int:
        return self.pending

    async def resolve_pending(
        self, record: Callable[[str, float, CredentialKind | None], None], /
    ) -> int:
        self.calls += 1
        return self.pending


@pytest.mark.anyio
async def test_health_shows_stalled_resolver() -> None:
    """Credentials waiting for a lookup and failed lookups show in health, and fail the flush."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock)
    resolver = StalledResolver(credentials=3)
    tracker._attach_resolver(resolver)

    before = tracker.health()
    await tracker.flush()
    await tracker.flush()
    after = tracker.health()

    assert before.pending_credentials == 3
    assert before.failed_lookups == 0
    assert resolver.calls == 2
    assert after.pending == 0
    assert after.pending_credentials == 3
    assert after.failed_lookups == 6
    assert after.consecutive_failures == 2
    assert after.last_successful_flush_at is None
    assert writer.calls == []


@pytest.mark.anyio
async def test_flush_success_after_lookups_recover() -> None:
    """A flush whose lookups all succeed resets consecutive_failures."""
    clock, writer = FakeClock(), FakeWriter()
    tracker = _tracker(writer, clock)
    resolver = StalledResolver(credentials=1)
    tracker._attach_resolver(resolver)
    await tracker.flush()

    resolver.pending = 0
    await tracker.flush()

    health = tracker.health()
    assert health.consecutive_failures == 0
    assert health.failed_lookups == 1
    assert health.last_successful_flush_at == START


@pytest.mark.anyio
async def test_tracker_exit_names_failed_writes(caplog: pytest.LogCaptureFixture) -> None:
    """The shutdown warning counts what is lost and names the failures of the final flush."""
    clock, writer = FakeClock(), FakeWriter()
    writer.failures["id-1"] = [_api_error(ServerError, 503)]
    tracker = _tracker(writer, clock)
    tracker._attach_resolver(StalledResolver(credentials=2))

    with caplog.at_level(logging.WARNING, logger="stale_tokens.tracking"):
        async with tracker:
            tracker.record("id-1")

    assert writer.written_ids() == ["id-1"]
    assert caplog.records[-1].getMessage() == (
        "Activity tracker stopped and lost activity (unwritten identities: 1, "
        "credentials not looked up: 2): in the final flush, failed writes: 1, "
        "failed lookups: 2, resolver errors: 0"
    )


_REASON = "traits.email user@example.com is not allowed"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("error", "described"),
    [
        (
            RuntimeError("Cannot send a request, as the client has been closed."),
            "RuntimeError: Cannot send a request, as the client has been closed.",
        ),
        (KeyError(), "KeyError"),
        (
            UnauthorizedError(
                f"Kratos answered 403: {_REASON}",
                service="kratos",
                operation="patch identity",
                status_code=403,
                reason=_REASON,
            ),
            "UnauthorizedError (status 403)",
        ),
    ],
    ids=["runtime-error", "empty-message", "ory-api-error"],
)
async def test_flush_warning_describes_unexpected_error(
    error: Exception, described: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An error outside the Ory API tree is logged with its message; an Ory API reason is not."""
    clock, writer = FakeClock(), FakeWriter()
    writer.failures["id-1"] = [error]
    tracker = _tracker(writer, clock)
    tracker.record("id-1")

    with caplog.at_level(logging.WARNING, logger="stale_tokens.tracking"):
        await tracker.flush()

    assert writer.written_ids() == ["id-1"]
    assert caplog.records[0].getMessage() == (
        f"Writing the activity of identity id-1 failed with {described}"
    )
    assert all("user@example.com" not in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_flush_warning_truncates_long_error_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A long exception message is cut to a bounded length in the warning."""
    clock, writer = FakeClock(), FakeWriter()
    writer.failures["id-1"] = [ValueError("x" * 1000)]
    tracker = _tracker(writer, clock)
    tracker.record("id-1")

    with caplog.at_level(logging.WARNING, logger="stale_tokens.tracking"):
        await tracker.flush()

    message = caplog.records[0].getMessage()
    assert message.startswith("Writing the activity of identity id-1 failed with ValueError: xxx")
    assert message.endswith("x...")
    assert len(message) < 400


def test_warning_limiter_logs_repeats_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """A second warning with the same template inside 60 seconds goes to DEBUG."""
    limiter = WarningLimiter(logging.getLogger("stale_tokens.tracking"))

    with caplog.at_level(logging.DEBUG, logger="stale_tokens.tracking"):
        limiter.warning("Lookup failed for %d credentials", 1)
        limiter.warning("Lookup failed for %d credentials", 2)
        limiter.warning("Another failure: %s", "x")

    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "Lookup failed for 1 credentials"),
        (logging.DEBUG, "Lookup failed for 2 credentials"),
        (logging.WARNING, "Another failure: x"),
    ]
