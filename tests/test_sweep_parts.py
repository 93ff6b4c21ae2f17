"""The sweeper's building blocks: audit events, notifier, report, breaker, lock, suspension."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stale_tokens import (
    AuditEvent,
    AuditSink,
    CircuitBreaker,
    ConfigurationError,
    Identity,
    InProcessSweepLock,
    LoggingAuditSink,
    LoggingNotifier,
    Notification,
    Notifier,
    Session,
    SessionSuspendedError,
    StaleTokensError,
    SweepAbortedError,
    SweepLock,
    check_session_not_suspended,
    is_session_suspended,
)
from stale_tokens._report import ReportBuilder
from stale_tokens._suspend import (
    SUSPENDED_AT_KEY,
    clear_suspension_patch,
    suspended_at_of,
    suspension_patch,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _identity(**fields: Any) -> Identity:
    return Identity.from_json({"id": "0d7c2f6e-5a0e-4c3a-9a38-2b8f0e6f6a11", **fields})


def _whoami(authenticated_at: str | None, metadata_public: Any) -> dict[str, Any]:
    session: dict[str, Any] = {
        "id": "5b0e1a9c-27a8-4f0e-8f6e-3a1d2c4b5e6f",
        "active": True,
        "identity": {
            "id": "0d7c2f6e-5a0e-4c3a-9a38-2b8f0e6f6a11",
            "metadata_public": metadata_public,
        },
    }
    if authenticated_at is not None:
        session["authenticated_at"] = authenticated_at
    return session


def _event(**overrides: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "type": "tokens_revoked_stale",
        "identity_id": "id-1",
        "days_inactive": 91,
        "policy": "default",
        "step": "revoke",
        "outcome": "success",
        "occurred_at": NOW,
        "details": {"kinds": ["browser_session"]},
    }
    fields.update(overrides)
    return AuditEvent(**fields)


def test_audit_event_to_dict_formats_timestamp() -> None:
    """An audit event serialises with an RFC 3339 UTC time and all its fields."""
    event = _event(occurred_at=datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))

    data = event.to_dict()

    assert data["occurred_at"] == "2026-06-01T12:00:00.000000Z"
    assert data["type"] == "tokens_revoked_stale"
    assert data["days_inactive"] == 91
    assert data["details"] == {"kinds": ["browser_session"]}


def test_audit_event_rejects_naive_time() -> None:
    """A naive ``occurred_at`` raises ValueError instead of guessing a zone."""
    with pytest.raises(ValueError, match="occurred_at"):
        _event(occurred_at=datetime(2026, 6, 1, 12, 0))  # noqa: DTZ001


@pytest.mark.anyio
async def test_logging_audit_sink_logs_json(caplog: pytest.LogCaptureFixture) -> None:
    """The default sink writes one JSON object per event on ``stale_tokens.audit``."""
    sink = LoggingAuditSink()
    caplog.set_level(logging.INFO, logger="stale_tokens.audit")

    await sink.emit(_event())

    (record,) = [r for r in caplog.records if r.name == "stale_tokens.audit"]
    assert record.levelno == logging.INFO
    assert json.loads(record.getMessage())["identity_id"] == "id-1"
    assert isinstance(sink, AuditSink)


@pytest.mark.anyio
async def test_logging_notifier_omits_traits(caplog: pytest.LogCaptureFixture) -> None:
    """The default notifier logs the identity id and numbers but no email address."""
    identity = _identity(traits={"email": "someone@example.org"})
    notification = Notification(
        step="warn",
        identity=identity,
        days_inactive=83,
        last_activity_at=NOW - timedelta(days=83),
        next_step="revoke",
        next_step_at=NOW + timedelta(days=7),
        policy_name="default",
        episode="2026-03-10T12:00:00.000000Z",
    )
    caplog.set_level(logging.INFO, logger="stale_tokens.notify")

    await LoggingNotifier().notify(notification)

    assert isinstance(LoggingNotifier(), Notifier)
    assert notification.identity_id == identity.id
    assert identity.id in caplog.text
    assert "83 days" in caplog.text
    assert "example.org" not in caplog.text


def test_report_to_json_round_trips() -> None:
    """A built report serialises every tally, sorted, and flags the abort."""
    builder = ReportBuilder(run_id="run-1", policy_name="default", dry_run=True, started_at=NOW)
    builder.identities_seen = 3
    builder.due["revoke"] += 2
    builder.exempt["service account"] += 1
    builder.add_finding("id-2", "traits.role missing; treated as user")
    builder.abort_reason = "too many"

    report = builder.build(duration=1.5)
    data = json.loads(report.to_json())

    assert report.aborted
    assert not report.is_clean
    assert data["due"] == {"revoke": 2}
    assert data["exempt"] == {"service account": 1}
    assert data["findings"] == [
        {"identity_id": "id-2", "finding": "traits.role missing; treated as user"}
    ]
    assert data["started_at"] == "2026-06-01T12:00:00.000000Z"
    assert data["duration_seconds"] == 1.5


def test_report_builder_bounds_listed_findings() -> None:
    """Findings beyond the listing limit are counted but not kept."""
    builder = ReportBuilder(
        run_id="run-1", policy_name="p", dry_run=False, started_at=NOW, max_listed_findings=2
    )
    for number in range(5):
        builder.add_finding(f"id-{number}", "bad timestamp")

    report = builder.build(duration=0.0)

    assert report.findings_total == 5
    assert [item.identity_id for item in report.findings] == ["id-0", "id-1"]


def test_sweep_aborted_error_carries_report() -> None:
    """The abort error is a library error whose message gives the reason."""
    builder = ReportBuilder(run_id="run-9", policy_name="p", dry_run=False, started_at=NOW)
    builder.abort_reason = "another sweep holds the lock"

    error = SweepAbortedError(builder.build(duration=0.0))

    assert isinstance(error, StaleTokensError)
    assert error.report.run_id == "run-9"
    assert "another sweep holds the lock" in str(error)


@pytest.mark.parametrize(
    ("destructive", "identities", "tripped"),
    [
        (10, 100, False),
        (11, 100, True),
        (50, 99, False),
        (10_001, 1_000_000, True),
        (0, 0, False),
    ],
)
def test_circuit_breaker_check_limits(destructive: int, identities: int, tripped: bool) -> None:
    """The defaults trip above 10 % of at least 100 identities or above 10,000."""
    reason = CircuitBreaker().check(destructive=destructive, identities=identities)

    assert (reason is not None) is tripped
    if reason is not None:
        assert str(destructive) in reason


@pytest.mark.parametrize(
    "options",
    [
        {"max_destructive_fraction": 0.0},
        {"max_destructive_fraction": 1.5},
        {"max_destructive_fraction": float("nan")},
        {"max_destructive_count": -1},
        {"min_identities_for_fraction": -5},
    ],
)
def test_circuit_breaker_rejects_invalid_limits(options: dict[str, Any]) -> None:
    """Out-of-range limits raise ConfigurationError naming the option."""
    with pytest.raises(ConfigurationError, match=next(iter(options))):
        CircuitBreaker(**options)


def test_circuit_breaker_none_disables_checks() -> None:
    """``None`` limits let any plan through."""
    breaker = CircuitBreaker(max_destructive_fraction=None, max_destructive_count=None)

    assert breaker.check(destructive=1000, identities=1000) is None


@pytest.mark.anyio
async def test_in_process_lock_excludes_second_owner() -> None:
    """A held lock refuses another owner until its own owner releases it."""
    lock = InProcessSweepLock()

    assert isinstance(lock, SweepLock)
    assert await lock.acquire("run-a")
    assert not await lock.acquire("run-b")
    await lock.release("run-b")
    assert lock.owner == "run-a"
    await lock.release("run-a")
    assert await lock.acquire("run-b")


@pytest.mark.parametrize(
    ("authenticated_at", "metadata_public", "suspended"),
    [
        ("2026-05-01T00:00:00Z", {SUSPENDED_AT_KEY: "2026-05-02T00:00:00Z"}, True),
        ("2026-05-03T00:00:00Z", {SUSPENDED_AT_KEY: "2026-05-02T00:00:00Z"}, False),
        ("2026-05-01T00:00:00Z", None, False),
        ("2026-05-01T00:00:00Z", {"plan": "pro"}, False),
        ("2026-05-01T00:00:00Z", {SUSPENDED_AT_KEY: "yesterday"}, False),
        (None, {SUSPENDED_AT_KEY: "2026-05-02T00:00:00Z"}, True),
        ("2026-05-02T02:00:00+03:00", {SUSPENDED_AT_KEY: "2026-05-02T00:00:00Z"}, True),
    ],
)
def test_is_session_suspended_cases(
    authenticated_at: str | None, metadata_public: Any, suspended: bool
) -> None:
    """A session is suspended only when it was authenticated before a readable marker."""
    whoami = _whoami(authenticated_at, metadata_public)

    assert is_session_suspended(whoami) is suspended
    assert is_session_suspended(Session.from_json(whoami)) is suspended


def test_check_session_not_suspended_raises_http_401() -> None:
    """The check raises an error that is both ours and a Starlette 401."""
    whoami = _whoami("2026-05-01T00:00:00Z", {SUSPENDED_AT_KEY: "2026-05-02T00:00:00Z"})

    with pytest.raises(SessionSuspendedError) as caught:
        check_session_not_suspended(whoami)

    assert isinstance(caught.value, HTTPException)
    assert isinstance(caught.value, StaleTokensError)
    assert caught.value.status_code == 401
    assert caught.value.identity_id == "0d7c2f6e-5a0e-4c3a-9a38-2b8f0e6f6a11"


@pytest.mark.anyio
async def test_check_session_not_suspended_in_starlette_app() -> None:
    """A Starlette endpoint that calls the check returns 401 for a suspended session."""
    sessions = {
        "old": _whoami("2026-05-01T00:00:00Z", {SUSPENDED_AT_KEY: "2026-05-02T00:00:00Z"}),
        "fresh": _whoami("2026-05-03T00:00:00Z", {SUSPENDED_AT_KEY: "2026-05-02T00:00:00Z"}),
    }

    async def endpoint(request: Request) -> JSONResponse:
        session = sessions[request.query_params["session"]]
        check_session_not_suspended(session)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/", endpoint)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        old = await client.get("/", params={"session": "old"})
        fresh = await client.get("/", params={"session": "fresh"})

    assert old.status_code == 401
    assert fresh.json() == {"ok": True}


def test_suspension_patch_adds_key_to_object() -> None:
    """An existing metadata_public object gets one added key, keeping the others."""
    patch = suspension_patch(_identity(metadata_public={"plan": "pro"}), NOW)

    assert patch == [
        {
            "op": "add",
            "path": f"/metadata_public/{SUSPENDED_AT_KEY}",
            "value": "2026-06-01T12:00:00.000000Z",
        }
    ]


def test_suspension_patch_writes_object_when_null() -> None:
    """A null metadata_public is replaced by an object, which Kratos < 1.0 also accepts."""
    patch = suspension_patch(_identity(metadata_public=None), NOW)

    assert patch == [
        {
            "op": "add",
            "path": "/metadata_public",
            "value": {SUSPENDED_AT_KEY: "2026-06-01T12:00:00.000000Z"},
        }
    ]


def test_suspension_patch_refuses_non_object() -> None:
    """A string metadata_public is left alone rather than overwritten."""
    assert suspension_patch(_identity(metadata_public="legacy"), NOW) is None


def test_clear_suspension_patch_removes_marker() -> None:
    """Clearing removes the key when present and does nothing otherwise."""
    marked = _identity(metadata_public={SUSPENDED_AT_KEY: "2026-05-02T00:00:00Z", "plan": "pro"})

    assert clear_suspension_patch(marked) == [
        {"op": "remove", "path": f"/metadata_public/{SUSPENDED_AT_KEY}"}
    ]
    assert clear_suspension_patch(_identity(metadata_public={"plan": "pro"})) is None
    assert suspended_at_of(marked) == datetime(2026, 5, 2, tzinfo=UTC)
