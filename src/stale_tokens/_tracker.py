"""ActivityTracker: buffers activity per identity and flushes it to Kratos metadata_admin."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import anyio
import anyio.abc

from ._activity_buffer import ActivityBuffer, PendingWrite
from ._decision import CredentialKind
from ._errors import (
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    OryAPIError,
    OryConnectionError,
    RateLimitedError,
    ServerError,
)
from ._kinds import coerce_kind, validate_identity_id
from ._timestamps import format_timestamp, require_aware

__all__ = [
    "DEFAULT_ACTIVITY_KEY",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_FLUSH_INTERVAL",
    "DEFAULT_KIND_KEY",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_MAX_WRITES_PER_MINUTE",
    "DEFAULT_MIN_WRITE_INTERVAL",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "MAX_BAD_REQUEST_TRIES",
    "ActivityTracker",
    "DeferredIdentityResolver",
    "MetadataWriter",
    "TrackerHealth",
    "WarningLimiter",
]

logger = logging.getLogger("stale_tokens.tracking")

DEFAULT_FLUSH_INTERVAL = 60.0
DEFAULT_MIN_WRITE_INTERVAL = 30 * 60.0
DEFAULT_MAX_WRITES_PER_MINUTE = 100
DEFAULT_MAX_PENDING = 100_000
DEFAULT_CONCURRENCY = 8
DEFAULT_ACTIVITY_KEY = "last_activity_at"
DEFAULT_KIND_KEY = "last_activity_by_kind"
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
MAX_BAD_REQUEST_TRIES = 3

# A buffer this full flushes before flush_interval has passed.
_EARLY_FLUSH_FILL = 0.9
# Early flushes are at least this many seconds apart, so a full buffer cannot spin the loop.
_EARLY_FLUSH_MIN_GAP = 1.0
# After failed flushes the wait doubles from flush_interval up to this many seconds.
_MAX_BACKOFF = 300.0
# Repeated WARNING logs of the same kind are at least this many seconds apart.
_WARNING_INTERVAL = 60.0
# Characters of an exception message that a WARNING quotes at most.
_MAX_LOGGED_MESSAGE = 300

# Errors after which a write is worth repeating unchanged on the next flush.
_RETRYABLE_ERRORS = (OryConnectionError, RateLimitedError, ServerError, TimeoutError)

RecordCallback = Callable[[str, float, CredentialKind | None], None]


@runtime_checkable
class MetadataWriter(Protocol):
    """The Kratos admin client the tracker writes through, such as `KratosAdmin`."""

    def set_metadata_admin(
        self, identity_id: str, values: Mapping[str | tuple[str, ...], Any], /
    ) -> Awaitable[object]:
        """Set the given metadata_admin keys of one identity, keeping every other key.

        Each key is a top-level metadata_admin key or a tuple path into nested
        objects. Errors are the `StaleTokensError` tree.
        """
        ...


@runtime_checkable
class DeferredIdentityResolver(Protocol):
    """A resolver that turns credentials into identity ids during a flush, off the request path."""

    def count_pending(self) -> int:
        """Return how many credentials wait for a lookup, for `ActivityTracker.health`."""
        ...

    async def resolve_pending(self, record: RecordCallback, /) -> int:
        """Look up the credentials seen since the last call and *record* each identity found.

        *record* takes the identity id, the activity time in POSIX seconds and
        the credential kind. Failed lookups should stay pending for the next
        call. An exception is logged and does not stop the flush; the tracker
        counts it as a failed flush.

        Returns:
            How many lookups failed. A flush with failed lookups counts in
            ``consecutive_failures``, like one with a failed write.
        """
        ...


@dataclass(frozen=True, slots=True)
class TrackerHealth:
    """A snapshot of the tracker's state, for a health endpoint.

    Attributes:
        is_running: Whether the flush loop runs (inside ``async with tracker``).
        last_successful_flush_at: When the last flush without a failed write
            ended, or ``None`` before the first one.
        consecutive_failures: Flushes in a row with at least one failed write,
            failed lookup or resolver error.
        pending: Identities whose activity waits in the buffer.
        written: Successful writes since the tracker was created.
        failed: Writes that failed and went back to the buffer for a retry.
        dropped: Activities of new identities discarded because the buffer was full.
        rejected: Identities discarded after Kratos returned 400
            `MAX_BAD_REQUEST_TRIES` times.
        not_found: Identities discarded because Kratos returned 404 (deleted).
        pending_credentials: Credentials that a `DeferredIdentityResolver`
            keeps for a lookup. Their identities are not in *pending* yet, and
            several credentials can belong to one identity.
        failed_lookups: Lookups of a `DeferredIdentityResolver` that failed
            and stayed pending for a retry.
    """

    is_running: bool
    last_successful_flush_at: datetime | None
    consecutive_failures: int
    pending: int
    written: int
    failed: int
    dropped: int
    rejected: int
    not_found: int
    # Defaulted so that code building a TrackerHealth without them still works.
    pending_credentials: int = 0
    failed_lookups: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as JSON-ready values, timestamps as RFC 3339 strings."""
        values = asdict(self)
        if self.last_successful_flush_at is not None:
            values["last_successful_flush_at"] = format_timestamp(self.last_successful_flush_at)
        return values


