"""`sweep()`: plan every identity, check the plan, then act on the identities due."""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

import anyio
from anyio.abc import ObjectSendStream

from ._act import (
    DESTRUCTIVE_STEPS,
    LABEL_CLEAR_SUSPENSION,
    DueEntry,
    IdentityActor,
    revocation_label,
)
from ._audit import AuditSink, LoggingAuditSink
from ._breaker import CircuitBreaker
from ._decision import Decision, Step
from ._errors import ConfigurationError
from ._extra_activity import ExtraActivitySource
from ._lock import SweepLock
from ._markers import DEFAULT_CLAIM_EXPIRY_SECONDS
from ._metrics import Metrics
from ._models import Identity
from ._notify import LoggingNotifier, Notifier
from ._policy import Policy
from ._ports import HydraSessions, KratosSweepClient
from ._report import ReportBuilder, SweepAbortedError, SweepReport
from ._revoke import PersonalAccessTokenRevoker, Revoker, default_hydra_subject
from ._suspend import suspended_at_of
from ._timestamps import require_aware

__all__ = ["sweep"]

logger = logging.getLogger("stale_tokens.sweep")

DEFAULT_CONCURRENCY = 8
DEFAULT_RECENT_SESSION_WINDOW_SECONDS = 86_400.0
DEFAULT_CIRCUIT_BREAKER = CircuitBreaker()


