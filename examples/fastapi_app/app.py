"""The example FastAPI app: Kratos whoami sign-in, activity tracking and a scheduled sweep.

Run it against the bundled emulator::

    python -m stale_tokens.testing --port 4434 &
    uvicorn --app-dir examples --factory fastapi_app.app:create_app

or against a real Kratos and Hydra by setting the variables that
`Settings.from_environ` reads.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from stale_tokens import (
    ActivityMiddleware,
    ActivityTracker,
    CredentialKind,
    HydraAdmin,
    KratosAdmin,
    Policy,
    mark_active,
)

from .scheduling import SweepSchedule
from .settings import Settings

__all__ = ["KratosSessions", "SignedInUser", "create_app"]

logger = logging.getLogger("fastapi_app")

WHOAMI_TIMEOUT = 5.0
# /healthz reports "degraded" after this many flushes in a row with a failed write.
DEGRADED_AFTER_FAILED_FLUSHES = 3


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """The Kratos identity and session behind a request."""

    identity_id: str
    session_id: str


class KratosSessions:
    """Asks Kratos ``/sessions/whoami`` who sent a request.

    The request's ``X-Session-Token`` header or session cookie is passed on
    unchanged; Kratos checks the token first, as this class does.
    """

    def __init__(
        self,
        public_url: str,
        *,
        cookie_name: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._cookie_name = cookie_name
        self._client = httpx.AsyncClient(
            base_url=public_url, transport=transport, timeout=WHOAMI_TIMEOUT
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def identify(self, request: Request) -> SignedInUser | None:
        """Return the signed-in user, or ``None`` when the request has no valid session.

        Raises:
            HTTPException: 503 when Kratos cannot be reached or returns an error status.
        """
        token = request.headers.get("x-session-token")
        cookie = request.cookies.get(self._cookie_name)
        if token:
            headers = {"X-Session-Token": token}
        elif cookie:
            headers = {"Cookie": f"{self._cookie_name}={cookie}"}
        else:
            return None

        try:
            response = await self._client.get("/sessions/whoami", headers=headers)
        except httpx.HTTPError as exc:
            logger.warning("Kratos whoami failed: %s", type(exc).__name__)
            raise HTTPException(503, "Kratos is unavailable; try again shortly") from exc
        if response.status_code in (401, 403):
            return None
        if response.status_code != 200:
            logger.warning("Kratos whoami returned status %d", response.status_code)
            raise HTTPException(503, "Kratos is unavailable; try again shortly")

        try:
            session = response.json()
            return SignedInUser(
                identity_id=str(session["identity"]["id"]), session_id=str(session["id"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("Kratos whoami returned a session without identity.id")
            raise HTTPException(503, "Kratos is unavailable; try again shortly") from exc


@dataclass(frozen=True, slots=True)
class Services:
    """Objects the endpoints share, kept on ``app.state.services``."""

    sessions: KratosSessions
    tracker: ActivityTracker
    schedule: SweepSchedule | None


def services_of(request: Request) -> Services:
    """Return the app's `Services`."""
    services: Services = request.app.state.services
    return services


async def current_user(request: Request) -> SignedInUser:
    """Resolve the signed-in user with Kratos and mark the identity active.

    Raises:
        HTTPException: 401 when the session is missing, expired or revoked,
            so the client sends the user to the login page.
    """
    user = await services_of(request).sessions.identify(request)
    if user is None:
        raise HTTPException(401, "Not signed in, or the session was revoked; sign in again")
    mark_active(request, user.identity_id, kind=CredentialKind.BROWSER_SESSION)
    return user


CurrentUser = Annotated[SignedInUser, Depends(current_user)]


def create_app(
    settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app from *settings*, read from the environment when ``None``.

    Args:
        settings: The configuration.
        transport: An httpx transport for every Kratos and Hydra call, such
            as ``OryEmulator.transport()`` in tests; ``None`` uses the network.
    """
    settings = Settings.from_environ() if settings is None else settings
    policy = Policy() if settings.policy_file is None else Policy.from_toml(settings.policy_file)

    kratos = KratosAdmin(settings.kratos_admin_url, api_key=settings.api_key, transport=transport)
    hydra = (
        None
        if settings.hydra_admin_url is None
        else HydraAdmin(settings.hydra_admin_url, api_key=settings.api_key, transport=transport)
    )
    sessions = KratosSessions(
        settings.kratos_public_url, cookie_name=settings.session_cookie, transport=transport
    )
    tracker = ActivityTracker(
        kratos,
        flush_interval=settings.flush_interval,
        min_write_interval=settings.min_write_interval,
        max_writes_per_minute=settings.max_writes_per_minute,
    )
    schedule = (
        SweepSchedule(
            kratos=kratos,
            hydra=hydra,
            policy=policy,
            interval=settings.sweep_interval,
            dry_run=settings.sweep_dry_run,
        )
        if settings.sweep_interval > 0
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # Entered first, left last: the tracker's final flush on shutdown
            # still needs the Kratos client.
            await stack.enter_async_context(kratos)
            if hydra is not None:
                await stack.enter_async_context(hydra)
            stack.push_async_callback(sessions.aclose)
            await stack.enter_async_context(tracker)

            app.state.services = Services(sessions=sessions, tracker=tracker, schedule=schedule)
            logger.info(
                "Tracking activity in %s every %g s; scheduled sweep %s",
                settings.kratos_admin_url,
                settings.flush_interval,
                f"every {settings.sweep_interval:g} s" if schedule is not None else "off",
            )
            async with anyio.create_task_group() as tasks:
                if schedule is not None:
                    tasks.start_soon(schedule.run_forever)
                yield
                tasks.cancel_scope.cancel()

    app = FastAPI(title="stale-tokens example", lifespan=lifespan)
    app.add_middleware(ActivityMiddleware, tracker=tracker)

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        """Return who is signed in."""
        return {"identity_id": user.identity_id, "session_id": user.session_id}

    @app.get("/projects")
    async def projects(user: CurrentUser) -> list[dict[str, str]]:
        """Return the user's projects; a stand-in for the app's real endpoints."""
        return [
            {"id": f"{user.identity_id[:8]}-{number}", "name": f"Project {number}"}
            for number in (1, 2)
        ]

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        """Return the tracker's health, and the scheduled sweep's last outcome."""
        services = services_of(request)
        health = services.tracker.health()
        is_healthy = (
            health.is_running and health.consecutive_failures < DEGRADED_AFTER_FAILED_FLUSHES
        )
        body: dict[str, Any] = {
            "status": "ok" if is_healthy else "degraded",
            "tracker": health.to_dict(),
            "sweep": None if services.schedule is None else services.schedule.status(),
        }
        return JSONResponse(body, status_code=200 if health.is_running else 503)

    return app