class _WriteBudget:
    """A sliding one-minute window of write attempts."""

    __slots__ = ("_attempts", "_max_per_minute")

    def __init__(self, max_per_minute: int) -> None:
        self._max_per_minute = max_per_minute
        self._attempts: deque[float] = deque()

    def available(self, now: float) -> int:
        while self._attempts and now - self._attempts[0] >= 60.0:
            self._attempts.popleft()
        return max(0, self._max_per_minute - len(self._attempts))

    def spend(self, now: float, count: int) -> None:
        self._attempts.extend([now] * count)


class _FlushOutcome:
    __slots__ = ("failed", "failed_lookups", "not_found", "rejected", "resolver_errors", "written")

    def __init__(self) -> None:
        self.written = 0
        self.failed = 0
        self.not_found = 0
        self.rejected = 0
        self.failed_lookups = 0
        self.resolver_errors = 0

    @property
    def has_failures(self) -> bool:
        return bool(self.failed or self.failed_lookups or self.resolver_errors)


class WarningLimiter:
    """A gate that logs each WARNING message at most once every 60 seconds, repeats at DEBUG.

    Repeats are recognised by the message template, not by its arguments, so
    a failure that recurs with other counts is still one repeated warning.
    """

    __slots__ = ("_last_warning_at", "_logger")

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._last_warning_at: dict[str, float] = {}

    def warning(self, message: str, *args: object) -> None:
        """Log *message* at WARNING, or at DEBUG when it was logged in the last 60 seconds."""
        now = time.monotonic()
        if now - self._last_warning_at.get(message, -math.inf) < _WARNING_INTERVAL:
            self._logger.debug(message, *args)
            return
        self._last_warning_at[message] = now
        self._logger.warning(message, *args)


