"""ActivityMiddleware in Starlette and FastAPI apps, over HTTP, WebSocket and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from stale_tokens import (
    ActivityMiddleware,
    ActivityTracker,
    ConfigurationError,
    CredentialKind,
    TrustedHeaderResolver,
    mark_active,
)

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp()
STAMP = "2026-05-01T12:00:00.000000Z"

Values = dict[str | tuple[str, ...], Any]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CountingClock:
    """A fixed time that counts how often it was read."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return START


class RecordingWriter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Values]] = []

    async def set_metadata_admin(
        self, identity_id: str, values: Mapping[str | tuple[str, ...], Any]
    ) -> object:
        self.calls.append((identity_id, dict(values)))
        return None


class ScopeCopyingMiddleware:
    """Passes a shallow copy of the scope on, as some third-party middleware does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(dict(scope), receive, send)


def _tracker() -> tuple[ActivityTracker, RecordingWriter, CountingClock]:
    writer, clock = RecordingWriter(), CountingClock()
    return ActivityTracker(writer, clock=clock), writer, clock


def _client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def _marking_endpoint(request: Request) -> PlainTextResponse:
    marked = mark_active(request, request.path_params["identity_id"], kind="oauth2")
    return PlainTextResponse(str(marked))


async def _health_endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(mark_active(request, "id-health")))


def _current_user(request: Request) -> str:
    request.state.identity_id = "id-state"
    return "id-state"


def _starlette_app(tracker: ActivityTracker, *extra: Middleware, **options: Any) -> Starlette:
    return Starlette(
        routes=[
            Route("/items/{identity_id}", _marking_endpoint),
            Route("/healthz/{identity_id}", _marking_endpoint),
            Route("/static/{identity_id}", _marking_endpoint),
            Route("/healthz", _health_endpoint),
        ],
        middleware=[Middleware(ActivityMiddleware, tracker=tracker, **options), *extra],
    )


@pytest.mark.anyio
async def test_middleware_records_marked_identity() -> None:
    """mark_active in an endpoint leads to one write with the identity and kind."""
    tracker, writer, _ = _tracker()
    app = _starlette_app(tracker)

    async with _client(app) as client:
        response = await client.get("/items/id-1")

    assert response.text == "True"
    assert tracker.health().pending == 1
    await tracker.flush()
    assert writer.calls == [
        ("id-1", {"last_activity_at": STAMP, ("last_activity_by_kind", "oauth2"): STAMP})
    ]


@pytest.mark.anyio
async def test_middleware_sees_mark_through_scope_copy() -> None:
    """A middleware that copies the scope between ours and the app does not hide the mark."""
    tracker, writer, _ = _tracker()
    app = _starlette_app(tracker, Middleware(ScopeCopyingMiddleware))

    async with _client(app) as client:
        await client.get("/items/id-1")
    await tracker.flush()

    assert [identity_id for identity_id, _ in writer.calls] == ["id-1"]


@pytest.mark.anyio
async def test_middleware_skips_excluded_paths() -> None:
    """Exact and prefix exclusions are not tracked, and mark_active returns False there."""
    tracker, _, clock = _tracker()
    app = _starlette_app(tracker, exclude_paths=("/healthz",), exclude_path_prefixes=("/static/",))

    async with _client(app) as client:
        exact = await client.get("/healthz")
        prefixed = await client.get("/static/id-1")
        not_excluded = await client.get("/healthz/id-2")

    assert exact.text == "False"
    assert prefixed.text == "False"
    assert not_excluded.text == "True"
    assert tracker.health().pending == 1
    assert clock.reads == 1


@pytest.mark.anyio
async def test_middleware_reads_state_attribute_from_fastapi_dependency() -> None:
    """A sync FastAPI dependency that sets request.state is read after the app ran."""
    tracker, writer, _ = _tracker()
    app = FastAPI()
    app.add_middleware(ActivityMiddleware, tracker=tracker, state_attribute="identity_id")
    app.add_middleware(ScopeCopyingMiddleware)

    @app.get("/me")
    def read_me(user: Annotated[str, Depends(_current_user)]) -> dict[str, str]:
        return {"user": user}

    async with _client(app) as client:
        response = await client.get("/me")
    await tracker.flush()

    assert response.json() == {"user": "id-state"}
    assert writer.calls == [("id-state", {"last_activity_at": STAMP})]


@pytest.mark.anyio
async def test_middleware_accepts_mark_from_sync_fastapi_endpoint() -> None:
    """mark_active works from a sync endpoint, which FastAPI runs in a worker thread."""
    tracker, writer, _ = _tracker()
    app = FastAPI()
    app.add_middleware(ActivityMiddleware, tracker=tracker)

    @app.get("/sync")
    def sync_endpoint(request: Request) -> dict[str, bool]:
        return {"marked": mark_active(request, "id-sync", kind=CredentialKind.BROWSER_SESSION)}

    async with _client(app) as client:
        response = await client.get("/sync")
    await tracker.flush()

    assert response.json() == {"marked": True}
    assert writer.calls == [
        (
            "id-sync",
            {"last_activity_at": STAMP, ("last_activity_by_kind", "browser_session"): STAMP},
        )
    ]


@pytest.mark.anyio
async def test_middleware_uses_resolver_when_unmarked() -> None:
    """Without a mark, the resolver's identity is recorded; without either, nothing is."""
    tracker, writer, _ = _tracker()

    async def anonymous(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/", anonymous)],
        middleware=[
            Middleware(
                ActivityMiddleware,
                tracker=tracker,
                resolver=TrustedHeaderResolver("X-User-Id", kind="personal_access_token"),
            )
        ],
    )

    async with _client(app) as client:
        await client.get("/", headers={"X-User-Id": "id-proxy"})
        await client.get("/")
    await tracker.flush()

    assert writer.calls == [
        (
            "id-proxy",
            {"last_activity_at": STAMP, ("last_activity_by_kind", "personal_access_token"): STAMP},
        )
    ]


