"""An in-process httpx transport to the emulator that behaves like a socket on drops."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

from ._faults import ConnectionDroppedError

__all__ = ["EmulatorTransport"]


class EmulatorTransport(httpx.AsyncBaseTransport):
    """Send requests straight into the emulator's ASGI app, without a socket."""

    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx.ASGITransport(app=app, client=("127.0.0.1", 49152))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except ConnectionDroppedError as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()
