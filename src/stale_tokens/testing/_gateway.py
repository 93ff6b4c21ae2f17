"""The outer ASGI layer: counts requests, checks the API key, injects faults, then routes."""

from __future__ import annotations

from collections import Counter
from collections.abc import MutableMapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route, Router
from starlette.types import Message, Receive, Scope, Send

from ._faults import PAUSE_KEY, ConnectionDroppedError, Fault, FaultInjector, FaultOutcome, Pause
from ._kratos_state import canonical_uuid
from ._responses import kratos_error, oauth2_error
from ._versions import KratosVersion

__all__ = ["RATE_LIMIT_HEADER", "Gateway"]

# The shape Ory Network sends: the limit, then each window's quota.
RATE_LIMIT_HEADER = "10, 10;w=1, 300;w=60"
_HYDRA_ENDPOINTS = frozenset({"revoke_consent_sessions", "revoke_login_sessions", "introspect"})
# Handlers that spend a fault's latency themselves, between reading and writing the row.
_LATENCY_INSIDE = frozenset({"patch_identity", "put_identity"})
_IDENTITY_WRITES = frozenset({"patch_identity", "put_identity", "delete_identity"})
_INJECTED = "The emulator injected this error."


class Gateway:
    """Wrap the router with what every endpoint shares.

    Args:
        router: The Kratos and Hydra routes; each route's name is its endpoint name.
        requests: Incremented per endpoint for every request that matches a route.
        faults: The injected faults.
        version: Decides how un-prefixed admin paths (``/identities``) are handled.
        api_key: When set, ``/admin`` paths require ``Authorization: Bearer <api_key>``.
        reject_concurrent_writes: Return 429 for a write that overlaps another
            write to the same identity, like Ory Network's inflight limit.
    """

    def __init__(
        self,
        router: Router,
        *,
        requests: Counter[str],
        faults: FaultInjector,
        version: KratosVersion,
        api_key: str | None,
        reject_concurrent_writes: bool,
    ) -> None:
        self._router = router
        self._requests = requests
        self._faults = faults
        self._version = version
        self._authorization = None if api_key is None else f"Bearer {api_key}".encode()
        self._reject_concurrent_writes = reject_concurrent_writes
        self._inflight: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._router(scope, receive, send)
            return

        if scope["path"].startswith("/identities"):
            if not self._version.rewrites_unprefixed_paths:
                await _redirect_to_admin(scope)(scope, receive, send)
                return
            # Kratos v26.2 prefixes admin paths itself instead of redirecting.
            scope = {**scope, "path": f"/admin{scope['path']}", "raw_path": None}

        endpoint, identity_id = self._match(scope)
        if endpoint is None:
            await self._router(scope, receive, send)
            return

        self._requests[endpoint] += 1
        if not self._is_authorized(scope):
            await kratos_error(Request(scope), 401)(scope, receive, send)
            return

        inflight_key = _inflight_key(endpoint, identity_id)
        if inflight_key is None or not self._reject_concurrent_writes:
            outcome = self._faults.decide(endpoint, identity_id)
            await self._respond(scope, receive, send, endpoint, outcome)
            return
        if inflight_key in self._inflight:
            await _rate_limited(scope, None)(scope, receive, send)
            return
        self._inflight.add(inflight_key)
        try:
            outcome = self._faults.decide(endpoint, identity_id)
            await self._respond(scope, receive, send, endpoint, outcome)
        finally:
            self._inflight.discard(inflight_key)

    async def _respond(
        self, scope: Scope, receive: Receive, send: Send, endpoint: str, outcome: FaultOutcome
    ) -> None:
        pause = Pause(outcome.latency)
        if outcome.drop or outcome.status is not None or endpoint not in _LATENCY_INSIDE:
            await pause()
        if outcome.drop:
            raise ConnectionDroppedError(f"a fault dropped the connection of {endpoint}")
        if outcome.status is not None:
            response = _fault_response(scope, endpoint, outcome.status, outcome.fault)
            await response(scope, receive, send)
            return

        scope.setdefault("state", {})[PAUSE_KEY] = pause

        async def send_after_pause(message: Message) -> None:
            # A handler that fails before reading the row still pays the latency.
            if message["type"] == "http.response.start":
                await pause()
            await send(message)

        await self._router(scope, receive, send_after_pause)

    def _match(self, scope: Scope) -> tuple[str | None, str | None]:
        for route in self._router.routes:
            match, child = route.matches(scope)
            if match is Match.FULL and isinstance(route, Route):
                raw_id = child.get("path_params", {}).get("id")
                identity_id = (canonical_uuid(raw_id) or raw_id) if raw_id else None
                return route.name, identity_id
        return None, None

    def _is_authorized(self, scope: Scope) -> bool:
        if self._authorization is None or not scope["path"].startswith("/admin"):
            return True
        return any(
            name == b"authorization" and value == self._authorization
            for name, value in scope["headers"]
        )


def _inflight_key(endpoint: str, identity_id: str | None) -> str | None:
    """Name Ory Network's inflight slot: one per identity path, one for creation."""
    if endpoint in _IDENTITY_WRITES:
        return f"/admin/identities/{identity_id}"
    if endpoint == "delete_sessions":
        return f"/admin/identities/{identity_id}/sessions"
    if endpoint == "create_identity":
        return "/admin/identities"
    return None


def _redirect_to_admin(scope: Scope) -> Response:
    # Kratos v1.0 to v25.4 redirect un-prefixed admin paths.
    query = scope.get("query_string", b"").decode("latin-1")
    location = f"/admin{scope['path']}" + (f"?{query}" if query else "")
    return Response(status_code=307, headers={"Location": location})


def _fault_response(scope: Scope, endpoint: str, status: int, fault: Fault | None) -> Response:
    if status == 429:
        return _rate_limited(scope, fault)
    if endpoint in _HYDRA_ENDPOINTS:
        return oauth2_error(status, error=_oauth2_error_code(status), description=_INJECTED)
    return kratos_error(Request(scope), status, reason=_INJECTED)


def _oauth2_error_code(status: int) -> str:
    if status == 503:
        return "temporarily_unavailable"
    if status == 401:
        return "invalid_client"
    if status == 403:
        return "access_denied"
    return "invalid_request" if status < 500 else "server_error"


def _rate_limited(scope: Scope, fault: Fault | None) -> Response:
    headers: MutableMapping[str, str] = {
        "x-ratelimit-limit": RATE_LIMIT_HEADER,
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(fault.rate_limit_reset if fault is not None else 1),
    }
    if fault is not None and fault.retry_after is not None:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    return kratos_error(Request(scope), 429, headers=headers)
