"""ActivityTracker writing through a real KratosAdmin: respx, the emulator, uvicorn."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
import respx
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from stale_tokens import (
    ActivityMiddleware,
    ActivityTracker,
    KratosAdmin,
    KratosWhoamiResolver,
    mark_active,
    parse_timestamp,
)
from stale_tokens.testing import Fault, OryEmulator

ADMIN_URL = "http://127.0.0.1:4434"
IDENTITY_ID = "5f1c0a4e-3a2b-4c5d-8e9f-0123456789ab"
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STAMP = "2026-05-01T12:00:00.000000Z"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    def __init__(self) -> None:
        self.now = START.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _identity_json(metadata_admin: Any) -> dict[str, Any]:
    return {
        "id": IDENTITY_ID,
        "schema_id": "default",
        "schema_url": "http://127.0.0.1:4433/schemas/default",
        "state": "active",
        "traits": {},
        "metadata_public": None,
        "metadata_admin": metadata_admin,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }


@pytest.mark.anyio
async def test_tracker_sends_json_patch_through_kratos_admin() -> None:
    """A flush sends one PATCH with an add per key under /metadata_admin."""
    clock = FakeClock()

    with respx.mock(assert_all_mocked=True, assert_all_called=True) as router:
        route = router.patch(f"{ADMIN_URL}/admin/identities/{IDENTITY_ID}").respond(
            200, json=_identity_json({"last_activity_at": STAMP})
        )
        async with KratosAdmin(ADMIN_URL, api_key="ory_pat_example", max_attempts=1) as kratos:
            tracker = ActivityTracker(kratos, clock=clock)
            tracker.record(IDENTITY_ID, kind="oauth2")
            await tracker.flush()

    request = route.calls[0].request
    assert request.headers["authorization"] == "Bearer ory_pat_example"
    assert json.loads(request.content) == [
        {"op": "add", "path": "/metadata_admin/last_activity_at", "value": STAMP},
        {"op": "add", "path": "/metadata_admin/last_activity_by_kind/oauth2", "value": STAMP},
    ]
    assert tracker.health().written == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "pending", "not_found"),
    [(500, 1, 0), (429, 1, 0), (404, 0, 1)],
    ids=["500-kept", "429-kept", "404-dropped"],
)
async def test_tracker_handles_kratos_errors(status: int, pending: int, not_found: int) -> None:
    """Kratos 5xx and 429 keep the entry for the next flush; 404 drops it."""
    clock = FakeClock()

    with respx.mock(assert_all_mocked=True, assert_all_called=True) as router:
        route = router.patch(f"{ADMIN_URL}/admin/identities/{IDENTITY_ID}").respond(
            status, json={"error": {"code": status, "message": "failed"}}
        )
        async with KratosAdmin(ADMIN_URL, max_attempts=1) as kratos:
            tracker = ActivityTracker(kratos, clock=clock)
            tracker.record(IDENTITY_ID)
            await tracker.flush()

    assert route.call_count == 1
    assert tracker.health().pending == pending
    assert tracker.health().not_found == not_found


@asynccontextmanager
async def _kratos(emulator: OryEmulator) -> AsyncIterator[KratosAdmin]:
    async with KratosAdmin(ADMIN_URL, transport=emulator.transport(), max_attempts=1) as kratos:
        yield kratos


@pytest.mark.anyio
async def test_tracker_keeps_other_metadata_keys_in_emulator() -> None:
    """Writes land in metadata_admin, null or not, and keep every other key."""
    emulator = OryEmulator()
    blank = emulator.kratos.add_identity()
    tagged = emulator.kratos.add_identity(metadata_admin={"account_type": "regular"})
    clock = FakeClock()

    async with _kratos(emulator) as kratos:
        tracker = ActivityTracker(kratos, clock=clock)
        tracker.record(blank["id"])
        tracker.record(tagged["id"], kind="browser_session")
        await tracker.flush()

    assert emulator.kratos.identity_json(blank["id"])["metadata_admin"] == {
        "last_activity_at": STAMP
    }
    assert emulator.kratos.identity_json(tagged["id"])["metadata_admin"] == {
        "account_type": "regular",
        "last_activity_at": STAMP,
        "last_activity_by_kind": {"browser_session": STAMP},
    }
    assert emulator.writes[blank["id"]] == 1
    assert emulator.writes[tagged["id"]] == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fault",
    [
        Fault("patch_identity", status=503, times=1),
        Fault("patch_identity", status=429, times=1),
        Fault("patch_identity", drop=True, times=1),
    ],
    ids=["503", "429", "dropped-connection"],
)
async def test_tracker_retries_after_emulator_fault(fault: Fault) -> None:
    """After a faulted flush the next one writes the newest activity, recorded meanwhile."""
    emulator = OryEmulator()
    identity = emulator.kratos.add_identity()
    emulator.add_fault(fault)
    clock = FakeClock()

    async with _kratos(emulator) as kratos:
        tracker = ActivityTracker(kratos, clock=clock)
        tracker.record(identity["id"])
        await tracker.flush()
        failed = tracker.health()
        clock.advance(30)
        tracker.record(identity["id"])
        await tracker.flush()

    assert failed.failed == 1
    assert failed.pending == 1
    assert emulator.requests["patch_identity"] == 2
    stored = emulator.kratos.identity_json(identity["id"])["metadata_admin"]
    assert stored == {"last_activity_at": "2026-05-01T12:00:30.000000Z"}
    assert tracker.health().consecutive_failures == 0


@pytest.mark.anyio
async def test_tracker_drops_deleted_identity_in_emulator() -> None:
    """Activity of an identity that no longer exists is dropped after one 404."""
    emulator = OryEmulator()
    clock = FakeClock()

    async with _kratos(emulator) as kratos:
        tracker = ActivityTracker(kratos, clock=clock)
        tracker.record(IDENTITY_ID)
        await tracker.flush()
        await tracker.flush()

    assert emulator.requests["patch_identity"] == 1
    assert tracker.health().not_found == 1
    assert tracker.health().pending == 0


@pytest.mark.anyio
async def test_two_trackers_out_of_order_stay_within_interval() -> None:
    """Two processes flushing out of order leave the stored value at most one interval behind."""
    emulator = OryEmulator()
    identity = emulator.kratos.add_identity()
    identity_id = identity["id"]
    flush_interval = 60.0
    clock = FakeClock()
    newest = clock.now

    async with _kratos(emulator) as kratos:
        options: dict[str, Any] = {
            "clock": clock,
            "flush_interval": flush_interval,
            "min_write_interval": 0,
        }
        first = ActivityTracker(kratos, **options)
        second = ActivityTracker(kratos, **options)
        for step in range(20):
            clock.advance(flush_interval / 4)
            tracker = first if step % 3 else second
            tracker.record(identity_id)
            newest = clock.now
            if step % 4 == 3:
                # The older process flushes last, so its older timestamp wins the row.
                await second.flush()
                await first.flush()
                stored = emulator.kratos.identity_json(identity_id)["metadata_admin"]
                lag = newest - parse_timestamp(stored["last_activity_at"]).timestamp()
                assert 0 <= lag <= flush_interval

    assert emulator.writes[identity_id] >= 5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.anyio
async def test_uvicorn_lifespan_flushes_on_shutdown() -> None:
    """Served by uvicorn on 127.0.0.1, the app's lifespan runs the tracker and flushes at exit."""
    emulator = OryEmulator()
    identity = emulator.kratos.add_identity()
    kratos = KratosAdmin(ADMIN_URL, transport=emulator.transport(), max_attempts=1)
    tracker = ActivityTracker(kratos)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with kratos, tracker:
            yield

    async def me(request: Request) -> PlainTextResponse:
        mark_active(request, request.headers["x-identity"])
        return PlainTextResponse("ok")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(tracker.health().to_dict())

    app = Starlette(
        routes=[Route("/me", me), Route("/healthz", health)],
        middleware=[Middleware(ActivityMiddleware, tracker=tracker)],
        lifespan=lifespan,
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers only this flag)
                await anyio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            response = await client.get("/me", headers={"X-Identity": identity["id"]})
            health_before = (await client.get("/healthz")).json()
        server.should_exit = True

    assert response.text == "ok"
    assert health_before["pending"] == 1
    assert health_before["is_running"] is True
    assert not tracker.health().is_running
    stored = emulator.kratos.identity_json(identity["id"])["metadata_admin"]
    written_at = parse_timestamp(stored["last_activity_at"])
    assert datetime.now(UTC) - written_at < timedelta(minutes=1)


