"""`OryEmulator`: one ASGI app with Kratos admin, Kratos public and Hydra admin."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.requests import Request
from starlette.routing import Match, Route, Router
from starlette.types import Message, Receive, Scope, Send

from .._timestamps import require_aware
from ._faults import PAUSE_KEY, ConnectionDroppedError, Fault, FaultInjector, FaultOutcome, Pause
from ._hydra_routes import HydraAdminRoutes
from ._hydra_state import EmulatedHydra
from ._kratos_admin import KratosAdminRoutes
from ._kratos_sessions import KratosSessionRoutes
from ._kratos_state import EmulatedKratos, canonical_uuid
from ._responses import kratos_error, oauth2_error
from ._server import serve_emulator
from ._transport import EmulatorTransport
from ._versions import DEFAULT_KRATOS_VERSION, KratosVersion

__all__ = ["DEFAULT_PUBLIC_URL", "OryEmulator"]

# What Kratos's public URL defaults to; only schema_url and the token issuer show it.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:4433"
RATE_LIMIT_HEADER = "10, 10;w=1, 300;w=60"
_HYDRA_ENDPOINTS = frozenset({"revoke_consent_sessions", "revoke_login_sessions", "introspect"})
# Handlers that spend a fault's latency themselves, between reading and writing the row.
_LATENCY_INSIDE = frozenset({"patch_identity", "put_identity"})
# Ory Network rejects a second concurrent request to these with 429 ("inflight" limit).
_INFLIGHT_LIMITED = frozenset(
    {"create_identity", "patch_identity", "put_identity", "delete_identity", "delete_sessions"}
)


class OryEmulator:
    """An in-memory Ory Kratos and Hydra for tests, served as one ASGI app.

    Like Ory Network, one base URL carries the Kratos admin API
    (``/admin/identities...``), the Kratos public ``/sessions/whoami`` and the
    Hydra admin API (``/admin/oauth2/...``).

    Args:
        seed: Seeds every random choice (ids, tokens, fault probabilities),
            so a test run repeats exactly.
        clock: Returns the current time as an aware datetime; drives
            ``created_at``, session expiry and ``state_changed_at``. Defaults
            to the system clock in UTC.
        api_key: When set, every ``/admin`` request must send
            ``Authorization: Bearer <api_key>`` or gets 401, as on Ory Network.
        kratos_version: The Kratos release to imitate where behaviour differs,
            for example ``"v0.13.0"`` for RFC 6902-strict JSON Patch.
        reject_concurrent_writes: Answer 429 to a write on an identity (PATCH,
            PUT, DELETE, or DELETE of its sessions) while another one is in
            flight, as Ory Network's inflight limit does.
        public_url: The Kratos public URL shown in ``schema_url``;
            `serve` replaces it with the served address while running.

    Raises:
        ValueError: If *kratos_version* is not a supported release number.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        api_key: str | None = None,
        kratos_version: str = DEFAULT_KRATOS_VERSION,
        reject_concurrent_writes: bool = False,
        public_url: str = DEFAULT_PUBLIC_URL,
    ) -> None:
        self._clock = clock or _utc_now
        self._api_key = api_key
        self.version = KratosVersion.parse(kratos_version)
        self.public_url = public_url
        self.reject_concurrent_writes = reject_concurrent_writes
        self.requests: Counter[str] = Counter()
        """Endpoint name -> requests received, including failed and faulted ones."""
        self.writes: Counter[str] = Counter()
        """Identity id -> successful writes (create, PATCH, PUT, DELETE, DELETE of sessions)."""

        self.kratos = EmulatedKratos(
            clock=self.now,
            random_source=_seeded_random(seed, "kratos"),
            public_url=lambda: self.public_url,
        )
        self.hydra = EmulatedHydra(
            clock=self.now,
            random_source=_seeded_random(seed, "hydra"),
            issuer=lambda: self.public_url,
        )
        self._faults = FaultInjector(_seeded_random(seed, "faults"))
        self._inflight: set[str] = set()

        routes: list[Route] = [
            *KratosAdminRoutes(self.kratos, version=self.version, writes=self.writes).routes(),
            *KratosSessionRoutes(self.kratos, writes=self.writes).routes(),
            *HydraAdminRoutes(self.hydra).routes(),
        ]
        self._router = Router(routes=routes)
        self.app = _Gateway(self, self._router)
        """The ASGI app; mount it, serve it, or use `transport`."""

    def now(self) -> datetime:
        """Return the emulator's current time.

        Raises:
            ValueError: If the injected clock returned a naive datetime.
        """
        moment = self._clock()
        require_aware(moment, "the emulator clock's value")
        return moment

    def transport(self) -> httpx.AsyncBaseTransport:
        """Return an in-process httpx transport to the app.

        A dropped-connection fault surfaces as `httpx.RemoteProtocolError`,
        as it would over a socket.
        """
        return EmulatorTransport(self.app)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> AbstractAsyncContextManager[str]:
        """Serve the app with uvicorn for the duration of an ``async with`` block.

        ``async with emulator.serve() as base_url:`` binds *host* and *port*
        (0 picks a free port), yields ``http://host:port``, and shuts the
        server down on exit. Needs the ``server`` extra (uvicorn).
        """
        return serve_emulator(self, host=host, port=port)

    def add_fault(self, fault: Fault) -> None:
        """Inject *fault* into matching requests from now on."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    def reset_counters(self) -> None:
        """Empty `requests` and `writes`."""
        self.requests.clear()
        self.writes.clear()

    def _is_authorized(self, scope: Scope) -> bool:
        if self._api_key is None or not scope["path"].startswith("/admin"):
            return True
        expected = f"Bearer {self._api_key}".encode()
        return any(
            name == b"authorization" and value == expected for name, value in scope["headers"]
        )


class _Gateway:
    """Counts requests, checks the API key, injects faults, then routes."""

    def __init__(self, emulator: OryEmulator, router: Router) -> None:
        self._emulator = emulator
        self._router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._router(scope, receive, send)
            return

        endpoint, identity_id = self._match(scope)
        if endpoint is None:
            await self._router(scope, receive, send)
            return

        emulator = self._emulator
        emulator.requests[endpoint] += 1
        if not emulator._is_authorized(scope):
            await kratos_error(Request(scope), 401)(scope, receive, send)
            return

        inflight_key = _inflight_key(endpoint, identity_id)
        if inflight_key is not None and emulator.reject_concurrent_writes:
            if inflight_key in emulator._inflight:
                await _rate_limited(scope, None)(scope, receive, send)
                return
            emulator._inflight.add(inflight_key)
        else:
            inflight_key = None

        try:
            outcome = emulator._faults.decide(endpoint, identity_id)
            await self._respond(scope, receive, send, endpoint, outcome)
        finally:
            if inflight_key is not None:
                emulator._inflight.discard(inflight_key)

    async def _respond(
        self, scope: Scope, receive: Receive, send: Send, endpoint: str, outcome: FaultOutcome
    ) -> None:
        pause = Pause(outcome.latency)
        if outcome.drop or outcome.status is not None or endpoint not in _LATENCY_INSIDE:
            await pause()
        if outcome.drop:
            raise ConnectionDroppedError(f"fault dropped the connection of {endpoint}")
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
                identity_id = canonical_uuid(raw_id) or raw_id if raw_id else None
                return route.name, identity_id
        return None, None


def _inflight_key(endpoint: str, identity_id: str | None) -> str | None:
    """Name Ory Network's inflight slot: one per identity path, one for creation."""
    if endpoint not in _INFLIGHT_LIMITED:
        return None
    if endpoint in ("patch_identity", "put_identity", "delete_identity"):
        return f"/admin/identities/{identity_id}"
    if endpoint == "delete_sessions":
        return f"/admin/identities/{identity_id}/sessions"
    return "/admin/identities"


def _fault_response(scope: Scope, endpoint: str, status: int, fault: Fault | None) -> Any:
    if status == 429:
        return _rate_limited(scope, fault)
    if endpoint in _HYDRA_ENDPOINTS:
        error = "temporarily_unavailable" if status == 503 else "server_error"
        return oauth2_error(status, error=error, description="The emulator injected this error.")
    return kratos_error(Request(scope), status, reason="The emulator injected this error.")


def _rate_limited(scope: Scope, fault: Fault | None) -> Any:
    headers: MutableMapping[str, str] = {
        "x-ratelimit-limit": RATE_LIMIT_HEADER,
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(fault.rate_limit_reset if fault is not None else 1),
    }
    if fault is not None and fault.retry_after is not None:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    return kratos_error(Request(scope), 429, headers=headers)


def _seeded_random(seed: int, stream: str) -> random.Random:
    # One stream per concern, so adding a fault never changes the ids a seed gives.
    return random.Random(f"{seed}:{stream}")  # noqa: S311 - test data, never secrets.


def _utc_now() -> datetime:
    return datetime.now(UTC)