async def sweep(
    *,
    kratos: KratosSweepClient,
    hydra: HydraSessions | None,
    policy: Policy,
    notifier: Notifier | None = None,
    audit: AuditSink | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    circuit_breaker: CircuitBreaker | None = DEFAULT_CIRCUIT_BREAKER,
    max_destructive_steps: int | None = None,
    recent_session_window: float = DEFAULT_RECENT_SESSION_WINDOW_SECONDS,
    hydra_subject: Callable[[Identity], str] = default_hydra_subject,
    personal_access_tokens: PersonalAccessTokenRevoker | None = None,
    extra_activity: ExtraActivitySource | None = None,
    lock: SweepLock | None = None,
    claim_expiry_seconds: float = DEFAULT_CLAIM_EXPIRY_SECONDS,
    page_size: int | None = None,
    run_id: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    metrics: Metrics | None = None,
) -> SweepReport:
    """Apply *policy* to every Kratos identity, once per inactivity episode.

    The sweep first lists every identity page by page and decides each one
    (the plan), keeping only the identities with a step due. It then checks
    the plan against the circuit breaker and acts on nothing when it trips.
    Otherwise it acts on the due identities, *concurrency* at a time: each
    is read again, decided again, and skipped when activity arrived since the
    listing or, before a destructive step, a session was authenticated within
    *recent_session_window*. A failure is reported for its identity and the
    sweep goes on.

    Args:
        kratos: The Kratos admin client, such as `KratosAdmin`.
        hydra: The Hydra admin client, such as `HydraAdmin`, or ``None`` when
            the app issues no OAuth2 tokens; OAuth2 revocations are then left out.
        policy: The policy that decides each identity.
        notifier: Sends warnings, re-engagement messages and deletion notices;
            ``None`` means `LoggingNotifier`, which only logs.
        audit: Receives an `AuditEvent` per action and per notable skip;
            ``None`` means `LoggingAuditSink`.
        dry_run: When ``True``, read everything but write nothing: no Kratos or
            Hydra change, no notification, no audit event (the report lists
            the events instead).
        now: The moment the policy decides against, timezone-aware; ``None``
            means the current time.
        concurrency: Identities acted on at the same time, at least 1.
        circuit_breaker: Limits on the identities due for revoke, deactivate
            or delete; ``None`` disables the check.
        max_destructive_steps: Maximum number of identities that get a
            destructive step in this run; the rest are reported as deferred.
            ``None`` means no cap.
        recent_session_window: Seconds; a destructive step is skipped when a
            session of the identity was authenticated this recently.
        hydra_subject: Maps an identity to its Hydra subject; the identity id
            by default.
        personal_access_tokens: Revokes the app's own tokens, or ``None``.
        extra_activity: Activity kept outside Kratos, such as the app's audit
            table, or ``None``. It is asked once per listed page and again
            for each identity before acting; the newer of its time and the
            ``metadata_admin`` timestamp counts.
        lock: Taken for the whole sweep when given; when another run holds
            it, the sweep stops with `SweepAbortedError`.
        claim_expiry_seconds: Age after which another run's claim on an
            identity is ignored, because that run has likely died.
        page_size: Identities per listing page; ``None`` uses the client's.
        run_id: The run's id in claims, logs and the report; a random UUID
            by default.
        clock: Monotonic seconds, for the duration and event times.
        metrics: Receives the report once the run ends, aborted runs
            included, for example ``PrometheusMetrics`` from
            ``stale_tokens.integrations.prometheus``. ``None`` records nothing.

    Returns:
        The report of the run.

    Raises:
        SweepAbortedError: If the circuit breaker tripped or another run held
            *lock*; nothing was acted on, and ``error.report`` has the plan.
        ConfigurationError: If an option is out of range.
        ValueError: If *now* is naive.
        OryError: If listing the identities failed after the client's retries.
            Nothing has been acted on then, and neither when *extra_activity*
            raises during the plan, which propagates its error.
    """
    now = datetime.now(UTC) if now is None else now
    require_aware(now, "now")
    _validate(
        concurrency=concurrency,
        max_destructive_steps=max_destructive_steps,
        recent_session_window=recent_session_window,
        claim_expiry_seconds=claim_expiry_seconds,
    )
    run_id = run_id or str(uuid.uuid4())
    started = clock()
    report = ReportBuilder(run_id=run_id, policy_name=policy.name, dry_run=dry_run, started_at=now)
    revoker = Revoker(
        kratos=kratos,
        hydra=hydra,
        personal_access_tokens=personal_access_tokens,
        hydra_subject=hydra_subject,
    )

    def moment() -> datetime:
        return now + timedelta(seconds=clock() - started)

    def finish() -> SweepReport:
        result = report.build(duration=clock() - started)
        if metrics is not None:
            metrics.record_sweep(result)
        return result

    if lock is not None and not await lock.acquire(run_id):
        report.abort_reason = "the sweep lock is held by another run, so nothing was done"
        logger.warning("Sweep %s aborted: %s", run_id, report.abort_reason)
        raise SweepAbortedError(finish())
    try:
        logger.info(
            "Sweep %s started (policy %s%s)",
            run_id,
            policy.name,
            ", dry run: nothing will be written" if dry_run else "",
        )
        due = await _plan(
            kratos,
            policy,
            revoker,
            report,
            now=now,
            page_size=page_size,
            extra_activity=extra_activity,
        )

        reason = _breaker_reason(circuit_breaker, due, report)
        if reason is not None:
            report.abort_reason = f"circuit breaker: {reason}"
            logger.error("Sweep %s aborted before acting: %s", run_id, reason)
            raise SweepAbortedError(finish())

        actor = IdentityActor(
            kratos=kratos,
            policy=policy,
            revoker=revoker,
            notifier=notifier if notifier is not None else LoggingNotifier(),
            audit=audit if audit is not None else LoggingAuditSink(),
            report=report,
            now=now,
            moment=moment,
            run_id=run_id,
            dry_run=dry_run,
            recent_session_window=timedelta(seconds=recent_session_window),
            claim_expiry_seconds=claim_expiry_seconds,
            extra_activity=extra_activity,
        )
        await _act(actor, _apply_cap(due, max_destructive_steps, report), concurrency)
    finally:
        if lock is not None:
            await lock.release(run_id)

    result = finish()
    logger.info(
        "Sweep %s finished in %.1f s: %d identities, %s %s, %d skipped, %d deferred, %d failed",
        run_id,
        result.duration,
        result.identities_seen,
        "would act" if dry_run else "done",
        " ".join(f"{step}={count}" for step, count in result.done.items()) or "nothing",
        len(result.skipped),
        len(result.deferred),
        len(result.failures),
    )
    return result


def _breaker_reason(
    circuit_breaker: CircuitBreaker | None, due: list[DueEntry], report: ReportBuilder
) -> str | None:
    if circuit_breaker is None:
        return None
    destructive = sum(entry.is_destructive for entry in due)
    return circuit_breaker.check(destructive=destructive, identities=report.identities_seen)


def _validate(
    *,
    concurrency: int,
    max_destructive_steps: int | None,
    recent_session_window: float,
    claim_expiry_seconds: float,
) -> None:
    if concurrency < 1:
        raise ConfigurationError(
            f"concurrency must be an integer of at least 1, got {concurrency!r}"
        )
    if max_destructive_steps is not None and max_destructive_steps < 0:
        raise ConfigurationError(
            f"max_destructive_steps must be a non-negative integer or None, got "
            f"{max_destructive_steps!r}"
        )
    if not (math.isfinite(recent_session_window) and recent_session_window >= 0):
        raise ConfigurationError(
            f"recent_session_window must be a non-negative number of seconds, got "
            f"{recent_session_window!r}; pass 0 to skip the session check"
        )
    if not (math.isfinite(claim_expiry_seconds) and claim_expiry_seconds > 0):
        raise ConfigurationError(
            f"claim_expiry_seconds must be a positive number of seconds, got "
            f"{claim_expiry_seconds!r}"
        )