@pytest.mark.anyio
async def test_middleware_records_many_concurrent_identities() -> None:
    """Concurrent requests of many identities each leave their own entry."""
    tracker, _, _ = _tracker()
    app = _starlette_app(tracker)

    async with _client(app) as client, anyio.create_task_group() as task_group:
        for number in range(300):
            task_group.start_soon(client.get, f"/items/id-{number}")

    assert tracker.health().pending == 300


@pytest.mark.anyio
async def test_middleware_propagates_exception_and_records() -> None:
    """An exception from the app reaches the server unchanged, and the activity still counts."""
    tracker, _, _ = _tracker()

    async def failing(request: Request) -> PlainTextResponse:
        mark_active(request, "id-error")
        raise RuntimeError("endpoint failed")

    app = Starlette(
        routes=[Route("/", failing)], middleware=[Middleware(ActivityMiddleware, tracker=tracker)]
    )

    async with _client(app) as client:
        with pytest.raises(RuntimeError, match="endpoint failed"):
            await client.get("/")

    assert tracker.health().pending == 1


@pytest.mark.anyio
async def test_middleware_propagates_cancellation() -> None:
    """Cancelling a request inside the app is not swallowed by the middleware."""
    tracker, _, _ = _tracker()
    entered = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        entered.set()
        await anyio.sleep_forever()

    middleware = ActivityMiddleware(app, tracker=tracker)
    scope: Scope = {"type": "http", "path": "/", "headers": []}

    with anyio.CancelScope() as cancel_scope:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(middleware, scope, _no_receive, _no_send)
            await entered.wait()
            cancel_scope.cancel()

    assert cancel_scope.cancelled_caught


async def _no_receive() -> Message:
    raise AssertionError("the app did not read the request")


async def _no_send(message: Message) -> None:
    raise AssertionError("the app did not send")


async def _run_raw(app: ASGIApp, scope: Scope) -> list[Message]:
    sent: list[Message] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop()
        # The client stays connected; Starlette cancels this wait once the response is sent.
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.anyio
async def test_middleware_leaves_streaming_response_unchanged() -> None:
    """A streaming response reaches the server chunk by chunk, exactly as without the middleware."""
    tracker, _, _ = _tracker()
    background_done: list[str] = []

    async def chunks() -> AsyncIterator[bytes]:
        for number in range(3):
            yield f"chunk-{number};".encode()

    async def stream(request: Request) -> StreamingResponse:
        mark_active(request, "id-stream")
        task = BackgroundTask(background_done.append, "done")
        return StreamingResponse(chunks(), media_type="text/plain", background=task)

    bare = Starlette(routes=[Route("/", stream)])
    tracked = Starlette(
        routes=[Route("/", stream)], middleware=[Middleware(ActivityMiddleware, tracker=tracker)]
    )

    def scope() -> Scope:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/",
            "raw_path": b"/",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000),
        }

    bare_messages = await _run_raw(bare, scope())
    tracked_messages = await _run_raw(tracked, scope())

    assert tracked_messages == bare_messages
    assert [m.get("more_body") for m in tracked_messages[1:]] == [True, True, True, False]
    assert background_done == ["done", "done"]
    assert tracker.health().pending == 1


