"""Requests per second of a minimal Starlette app: bare, with a pass-through ASGI middleware,
with ActivityMiddleware (resolver or mark_active), and as a BaseHTTPMiddleware.

Run: .venv/bin/python benchmarks/middleware_throughput.py [--requests N] [--wrk-seconds S]

In-process, each request is one direct ASGI call, so the numbers show the
middleware's own cost. Over uvicorn, each variant runs in its own server
process on 127.0.0.1 (one worker, no access log) and wrk drives it when it is
on PATH. Without wrk an httpx client drives the servers instead. One Python
client tops out at a few hundred requests per second, below what uvicorn
serves, so those ratios then measure the client and not the middleware.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stale_tokens import ActivityMiddleware, ActivityTracker, TrustedHeaderResolver, mark_active

IDENTITIES = 1000
VARIANTS = (
    "bare",
    "pass-through ASGI",
    "ActivityMiddleware, resolver",
    "ActivityMiddleware, mark_active",
    "BaseHTTPMiddleware",
)
SERVER_START_TIMEOUT = 20.0  # seconds
WRK_REQUESTS_PER_SECOND = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
WRK_ERRORS = re.compile(r"^\s*(Socket errors:.*|Non-2xx or 3xx responses:.*)$", re.MULTILINE)


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


async def hello_marked(request: Request) -> PlainTextResponse:
    # The header read replaces the app's own authentication. It is counted
    # against this variant, although a real app pays for authentication anyway.
    identity_id = request.headers.get("x-user-id")
    if identity_id:
        mark_active(request, identity_id)
    return PlainTextResponse("hello")


def build_app(variant: str) -> Starlette:
    tracker = ActivityTracker(NullWriter())
    middleware = {
        "bare": [],
        "pass-through ASGI": [Middleware(PassThroughMiddleware)],
        "ActivityMiddleware, resolver": [
            Middleware(ActivityMiddleware, tracker=tracker, resolver=TrustedHeaderResolver())
        ],
        "ActivityMiddleware, mark_active": [Middleware(ActivityMiddleware, tracker=tracker)],
        "BaseHTTPMiddleware": [Middleware(TrackingBaseHTTPMiddleware, tracker=tracker)],
    }[variant]
    endpoint = hello_marked if variant == "ActivityMiddleware, mark_active" else hello
    return Starlette(routes=[Route("/", endpoint)], middleware=middleware)


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


def in_process(requests: int, rounds: int) -> dict[str, list[float]]:
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
    return results


def serve(variant: str, port: int) -> None:
    """Serve *variant* on 127.0.0.1:*port* until terminated, in the server process."""
    uvicorn.run(
        build_app(variant),
        host="127.0.0.1",
        port=port,
        workers=1,
        log_level="warning",
        access_log=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _pin_to(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


@contextmanager
def running_server(variant: str, cpu: int | None) -> Iterator[int]:
    """Start one uvicorn process for *variant*, yield its port, and stop it by its process id."""
    port = _free_port()
    command = [sys.executable, __file__, "--serve", variant, "--port", str(port)]
    server = subprocess.Popen(command, preexec_fn=_pin_to(cpu))  # noqa: PLW1509, S603
    try:
        _wait_until_listening(server, port)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_listening(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with code {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not listening after {SERVER_START_TIMEOUT:g} s")


def run_wrk(
    wrk: str, port: int, *, threads: int, connections: int, seconds: int, cpu: int | None
) -> float:
    """Run wrk against 127.0.0.1:*port* and return its requests per second."""
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        # NOTE: every wrk request carries the same identity, unlike the 1,000
        # identities in-process and with httpx, so the buffer updates one entry.
        "-H",
        "X-User-Id: identity-1",
        f"http://127.0.0.1:{port}/",
    ]
    completed = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, check=True, preexec_fn=_pin_to(cpu)
    )
    match = WRK_REQUESTS_PER_SECOND.search(completed.stdout)
    if match is None:
        raise RuntimeError(f"no Requests/sec line in wrk output:\n{completed.stdout}")
    for error in WRK_ERRORS.findall(completed.stdout):
        print(f"  wrk on port {port}: {error.strip()}", file=sys.stderr)
    return float(match.group(1))


async def drive_with_httpx(port: int, seconds: float, concurrency: int) -> float:
    """Return requests per second of one httpx client with *concurrency* tasks."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
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


