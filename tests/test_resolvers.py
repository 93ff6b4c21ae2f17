"""mark_active, TrustedHeaderResolver and KratosWhoamiResolver."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from starlette.types import Scope

from stale_tokens import (
    ActivityMiddleware,
    ActivityTracker,
    ConfigurationError,
    CredentialKind,
    KratosWhoamiResolver,
    TrustedHeaderResolver,
    mark_active,
)
from stale_tokens._resolvers import MARK_SCOPE_KEY, ActivityMark
from stale_tokens.testing import OryEmulator

PUBLIC_URL = "http://127.0.0.1:4433"
WHOAMI_URL = f"{PUBLIC_URL}/sessions/whoami"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _scope(*headers: tuple[str, str]) -> Scope:
    return {
        "type": "http",
        "path": "/",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
    }


class Recorded:
    """Collects what a resolver passes to the tracker's record callback."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, CredentialKind | None]] = []

    def __call__(self, identity_id: str, at: float, kind: CredentialKind | None) -> None:
        self.calls.append((identity_id, at, kind))


def test_mark_active_sets_mark_in_scope() -> None:
    """mark_active stores the identity and kind in the scope's mark and returns True."""
    mark = ActivityMark()
    scope: dict[str, Any] = {MARK_SCOPE_KEY: mark}

    assert mark_active(scope, "id-1", kind="oauth2") is True
    assert mark.identity_id == "id-1"
    assert mark.kind is CredentialKind.OAUTH2


def test_mark_active_without_middleware_returns_false() -> None:
    """Without the middleware's mark in the scope nothing is stored."""
    scope: dict[str, Any] = {"type": "http"}

    assert mark_active(scope, "id-1") is False
    assert scope == {"type": "http"}


def test_mark_active_rejects_bad_arguments() -> None:
    """An empty id or an unknown kind raises ValueError naming the value."""
    scope: dict[str, Any] = {MARK_SCOPE_KEY: ActivityMark()}

    with pytest.raises(ValueError, match="identity_id"):
        mark_active(scope, "")
    with pytest.raises(ValueError, match="'jwt' is not a credential kind"):
        mark_active(scope, "id-1", kind="jwt")


def test_trusted_header_resolver_reads_header() -> None:
    """The header is matched case-insensitively; absent or blank headers give None."""
    resolver = TrustedHeaderResolver("X-Forwarded-User", kind=CredentialKind.OAUTH2)

    assert resolver.identify(_scope(("x-forwarded-user", " id-1 ")), NOW) == (
        "id-1",
        CredentialKind.OAUTH2,
    )
    assert resolver.identify(_scope(("x-forwarded-user", "  ")), NOW) is None
    assert resolver.identify(_scope(("x-user-id", "id-1")), NOW) is None


def test_trusted_header_resolver_rejects_empty_header() -> None:
    """An empty header name raises ValueError."""
    with pytest.raises(ValueError, match="header"):
        TrustedHeaderResolver("")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("cookie_name", ""),
        ("cache_ttl", -1.0),
        ("timeout", 0.0),
        ("max_cache_size", 0),
        ("max_lookups_per_flush", 0),
    ],
)
def test_whoami_resolver_rejects_invalid_option(option: str, value: Any) -> None:
    """Each invalid option raises ConfigurationError naming it."""
    options: dict[str, Any] = {option: value}
    with pytest.raises(ConfigurationError, match=option):
        KratosWhoamiResolver(PUBLIC_URL, **options)


