"""Serving the emulator over a real socket with uvicorn."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._faults import ConnectionDroppedError

if TYPE_CHECKING:
    import uvicorn

    from ._emulator import OryEmulator

__all__ = ["bind_socket", "build_server", "serve_emulator"]


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen before uvicorn starts, so the port is known and no request is refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def build_server(app: ASGIApp) -> uvicorn.Server:
    """Build a quiet uvicorn server for *app* that really drops connections on a fault.

    Raises:
        ModuleNotFoundError: If uvicorn is not installed (the ``server`` extra).
    """
    try:
        import uvicorn  # noqa: PLC0415 - an optional extra.
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "serving the emulator needs uvicorn; install stale-tokens[server]"
        ) from exc

    config = uvicorn.Config(_ServedApp(app), lifespan="off", log_level="warning", access_log=False)
    return uvicorn.Server(config)


@asynccontextmanager
async def serve_emulator(emulator: OryEmulator, *, host: str, port: int) -> AsyncIterator[str]:
    """Run uvicorn in a background task while the block runs; yield the base URL."""
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    base_url = f"http://{shown_host}:{bound_port}"
    server = build_server(emulator.app)
    previous_url = emulator.public_url
    emulator.public_url = base_url
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.serve, [sock])
            try:
                yield base_url
            finally:
                server.should_exit = True
    finally:
        emulator.public_url = previous_url
        sock.close()


def _canonical_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Spell header names as Go's net/http does (``Link``, ``X-Total-Count``).

    Starlette lower-cases them, and the generated Ory clients copy headers
    into a plain dict, so ``headers["Link"]`` works against Kratos only
    with Go's spelling. Ory Network's rate-limit headers stay lower-case.
    """
    return [
        (name if name.startswith(b"x-ratelimit-") else _canonical_name(name), value)
        for name, value in headers
    ]


def _canonical_name(name: bytes) -> bytes:
    return b"-".join(part[:1].upper() + part[1:] for part in name.split(b"-"))


class _ServedApp:
    """Adapt the app to a socket: Go's header spelling, and real drops.

    A `ConnectionDroppedError` becomes a closed socket instead of a 500.

    uvicorn writes the status line when the response starts and closes the
    connection when the app returns before the body is complete, so the
    client sees the stream end early, as with a crashed upstream.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": _canonical_headers(message.get("headers", []))}
            await send(message)

        try:
            await self._app(scope, receive, tracking_send)
        except ConnectionDroppedError:
            if not started:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 502,
                        "headers": [(b"content-length", b"1048576")],
                    }
                )