@pytest.mark.anyio
async def test_middleware_passes_lifespan_and_unknown_scopes() -> None:
    """Lifespan and unknown scope types reach the app untouched and are not tracked."""
    tracker, _, clock = _tracker()
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].split(".")[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return

    middleware = ActivityMiddleware(app, tracker=tracker)
    async with LifespanManager(middleware):
        pass
    custom: Scope = {"type": "custom.protocol", "path": "/"}
    await middleware(custom, _no_receive, _no_send)

    assert [scope["type"] for scope in seen] == ["lifespan", "custom.protocol"]
    assert all("stale_tokens.activity_mark" not in scope for scope in seen)
    assert clock.reads == 0


@pytest.mark.anyio
async def test_middleware_runs_tracker_in_fastapi_lifespan() -> None:
    """The documented lifespan recipe starts the tracker and flushes on shutdown."""
    writer = RecordingWriter()
    tracker = ActivityTracker(writer, clock=CountingClock())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with tracker:
            yield

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(ActivityMiddleware, tracker=tracker)

    @app.get("/items/{identity_id}")
    async def read_item(identity_id: str, request: Request) -> dict[str, str]:
        mark_active(request, identity_id)
        return {"id": identity_id}

    async with LifespanManager(app) as manager, _client(manager.app) as client:
        assert tracker.health().is_running
        await client.get("/items/id-1")
        await client.get("/items/id-2")
        assert writer.calls == []

    assert sorted(identity_id for identity_id, _ in writer.calls) == ["id-1", "id-2"]
    assert not tracker.health().is_running


def _websocket_app(tracker: ActivityTracker, **options: Any) -> Starlette:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        mark_active(websocket, "id-ws")
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    return Starlette(
        routes=[WebSocketRoute("/ws", echo)],
        middleware=[Middleware(ActivityMiddleware, tracker=tracker, **options)],
    )


async def _run_websocket(app: ASGIApp, incoming: list[Message]) -> list[Message]:
    sent: list[Message] = []
    queue = list(incoming)

    async def receive() -> Message:
        return queue.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "subprotocols": [],
    }
    await app(scope, receive, send)
    return sent


_WEBSOCKET_SESSION: list[Message] = [
    {"type": "websocket.connect"},
    {"type": "websocket.receive", "text": "one"},
    {"type": "websocket.receive", "text": "two"},
    {"type": "websocket.receive", "text": "three"},
    {"type": "websocket.disconnect", "code": 1000},
]


@pytest.mark.anyio
async def test_middleware_tracks_websocket_messages() -> None:
    """A WebSocket is recorded on received messages and at close, and its frames pass unchanged."""
    tracker, writer, clock = _tracker()
    app = _websocket_app(tracker, websocket_interval=0)

    sent = await _run_websocket(app, _WEBSOCKET_SESSION)
    reads_before_flush = clock.reads
    await tracker.flush()

    assert [m.get("text") for m in sent] == [None, "one", "two", "three"]
    assert reads_before_flush == 5
    assert writer.calls == [("id-ws", {"last_activity_at": STAMP})]


@pytest.mark.anyio
async def test_middleware_throttles_websocket_tracking() -> None:
    """With the default interval, a burst of messages is recorded once plus once at close."""
    tracker, _, clock = _tracker()
    app = _websocket_app(tracker)

    await _run_websocket(app, _WEBSOCKET_SESSION)

    assert clock.reads == 2
    assert tracker.health().pending == 1


def test_middleware_rejects_negative_websocket_interval() -> None:
    """A negative websocket_interval raises ValueError naming it."""
    tracker, _, _ = _tracker()

    with pytest.raises(ValueError, match="websocket_interval"):
        ActivityMiddleware(_starlette_app(tracker), tracker=tracker, websocket_interval=-1)


def test_middleware_rejects_incomplete_deferred_resolver() -> None:
    """A resolver with resolve_pending but no count_pending raises instead of never flushing."""
    tracker, _, _ = _tracker()

    class LegacyResolver:
        def identify(self, scope: Scope, at: float, /) -> None:
            return None

        async def resolve_pending(self, record: Any, /) -> None:
            return None

    with pytest.raises(ConfigurationError, match=r"LegacyResolver.*count_pending"):
        ActivityMiddleware(_starlette_app(tracker), tracker=tracker, resolver=LegacyResolver())
    assert tracker._resolvers == []