def test_whoami_resolver_rejects_url_without_scheme() -> None:
    """A public URL without http:// or https:// raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match="public_url"):
        KratosWhoamiResolver("127.0.0.1:4433")


@pytest.mark.anyio
async def test_whoami_resolver_looks_up_cookie_in_flush() -> None:
    """A cookie is looked up during resolve_pending, then served from the cache by hash."""
    resolver = KratosWhoamiResolver(PUBLIC_URL, cookie_name="ory_session_demo")
    recorded = Recorded()
    scope = _scope(("cookie", "theme=dark; ory_session_demo=secret-cookie"))

    with respx.mock(assert_all_mocked=True) as router:
        route = router.get(WHOAMI_URL).respond(200, json={"identity": {"id": "id-1"}})

        assert resolver.identify(scope, NOW) is None
        await resolver.resolve_pending(recorded)
        cached = resolver.identify(scope, NOW + 30)

    assert recorded.calls == [("id-1", NOW, CredentialKind.BROWSER_SESSION)]
    assert cached == ("id-1", CredentialKind.BROWSER_SESSION)
    assert route.call_count == 1
    assert route.calls[0].request.headers["cookie"] == "ory_session_demo=secret-cookie"
    assert hashlib.sha256(b"secret-cookie").digest() in resolver._cache
    assert all(b"secret" not in key for key in resolver._cache)
    await resolver.aclose()


@pytest.mark.anyio
async def test_whoami_resolver_prefers_session_token() -> None:
    """X-Session-Token wins over the cookie, as in Kratos, and is sent as that header."""
    resolver = KratosWhoamiResolver(PUBLIC_URL)
    recorded = Recorded()
    scope = _scope(("cookie", "ory_kratos_session=cookie-value"), ("x-session-token", "token-1"))

    with respx.mock(assert_all_mocked=True) as router:
        route = router.get(WHOAMI_URL).respond(
            200, json={}, headers={"X-Kratos-Authenticated-Identity-Id": "id-token"}
        )
        resolver.identify(scope, NOW)
        await resolver.resolve_pending(recorded)

    request = route.calls[0].request
    assert request.headers["x-session-token"] == "token-1"
    assert "cookie" not in request.headers
    assert recorded.calls == [("id-token", NOW, CredentialKind.BROWSER_SESSION)]
    await resolver.aclose()


@pytest.mark.anyio
async def test_whoami_resolver_caches_rejected_credential() -> None:
    """A 401 is cached as unknown for cache_ttl, then asked again."""
    resolver = KratosWhoamiResolver(PUBLIC_URL, cache_ttl=60)
    recorded = Recorded()
    scope = _scope(("x-session-token", "expired"))

    with respx.mock(assert_all_mocked=True) as router:
        route = router.get(WHOAMI_URL).respond(401, json={"error": {"code": 401}})
        resolver.identify(scope, NOW)
        await resolver.resolve_pending(recorded)
        resolver.identify(scope, NOW + 59)
        await resolver.resolve_pending(recorded)
        resolver.identify(scope, NOW + 61)
        await resolver.resolve_pending(recorded)

    assert route.call_count == 2
    assert recorded.calls == []
    await resolver.aclose()


@pytest.mark.anyio
async def test_whoami_resolver_keeps_credential_on_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 503 or a connection error keeps the credential for the next flush, logged without it."""
    resolver = KratosWhoamiResolver(PUBLIC_URL)
    recorded = Recorded()

    with respx.mock(assert_all_mocked=True) as router:
        route = router.get(WHOAMI_URL)
        route.side_effect = [
            httpx.Response(503),
            httpx.ConnectError("refused"),
            httpx.Response(200, json={"identity": {"id": "id-1"}}),
        ]
        resolver.identify(_scope(("x-session-token", "token-secret")), NOW)
        with caplog.at_level(logging.WARNING, logger="stale_tokens.tracking"):
            await resolver.resolve_pending(recorded)
            resolver.identify(_scope(("x-session-token", "token-secret")), NOW + 5)
            await resolver.resolve_pending(recorded)
        await resolver.resolve_pending(recorded)

    assert route.call_count == 3
    assert recorded.calls == [("id-1", NOW + 5, CredentialKind.BROWSER_SESSION)]
    assert resolver.failed == 2
    assert [record.getMessage() for record in caplog.records] == [
        "Kratos whoami failed for 1 of 1 credentials (status 503); retrying them on the next flush"
    ]
    assert all("token-secret" not in record.getMessage() for record in caplog.records)
    await resolver.aclose()


