"""ActivityMiddleware: a pure ASGI middleware that records who made each request."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import ConfigurationError
from ._resolvers import MARK_SCOPE_KEY, ActivityMark, IdentityResolver
from ._tracker import ActivityTracker, DeferredIdentityResolver

__all__ = [
    "DEFAULT_EXCLUDED_PATHS",
    "DEFAULT_WEBSOCKET_INTERVAL",
    "ActivityMiddleware",
]

DEFAULT_EXCLUDED_PATHS = ("/health", "/healthz", "/livez", "/readyz", "/metrics")
DEFAULT_WEBSOCKET_INTERVAL = 1.0


class ActivityMiddleware:
    """Records the identity behind each HTTP request and WebSocket in an `ActivityTracker`.

    The identity comes from, in order: `mark_active` called by the
    application, the *state_attribute* of ``request.state`` after the
    application ran, then *resolver*. Recording only updates the tracker's
    buffer: no I/O, no logging, and the request, the response and any
    exception pass through untouched. Lifespan and other scope types are not
    tracked.

    Args:
        app: The ASGI application.
        tracker: Where activity is recorded.
        resolver: Finds the identity when the application did not mark it,
            for example `KratosWhoamiResolver` or `TrustedHeaderResolver`.
        exclude_paths: Paths never tracked, compared exactly with the scope's
            ``path``.
        exclude_path_prefixes: Path prefixes never tracked, such as ``"/static/"``.
        state_attribute: A ``request.state`` attribute holding the identity id
            as a string, read after the application ran.
        websocket_interval: Seconds between two recordings for one WebSocket
            on received messages. Sent messages are not user activity.

    Raises:
        ValueError: If *websocket_interval* is negative.
        ConfigurationError: If *resolver* has ``resolve_pending`` but is not a
            complete `DeferredIdentityResolver`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracker: ActivityTracker,
        resolver: IdentityResolver | None = None,
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDED_PATHS,
        exclude_path_prefixes: Iterable[str] = (),
        state_attribute: str | None = None,
        websocket_interval: float = DEFAULT_WEBSOCKET_INTERVAL,
    ) -> None:
        if not websocket_interval >= 0:
            raise ValueError(
                f"websocket_interval must be 0 or more seconds, got {websocket_interval!r}"
            )
        self.app = app
        self._add = tracker._add
        self._clock = tracker._clock
        self._resolver = resolver
        self._excluded_paths = frozenset(exclude_paths)
        self._excluded_prefixes = tuple(exclude_path_prefixes)
        self._state_attribute = state_attribute
        self._websocket_interval = websocket_interval
        candidate: object = resolver
        if isinstance(candidate, DeferredIdentityResolver):
            tracker._attach_resolver(candidate)
        elif hasattr(candidate, "resolve_pending"):
            # Without this check such a resolver would never be flushed, and
            # its credentials would wait forever without a sign in health().
            raise ConfigurationError(
                f"resolver {type(candidate).__name__} has resolve_pending but no "
                "count_pending; add count_pending() returning the number of "
                "credentials waiting for a lookup, as DeferredIdentityResolver requires"
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        path = scope["path"]
        if path in self._excluded_paths or (
            self._excluded_prefixes and path.startswith(self._excluded_prefixes)
        ):
            await self.app(scope, receive, send)
            return

        mark = ActivityMark()
        scope[MARK_SCOPE_KEY] = mark
        if self._state_attribute is not None:
            # Created here so a middleware that copies the scope shares it with the app.
            scope.setdefault("state", {})

        if scope_type == "websocket":
            await self._call_websocket(scope, receive, send, mark)
            return

        try:
            await self.app(scope, receive, send)
        finally:
            # The two common cases inline, because a method call per request
            # costs about as much as the rest of the bookkeeping.
            if mark.identity_id is not None:
                self._add(mark.identity_id, self._clock(), mark.kind)
            elif self._resolver is not None and self._state_attribute is None:
                now = self._clock()
                identification = self._resolver.identify(scope, now)
                if identification is not None:
                    self._add(identification[0], now, identification[1])
            else:
                self._track(scope, mark)

    async def _call_websocket(
        self, scope: Scope, receive: Receive, send: Send, mark: ActivityMark
    ) -> None:
        last_tracked = -math.inf

        async def receive_tracked() -> Message:
            nonlocal last_tracked
            message = await receive()
            now = time.monotonic()
            if now - last_tracked >= self._websocket_interval and self._track(scope, mark):
                last_tracked = now
            return message

        try:
            await self.app(scope, receive_tracked, send)
        finally:
            self._track(scope, mark)

    def _track(self, scope: Scope, mark: ActivityMark) -> bool:
        identity_id = mark.identity_id
        kind = mark.kind
        if identity_id is None and self._state_attribute is not None:
            value = scope["state"].get(self._state_attribute)
            if isinstance(value, str) and value:
                identity_id = value

        if identity_id is not None:
            self._add(identity_id, self._clock(), kind)
            return True
        if self._resolver is None:
            return False

        now = self._clock()
        identification = self._resolver.identify(scope, now)
        if identification is None:
            return False
        self._add(identification[0], now, identification[1])
        return True