class ActivityTracker:
    """Buffers the last activity of each identity and writes it to Kratos in flushes.

    `record` (or `ActivityMiddleware`) notes an activity in memory. A flush,
    every *flush_interval* seconds inside ``async with tracker:``, writes
    ``metadata_admin.<activity_key>`` and, per credential kind seen,
    ``metadata_admin.<kind_key>.<kind>`` as RFC 3339 UTC strings, one write
    per identity, through *writer*.

    The default *min_write_interval* of 30 minutes keeps the stored timestamp
    at most about 31 minutes (window plus one flush) behind the real last
    activity: 0.3 % of the shortest common threshold (7 days for
    administrators), well under the 1 % (100.8 minutes) a day-granular policy
    can notice, while an identity that is busy all day costs 2 writes per hour.
    The default budget of 100 writes per minute leaves 75 of the 175 identity
    writes per minute that an Ory Network Production project allows for the
    sweeper and other admin tools. With several app processes, divide it
    among them.

    Args:
        writer: Any object with ``async set_metadata_admin(identity_id, values)``,
            such as `KratosAdmin`.
        flush_interval: Seconds between flushes.
        min_write_interval: Seconds between two writes of the same identity.
            Activity inside the window is kept and written when it closes.
        max_writes_per_minute: Writes (including failed attempts) this tracker
            may start in any 60 seconds. Identities over the budget wait, the
            least recently written first.
        max_pending: Maximum identities in the buffer. When it is full,
            activity of identities not yet in it is dropped and counted, and
            the buffered ones are kept: they are the oldest activity, while an
            identity that stays active is recorded again once a flush made room.
        concurrency: Writes in flight at once.
        activity_key: The metadata_admin key for the last activity of any kind.
        kind_key: The metadata_admin object holding the last activity per kind.
        shutdown_timeout: Seconds the final flush on exit may take. Shorter
            than the 30 seconds that uvicorn and Kubernetes give by default.
            The final flush ignores the write window and the write budget.
        clock: Returns the current time in POSIX seconds; defaults to `time.time`.

    Raises:
        ConfigurationError: If an option is out of range.
    """

    def __init__(
        self,
        writer: MetadataWriter,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        min_write_interval: float = DEFAULT_MIN_WRITE_INTERVAL,
        max_writes_per_minute: int = DEFAULT_MAX_WRITES_PER_MINUTE,
        max_pending: int = DEFAULT_MAX_PENDING,
        concurrency: int = DEFAULT_CONCURRENCY,
        activity_key: str = DEFAULT_ACTIVITY_KEY,
        kind_key: str = DEFAULT_KIND_KEY,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _require_positive("flush_interval", flush_interval, "seconds, for example 60.0")
        _require_positive("shutdown_timeout", shutdown_timeout, "seconds, for example 5.0")
        if not min_write_interval >= 0:
            raise ConfigurationError(
                f"min_write_interval must be 0 or more seconds, got {min_write_interval!r}; "
                f"the default is {DEFAULT_MIN_WRITE_INTERVAL}"
            )
        require_counts(
            max_writes_per_minute=max_writes_per_minute,
            max_pending=max_pending,
            concurrency=concurrency,
        )
        for name, key in (("activity_key", activity_key), ("kind_key", kind_key)):
            _require_key(name, key)

        self._writer = writer
        self._flush_interval = flush_interval
        self._min_write_interval = min_write_interval
        self._concurrency = concurrency
        self._activity_key = activity_key
        self._kind_key = kind_key
        self._shutdown_timeout = shutdown_timeout
        self._clock = clock
        self._max_pending = max_pending
        self._early_flush_size = max(1, math.ceil(max_pending * _EARLY_FLUSH_FILL))

        self._buffer = ActivityBuffer(
            max_pending=max_pending,
            early_flush_size=self._early_flush_size,
            on_nearly_full=self._request_early_flush,
        )
        # The middleware's per-request call, bound once.
        self._add = self._buffer.add
        self._budget = _WriteBudget(max_writes_per_minute)
        self._resolvers: list[DeferredIdentityResolver] = []
        self._bad_request_tries: dict[str, int] = {}

        self._task_group: anyio.abc.TaskGroup | None = None
        self._flush_lock: anyio.Lock | None = None
        self._wake: anyio.Event | None = None
        self._loop_thread: int | None = None

        self._last_successful_flush_at: datetime | None = None
        self._consecutive_failures = 0
        self._written = 0
        self._failed = 0
        self._failed_lookups = 0
        self._rejected = 0
        self._not_found = 0
        self._dropped_logged = 0
        self._warn = WarningLimiter(logger).warning

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError("this ActivityTracker is already running; enter it only once")
        self._loop_thread = threading.get_ident()
        self._wake = anyio.Event()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        task_group.start_soon(self._run)
        self._task_group = task_group
        logger.debug("Activity tracker started, flushing every %s seconds", self._flush_interval)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        if task_group is not None:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
        self._loop_thread = None

        # Shielded so a host that is being cancelled still gets its final
        # flush, and bounded so the flush cannot outlast the grace period.
        outcome = _FlushOutcome()
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + self._shutdown_timeout
            await self._flush(outcome, is_final=True)
        self._log_unwritten(outcome, has_timed_out=scope.cancelled_caught)

    def record(
        self,
        identity_id: str,
        *,
        at: datetime | None = None,
        kind: CredentialKind | str | None = None,
    ) -> None:
        """Note that *identity_id* was active, for activity outside HTTP (workers, jobs, gRPC).

        Cheap and synchronous: it updates the buffer and does no I/O. It is safe
        to call from any thread. Only a call from the event loop thread can
        start an early flush when the buffer is nearly full.

        Args:
            identity_id: The Kratos identity id.
            at: When the activity happened, an aware datetime; ``None`` means
                now. A time in the future is clamped to now.
            kind: The credential used, if known.

        Raises:
            ValueError: If *identity_id* is empty, *at* is naive, or *kind* is
                not a `CredentialKind` value.
        """
        validate_identity_id(identity_id)
        credential_kind = coerce_kind(kind)
        now = self._clock()
        if at is None:
            moment = now
        else:
            require_aware(at, "at")
            moment = min(at.timestamp(), now)
        with self._buffer.lock:
            self._buffer.add(identity_id, moment, credential_kind)

    async def flush(self) -> None:
        """Write every identity whose write window has closed, within the write budget.

        Credentials seen by a `DeferredIdentityResolver` are resolved first.
        Failed writes go back to the buffer (see the class docs); this method
        raises only on cancellation.
        """
        await self._flush(_FlushOutcome(), is_final=False)

    async def _flush(self, outcome: _FlushOutcome, *, is_final: bool) -> None:
        if self._flush_lock is None:
            self._flush_lock = anyio.Lock()
        async with self._flush_lock:
            try:
                await self._resolve_credentials(outcome)

                now = self._clock()
                if is_final:
                    # No flush follows the last one, so an open write window or a
                    # spent budget would lose the activity with the process.
                    limit = len(self._buffer)
                    batch = self._buffer.take_due(now, min_write_interval=0.0, limit=limit)
                else:
                    batch = self._buffer.take_due(
                        now,
                        min_write_interval=self._min_write_interval,
                        limit=self._budget.available(now),
                    )
                self._budget.spend(now, len(batch))

                limiter = anyio.CapacityLimiter(self._concurrency)
                async with anyio.create_task_group() as task_group:
                    for entry in batch:
                        task_group.start_soon(self._write, entry, limiter, outcome)
            finally:
                # Also on cancellation: the writes that completed must be counted.
                self._finish_flush(outcome)

    def health(self) -> TrackerHealth:
        """Return a snapshot of the counters, for a ``/healthz`` endpoint."""
        return TrackerHealth(
            is_running=self._task_group is not None,
            last_successful_flush_at=self._last_successful_flush_at,
            consecutive_failures=self._consecutive_failures,
            pending=len(self._buffer),
            pending_credentials=self._count_pending_credentials(),
            written=self._written,
            failed=self._failed,
            failed_lookups=self._failed_lookups,
            dropped=self._buffer.dropped,
            rejected=self._rejected,
            not_found=self._not_found,
        )

    async def _resolve_credentials(self, outcome: _FlushOutcome) -> None:
        for resolver in tuple(self._resolvers):
            try:
                outcome.failed_lookups += await resolver.resolve_pending(self._add)
            except Exception as exc:  # noqa: BLE001 (logged; the writes must still run)
                outcome.resolver_errors += 1
                self._warn("Resolving session credentials failed with %s", _describe(exc))

    def _count_pending_credentials(self) -> int:
        return sum(resolver.count_pending() for resolver in tuple(self._resolvers))

    def _attach_resolver(self, resolver: DeferredIdentityResolver) -> None:
        if all(resolver is not attached for attached in self._resolvers):
            self._resolvers.append(resolver)

    def _request_early_flush(self) -> None:
        # anyio.Event is not thread-safe: other threads leave it to the next regular flush.
        wake = self._wake
        if (
            wake is not None
            and self._consecutive_failures == 0
            and threading.get_ident() == self._loop_thread
        ):
            wake.set()

    async def _run(self) -> None:
        while True:
            await self._wait_for_next_flush()
            try:
                await self.flush()
            except Exception:
                # flush() handles write errors itself; this keeps the loop alive
                # through a bug in a writer or resolver.
                logger.exception("Activity flush failed unexpectedly; retrying on the next flush")

    async def _wait_for_next_flush(self) -> None:
        delay = self._flush_interval
        if self._consecutive_failures:
            backoff = self._flush_interval * 2 ** min(self._consecutive_failures, 16)
            delay = min(backoff, max(self._flush_interval, _MAX_BACKOFF))

        gap = min(_EARLY_FLUSH_MIN_GAP, delay)
        await anyio.sleep(gap)
        wake = anyio.Event()
        self._wake = wake
        if len(self._buffer) >= self._early_flush_size and self._consecutive_failures == 0:
            return
        with anyio.move_on_after(delay - gap):
            await wake.wait()

    async def _write(
        self, entry: PendingWrite, limiter: anyio.CapacityLimiter, outcome: _FlushOutcome
    ) -> None:
        identity_id = entry.identity_id
        try:
            async with limiter:
                await self._writer.set_metadata_admin(identity_id, self._values(entry))
        except anyio.get_cancelled_exc_class():
            self._buffer.put_back([entry])
            raise
        except NotFoundError:
            outcome.not_found += 1
            self._bad_request_tries.pop(identity_id, None)
        except BadRequestError as exc:
            self._handle_bad_request(entry, exc, outcome)
        except _RETRYABLE_ERRORS:
            self._buffer.put_back([entry])
            outcome.failed += 1
        except Exception as exc:  # noqa: BLE001 (logged below; the loop must survive it)
            # An unexpected error (401 for a wrong API key, a bug in a custom
            # writer) keeps the entry, because the activity itself is valid.
            self._buffer.put_back([entry])
            outcome.failed += 1
            self._warn(
                "Writing the activity of identity %s failed with %s", identity_id, _describe(exc)
            )
        else:
            self._buffer.mark_written(entry, self._clock(), max_remembered=self._max_pending)
            self._bad_request_tries.pop(identity_id, None)
            outcome.written += 1

    def _handle_bad_request(
        self, entry: PendingWrite, exc: BadRequestError, outcome: _FlushOutcome
    ) -> None:
        identity_id = entry.identity_id
        tries = self._bad_request_tries.get(identity_id, 0) + 1
        if tries < MAX_BAD_REQUEST_TRIES:
            self._bad_request_tries[identity_id] = tries
            self._buffer.put_back([entry])
            outcome.failed += 1
            return

        # NOTE: the Kratos reason is left out because a schema validation
        # message can quote trait values such as an email address.
        del self._bad_request_tries[identity_id]
        outcome.rejected += 1
        logger.warning(
            "Kratos rejected the activity write of identity %s %d times (status %d); "
            "dropping it. Check that its traits are valid under its identity schema",
            identity_id,
            tries,
            exc.status_code,
        )

    def _finish_flush(self, outcome: _FlushOutcome) -> None:
        self._written += outcome.written
        self._failed += outcome.failed
        self._failed_lookups += outcome.failed_lookups
        self._rejected += outcome.rejected
        self._not_found += outcome.not_found
        pending = len(self._buffer)

        if outcome.has_failures:
            self._consecutive_failures += 1
        if outcome.failed:
            self._warn(
                "Activity flush: %d of %d writes failed and stay buffered (%d pending, "
                "%d failed flushes in a row)",
                outcome.failed,
                outcome.failed + outcome.written + outcome.rejected + outcome.not_found,
                pending,
                self._consecutive_failures,
            )
        if not outcome.has_failures:
            self._consecutive_failures = 0
            self._last_successful_flush_at = datetime.fromtimestamp(self._clock(), UTC)

        dropped = self._buffer.dropped
        if dropped > self._dropped_logged:
            self._warn(
                "Activity buffer full (max_pending=%d): dropped the activity of %d new identities",
                self._max_pending,
                dropped - self._dropped_logged,
            )
            self._dropped_logged = dropped

        logger.debug(
            "Activity flush: %d written, %d failed, %d rejected, %d not found, %d pending, "
            "%d failed lookups",
            outcome.written,
            outcome.failed,
            outcome.rejected,
            outcome.not_found,
            pending,
            outcome.failed_lookups,
        )

    def _log_unwritten(self, outcome: _FlushOutcome, *, has_timed_out: bool) -> None:
        unwritten = len(self._buffer)
        unresolved = self._count_pending_credentials()
        if not unwritten and not unresolved:
            return

        message = (
            "Activity tracker stopped and lost activity (unwritten identities: %d, "
            "credentials not looked up: %d)"
        )
        args: list[object] = [unwritten, unresolved]
        if has_timed_out:
            message += ": the final flush timed out after shutdown_timeout=%s seconds"
            args.append(self._shutdown_timeout)
        elif outcome.has_failures:
            message += (
                ": in the final flush, failed writes: %d, failed lookups: %d, resolver errors: %d"
            )
            args += [outcome.failed, outcome.failed_lookups, outcome.resolver_errors]
        logger.warning(message, *args)

    def _values(self, entry: PendingWrite) -> dict[str | tuple[str, ...], Any]:
        values: dict[str | tuple[str, ...], Any] = {}
        if entry.activity_at is not None:
            values[self._activity_key] = _format_seconds(entry.activity_at)
        for kind, at in entry.kind_at.items():
            values[(self._kind_key, kind.value)] = _format_seconds(at)
        return values


def _format_seconds(seconds: float) -> str:
    return format_timestamp(datetime.fromtimestamp(seconds, UTC))


def _describe(exc: BaseException) -> str:
    # The message of an API error can quote Kratos's reason, which may contain
    # trait values. Other errors of this library name the operation, the URL
    # path and the httpx error, never a header or a body.
    name = type(exc).__name__
    if isinstance(exc, OryAPIError):
        return f"{name} (status {exc.status_code})"
    message = str(exc)
    if not message:
        return name
    if len(message) > _MAX_LOGGED_MESSAGE:
        message = message[: _MAX_LOGGED_MESSAGE - 3] + "..."
    return f"{name}: {message}"


def _require_positive(name: str, value: object, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name} must be a positive number of {example}, got {value!r}")


def _require_key(name: str, key: object) -> None:
    if not isinstance(key, str) or not key:
        raise ConfigurationError(f"{name} must be a non-empty metadata_admin key, got {key!r}")


def require_counts(**counts: object) -> None:
    """Raise `ConfigurationError` unless every keyword value is a positive integer."""
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigurationError(f"{name} must be a positive integer, got {count!r}")
