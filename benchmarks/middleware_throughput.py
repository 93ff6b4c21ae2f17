"""Requests per second of a minimal Starlette app: bare, with a pass-through ASGI middleware,
with ActivityMiddleware, and with the same tracking written as a BaseHTTPMiddleware.

Run: .venv/bin/python benchmarks/middleware_throughput.py [--requests N] [--seconds S]

In-process, each request is one direct ASGI call, so the numbers show the
middleware's own cost. Over uvicorn on 127.0.0.1 one httpx client with
concurrent tasks drives one server process per variant. The client then
costs more CPU than the server, so those ratios include the client's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stale_tokens import ActivityMiddleware, ActivityTracker, TrustedHeaderResolver

IDENTITIES = 1000
VARIANTS = ("bare", "pass-through ASGI", "ActivityMiddleware", "BaseHTTPMiddleware")


class NullWriter:
    async def set_metadata_admin(self, identity_id: str, values: object) -> object:
        return None


class PassThroughMiddleware:
    """An ASGI middleware that only calls the app: the floor for any middleware layer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class TrackingBaseHTTPMiddleware(BaseHTTPMiddleware):
    """The same tracking as ActivityMiddleware with TrustedHeaderResolver, the common naive way."""

    def __init__(self, app: ASGIApp, *, tracker: ActivityTracker) -> None:
        super().__init__(app)
        self.tracker = tracker

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        identity_id = request.headers.get("x-user-id")
        if identity_id:
            self.tracker.record(identity_id)
        return response


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def build_app(variant: str) -> Starlette:
    tracker = ActivityTracker(NullWriter())
    middleware = {
        "bare": [],
        "pass-through ASGI": [Middleware(PassThroughMiddleware)],
        "ActivityMiddleware": [
            Middleware(ActivityMiddleware, tracker=tracker, resolver=TrustedHeaderResolver())
        ],
        "BaseHTTPMiddleware": [Middleware(TrackingBaseHTTPMiddleware, tracker=tracker)],
    }[variant]
    return Starlette(routes=[Route("/", hello)], middleware=middleware)


def _scope(identity: int) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"x-user-id", f"identity-{identity}".encode())],
        "server": ("bench", 80),
        "client": ("127.0.0.1", 5000),
    }


async def run_in_process(app: ASGIApp, requests: int) -> float:
    """Return requests per second for *requests* sequential direct ASGI calls."""

    async def send(message: Message) -> None:
        return None

    scopes = [_scope(number % IDENTITIES) for number in range(requests)]
    started = time.perf_counter()
    for scope in scopes:
        await app(scope, _receiver(), send)
    return requests / (time.perf_counter() - started)


def _receiver() -> Callable[[], Awaitable[Message]]:
    """Return the request body once, then wait like a client that stays connected."""
    messages: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()
        raise AssertionError("unreachable: the wait above is only ever cancelled")

    return receive


def in_process(requests: int, rounds: int) -> dict[str, float]:
    apps = {variant: build_app(variant) for variant in VARIANTS}
    results: dict[str, list[float]] = {variant: [] for variant in VARIANTS}

    async def main() -> None:
        for app in apps.values():
            await run_in_process(app, 2000)
        # Interleaved rounds, so a slow phase of the machine hits every variant alike.
        for _ in range(rounds):
            for variant, app in apps.items():
                results[variant].append(await run_in_process(app, requests))

    asyncio.run(main())
    return {variant: statistics.median(values) for variant, values in results.items()}


def _serve(variant: str, port: int) -> None:
    uvicorn.run(build_app(variant), host="127.0.0.1", port=port, log_level="error")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _drive(port: int, seconds: float, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
        for _ in range(50):
            try:
                await client.get("/")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal done
            number = offset
            while time.perf_counter() < deadline:
                await client.get("/", headers={"X-User-Id": f"identity-{number % IDENTITIES}"})
                number += concurrency
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(offset) for offset in range(concurrency)))
        return done / (time.perf_counter() - started)


def over_uvicorn(seconds: float, concurrency: int) -> dict[str, float]:
    results: dict[str, float] = {}
    context = multiprocessing.get_context("spawn")
    for variant in VARIANTS:
        port = _free_port()
        server = context.Process(target=_serve, args=(variant, port), daemon=True)
        server.start()
        try:
            results[variant] = asyncio.run(_drive(port, seconds, concurrency))
        finally:
            server.terminate()
            server.join()
    return results


def _report(title: str, results: dict[str, float]) -> None:
    bare = results["bare"]
    print(title)
    for variant, rate in results.items():
        print(f"  {variant:<20} {rate:>10,.0f} req/s   {rate / bare:.3f} of bare")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7, help="in-process rounds per variant")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per uvicorn variant")
    parser.add_argument("--concurrency", type=int, default=16, help="client tasks for uvicorn")
    parser.add_argument("--skip-uvicorn", action="store_true", help="measure in-process only")
    options = parser.parse_args(argv)

    _report(
        f"In-process, direct ASGI calls ({options.requests:,} requests x {options.rounds} "
        "rounds, median):",
        in_process(options.requests, options.rounds),
    )
    if not options.skip_uvicorn:
        _report(
            f"uvicorn on 127.0.0.1, httpx client with {options.concurrency} tasks, "
            f"{options.seconds:g} s each:",
            over_uvicorn(options.seconds, options.concurrency),
        )


if __name__ == "__main__":
    main()