@pytest.mark.anyio
async def test_healthz_shows_whoami_at_wrong_public_url() -> None:
    """Whoami returning 404 on every lookup shows in /healthz as pending and failed lookups."""
    emulator = OryEmulator()
    whoami_requests: list[httpx.Request] = []

    def not_kratos(request: httpx.Request) -> httpx.Response:
        whoami_requests.append(request)
        return httpx.Response(404, text="404 page not found")

    resolver = KratosWhoamiResolver(
        "http://127.0.0.1:4434", transport=httpx.MockTransport(not_kratos)
    )
    kratos = KratosAdmin(ADMIN_URL, transport=emulator.transport(), max_attempts=1)
    tracker = ActivityTracker(kratos, clock=FakeClock())

    async def me(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(tracker.health().to_dict())

    app = Starlette(
        routes=[Route("/me", me), Route("/healthz", health)],
        middleware=[Middleware(ActivityMiddleware, tracker=tracker, resolver=resolver)],
    )
    async with (
        kratos,
        resolver,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client,
    ):
        for token in ("token-1", "token-2", "token-3"):
            await client.get("/me", headers={"X-Session-Token": token})
        before = (await client.get("/healthz")).json()
        await tracker.flush()
        after = (await client.get("/healthz")).json()

    assert (before["pending"], before["pending_credentials"]) == (0, 3)
    assert (after["pending"], after["pending_credentials"]) == (0, 3)
    assert after["failed_lookups"] == 3
    assert after["consecutive_failures"] == 1
    assert after["last_successful_flush_at"] is None
    assert sorted(request.headers["x-session-token"] for request in whoami_requests) == [
        "token-1",
        "token-2",
        "token-3",
    ]
    assert {str(request.url) for request in whoami_requests} == {
        "http://127.0.0.1:4434/sessions/whoami"
    }
    assert sum(emulator.requests.values()) == 0