@pytest.mark.anyio
async def test_whoami_resolver_rate_limits_failure_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 404 on every flush is one WARNING that names public_url; repeats go to DEBUG."""
    resolver = KratosWhoamiResolver(PUBLIC_URL)
    recorded = Recorded()

    with respx.mock(assert_all_mocked=True) as router:
        route = router.get(WHOAMI_URL).respond(404, text="404 page not found")
        resolver.identify(_scope(("x-session-token", "token-1")), NOW)
        pending_before = resolver.count_pending()
        with caplog.at_level(logging.DEBUG, logger="stale_tokens.tracking"):
            failed = [await resolver.resolve_pending(recorded) for _ in range(3)]

    assert failed == [1, 1, 1]
    assert pending_before == 1
    assert resolver.count_pending() == 1
    assert route.call_count == 3
    assert route.calls[0].request.headers["x-session-token"] == "token-1"
    assert recorded.calls == []
    message = (
        "Kratos whoami failed for 1 of 1 credentials (status 404); retrying them on the "
        "next flush; check that public_url is the Kratos public API"
    )
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, message),
        (logging.DEBUG, message),
        (logging.DEBUG, message),
    ]
    await resolver.aclose()


@pytest.mark.anyio
async def test_whoami_resolver_returns_zero_without_failures() -> None:
    """resolve_pending returns 0 with nothing pending and after successful lookups."""
    resolver = KratosWhoamiResolver(PUBLIC_URL)
    recorded = Recorded()

    with respx.mock(assert_all_mocked=True) as router:
        route = router.get(WHOAMI_URL).respond(200, json={"identity": {"id": "id-1"}})
        idle = await resolver.resolve_pending(recorded)
        resolver.identify(_scope(("x-session-token", "token-1")), NOW)
        resolved = await resolver.resolve_pending(recorded)

    assert (idle, resolved) == (0, 0)
    assert resolver.count_pending() == 0
    assert route.call_count == 1
    assert recorded.calls == [("id-1", NOW, CredentialKind.BROWSER_SESSION)]
    await resolver.aclose()


@pytest.mark.anyio
async def test_whoami_resolver_bounds_cache_and_pending() -> None:
    """The cache evicts the oldest entry, and pending credentials beyond the bound are dropped."""
    resolver = KratosWhoamiResolver(
        PUBLIC_URL, max_cache_size=2, max_pending=3, max_lookups_per_flush=2
    )
    recorded = Recorded()

    with respx.mock(assert_all_mocked=True) as router:
        route = router.get(WHOAMI_URL).mock(
            side_effect=lambda request: httpx.Response(
                200, json={"identity": {"id": "id-" + request.headers["x-session-token"]}}
            )
        )
        for token in ("a", "b", "c", "d"):
            resolver.identify(_scope(("x-session-token", token)), NOW)
        await resolver.resolve_pending(recorded)
        await resolver.resolve_pending(recorded)

    assert resolver.dropped == 1
    assert route.call_count == 3
    assert sorted(call[0] for call in recorded.calls) == ["id-a", "id-b", "id-c"]
    assert len(resolver._cache) == 2
    await resolver.aclose()


@pytest.mark.anyio
async def test_whoami_resolver_against_emulator() -> None:
    """Through the middleware and tracker, an emulated session cookie becomes a write."""
    emulator = OryEmulator()
    identity = emulator.kratos.add_identity(traits={"email": "user@example.com"})
    session = emulator.kratos.create_session(identity["id"])
    stored: list[tuple[str, dict[str | tuple[str, ...], Any]]] = []

    class Writer:
        async def set_metadata_admin(
            self, identity_id: str, values: Mapping[str | tuple[str, ...], Any]
        ) -> object:
            stored.append((identity_id, dict(values)))
            return None

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    tracker = ActivityTracker(Writer(), clock=lambda: NOW)
    async with KratosWhoamiResolver(PUBLIC_URL, transport=emulator.transport()) as resolver:
        middleware = ActivityMiddleware(app, tracker=tracker, resolver=resolver)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=middleware), base_url="http://app"
        ) as client:
            await client.get("/", headers={"Cookie": f"ory_kratos_session={session.cookie}"})
            await client.get("/", headers={"X-Session-Token": "not-a-session"})
        await tracker.flush()

    assert stored == [
        (
            identity["id"],
            {
                "last_activity_at": "2026-05-01T12:00:00.000000Z",
                ("last_activity_by_kind", "browser_session"): "2026-05-01T12:00:00.000000Z",
            },
        )
    ]
    assert emulator.requests["whoami"] == 2


@pytest.mark.anyio
async def test_whoami_resolver_finds_cookie_among_others() -> None:
    """The session cookie is found by exact name, after a cookie that is not RFC 6265 clean."""
    resolver = KratosWhoamiResolver(PUBLIC_URL)
    recorded = Recorded()
    header = 'bad"name=1; ory_kratos_session_old=stale; ory_kratos_session=fresh; theme=dark'

    with respx.mock(assert_all_mocked=True) as router:
        route = router.get(WHOAMI_URL).respond(200, json={"identity": {"id": "id-1"}})
        resolver.identify(_scope(("cookie", header)), NOW)
        await resolver.resolve_pending(recorded)

    assert route.calls[0].request.headers["cookie"] == "ory_kratos_session=fresh"
    assert recorded.calls == [("id-1", NOW, CredentialKind.BROWSER_SESSION)]
    await resolver.aclose()