def over_uvicorn(options: argparse.Namespace, wrk: str | None) -> dict[str, list[float]]:
    """Start one server per variant, warm each up, then measure them in interleaved rounds."""
    results: dict[str, list[float]] = {variant: [] for variant in VARIANTS}

    def measure(port: int, seconds: int) -> float:
        if wrk is None:
            return asyncio.run(drive_with_httpx(port, seconds, options.connections))
        return run_wrk(
            wrk,
            port,
            threads=options.wrk_threads,
            connections=options.connections,
            seconds=seconds,
            cpu=options.client_cpu,
        )

    with ExitStack() as servers:
        ports = {
            variant: servers.enter_context(running_server(variant, options.server_cpu))
            for variant in VARIANTS
        }
        for port in ports.values():
            measure(port, options.warmup_seconds)
        for _ in range(options.wrk_rounds):
            for variant, port in ports.items():
                results[variant].append(measure(port, options.wrk_seconds))
    return results


def _report(title: str, results: dict[str, list[float]]) -> None:
    """Print the median rate of each variant, its ratio to bare, and the range over rounds."""
    bare = statistics.median(results["bare"])
    print(title)
    for variant, rates in results.items():
        rate = statistics.median(rates)
        extra = 1e6 / rate - 1e6 / bare
        print(
            f"  {variant:<32} {rate:>10,.0f} req/s   {rate / bare:.3f} of bare   "
            f"{extra:+6.1f} µs/request   rounds {min(rates):,.0f} to {max(rates):,.0f}"
        )


def _pinning(cpu: int | None) -> str:
    return "not pinned" if cpu is None else f"pinned to CPU {cpu}"


def _parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7, help="in-process rounds per variant")
    parser.add_argument("--skip-uvicorn", action="store_true", help="measure in-process only")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (-t)")
    parser.add_argument(
        "--connections", type=int, default=32, help="open connections (wrk -c, httpx tasks)"
    )
    parser.add_argument("--wrk-seconds", type=int, default=5, help="whole seconds per measured run")
    parser.add_argument("--wrk-rounds", type=int, default=5, help="uvicorn rounds per variant")
    parser.add_argument(
        "--warmup-seconds", type=int, default=2, help="whole seconds of warm-up per server"
    )
    parser.add_argument(
        "--server-cpu", type=int, default=None, help="pin every server to this CPU (default: none)"
    )
    parser.add_argument(
        "--client-cpu", type=int, default=None, help="pin wrk to this CPU (default: none)"
    )
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = _parse_options(argv)
    if options.serve is not None:
        serve(options.serve, options.port)
        return

    _report(
        f"In-process, direct ASGI calls ({options.requests:,} requests x {options.rounds} "
        "rounds, median):",
        in_process(options.requests, options.rounds),
    )
    if options.skip_uvicorn:
        return

    wrk = shutil.which("wrk")
    cpus = os.cpu_count()
    if wrk is None:
        print(
            "wrk not found on PATH (Debian: apt-get install wrk); falling back to one httpx "
            "client. Its rate is bound by the client, so these ratios do not measure the "
            "middleware."
        )
        generator = f"httpx client, {options.connections} tasks (client-bound)"
    else:
        generator = (
            f"wrk -t{options.wrk_threads} -c{options.connections} -d{options.wrk_seconds:g}s"
        )
    print(
        f"Load generator: {generator}. It shares this machine's {cpus} CPUs with the "
        f"server (server {_pinning(options.server_cpu)}, client {_pinning(options.client_cpu)})."
    )
    _report(
        f"uvicorn {uvicorn.__version__} on 127.0.0.1, one worker per variant, "
        f"{options.wrk_rounds} rounds after {options.warmup_seconds:g} s warm-up, median:",
        over_uvicorn(options, wrk),
    )


if __name__ == "__main__":
    main()