async def _plan(
    kratos: KratosSweepClient,
    policy: Policy,
    revoker: Revoker,
    report: ReportBuilder,
    *,
    now: datetime,
    page_size: int | None,
    extra_activity: ExtraActivitySource | None,
) -> list[DueEntry]:
    """Decide every identity and return the compact entries of those with something due.

    Keyset pagination fetches one page after the other, so the next page is
    fetched while the current one is decided, which keeps the listing near
    its network time. At most two pages are in memory.
    """
    send, receive = anyio.create_memory_object_stream[list[Identity]](max_buffer_size=1)

    # An anyio task group wraps errors in an ExceptionGroup, so each side
    # keeps its error and it is re-raised unwrapped after the group: callers
    # catch OryError, not a group.
    failures: list[Exception] = []

    async def fetch_pages(stream: ObjectSendStream[list[Identity]]) -> None:
        async with stream:
            try:
                async for page in kratos.iter_identity_pages(page_size=page_size):
                    await stream.send(page)
            except Exception as error:  # noqa: BLE001 - re-raised below, outside the group.
                failures.append(error)

    due: list[DueEntry] = []
    async with anyio.create_task_group() as group, receive:
        group.start_soon(fetch_pages, send)
        try:
            async for page in receive:
                extra: Mapping[str, datetime] = {}
                if extra_activity is not None:
                    extra = await extra_activity.last_activity([i.id for i in page])
                for identity in page:
                    entry = _decide(identity, policy, revoker, report, now=now, extra=extra)
                    if entry is not None:
                        due.append(entry)
        except Exception as error:  # noqa: BLE001 - re-raised below, outside the group.
            failures.append(error)
            group.cancel_scope.cancel()
    if failures:
        raise failures[0]
    return due


def _decide(
    identity: Identity,
    policy: Policy,
    revoker: Revoker,
    report: ReportBuilder,
    *,
    now: datetime,
    extra: Mapping[str, datetime],
) -> DueEntry | None:
    report.identities_seen += 1
    decision = policy.decide(identity, now, extra_activity=extra.get(identity.id))
    for finding in decision.findings:
        report.add_finding(identity.id, f"{finding.code}: {finding.message}")
    if decision.exempt_reason is not None:
        report.exempt[decision.exempt_reason] += 1
        return None

    entry = _due_entry(identity, decision, revoker)
    if entry is not None:
        report.due[entry.label] += 1
    return entry


def _due_entry(identity: Identity, decision: Decision, revoker: Revoker) -> DueEntry | None:
    kinds = decision.revoke_kinds & revoker.supported_kinds
    step = decision.step
    if step is not Step.NONE:
        label = str(step)
    elif kinds:
        label = revocation_label(decision)
    elif _has_lapsed_suspension(identity, decision):
        label = LABEL_CLEAR_SUSPENSION
    else:
        return None
    return DueEntry(
        identity_id=identity.id,
        label=label,
        step=step,
        kinds=kinds,
        last_activity_at=decision.last_activity_at,
        days_inactive=decision.days_inactive,
        is_destructive=step in DESTRUCTIVE_STEPS or bool(kinds),
    )


def _has_lapsed_suspension(identity: Identity, decision: Decision) -> bool:
    """Tell whether the identity carries a suspension from before its latest activity."""
    suspended_at = suspended_at_of(identity)
    return suspended_at is not None and decision.last_activity_at > suspended_at


def _apply_cap(
    due: list[DueEntry], max_destructive_steps: int | None, report: ReportBuilder
) -> Iterator[DueEntry]:
    """Yield the entries to act on, deferring destructive ones beyond the cap."""
    remaining = max_destructive_steps
    for entry in due:
        if entry.is_destructive and remaining is not None:
            if remaining == 0:
                report.deferred.append(entry.identity_id)
                continue
            remaining -= 1
        yield entry


async def _act(actor: IdentityActor, entries: Iterator[DueEntry], concurrency: int) -> None:
    """Run *concurrency* workers that take entries from one shared iterator.

    A fixed set of workers keeps memory flat however many identities are due,
    where one task per identity would not.
    """

    async def work() -> None:
        for entry in entries:
            await actor.act(entry)

    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(work)
