"""`OryEmulator`: one ASGI app with Kratos admin, Kratos public and Hydra admin."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import httpx
from starlette.routing import Route, Router

from .._timestamps import require_aware
from ._faults import Fault, FaultInjector
from ._gateway import Gateway
from ._hydra_routes import HydraAdminRoutes
from ._hydra_state import EmulatedHydra
from ._kratos_admin import KratosAdminRoutes
from ._kratos_sessions import KratosSessionRoutes
from ._kratos_state import EmulatedKratos
from ._responses import route_not_found
from ._server import serve_emulator
from ._transport import EmulatorTransport
from ._versions import DEFAULT_KRATOS_VERSION, KratosVersion

__all__ = ["DEFAULT_PUBLIC_URL", "OryEmulator"]

# Kratos's default public URL. Only schema_url and the token issuer show it.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:4433"


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
        reject_concurrent_writes: Return 429 for a PATCH, PUT or DELETE of an
            identity, a DELETE of its sessions, or a create, while another
            request on the same path is in flight, as Ory Network's inflight
            limit does.
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
        version = KratosVersion.parse(kratos_version)
        self._clock = clock or _utc_now
        self.public_url = public_url
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

        routes: list[Route] = [
            *KratosAdminRoutes(self.kratos, version=version, writes=self.writes).routes(),
            *KratosSessionRoutes(self.kratos, writes=self.writes).routes(),
            *HydraAdminRoutes(self.hydra).routes(),
        ]
        self.app = Gateway(
            Router(routes=routes, default=route_not_found),
            requests=self.requests,
            faults=self._faults,
            version=version,
            api_key=api_key,
            reject_concurrent_writes=reject_concurrent_writes,
        )
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


def _seeded_random(seed: int, stream: str) -> random.Random:
    # One stream per concern, so adding a fault never changes the ids a seed gives.
    return random.Random(f"{seed}:{stream}")  # noqa: S311 - test data, never secrets.


def _utc_now() -> datetime:
    return datetime.now(UTC)
