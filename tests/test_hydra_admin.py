"""HydraAdmin against respx mocks that respond like the Hydra admin API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx
import stamina

from stale_tokens import (
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    HydraAdmin,
    NotFoundError,
    UnknownRouteError,
)

BASE = "http://127.0.0.1:4445"
API_KEY = "ory_pat_hydra-secret"
SUBJECT = "00000000-0000-4000-8000-000000000001"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True) as mock:
        yield mock


async def test_revoke_consent_sessions_sends_all(router: respx.MockRouter) -> None:
    """Consent revocation sends subject with all=true and the bearer key."""
    route = router.delete("/admin/oauth2/auth/sessions/consent").mock(
        return_value=httpx.Response(204)
    )

    async with HydraAdmin(BASE, api_key=API_KEY) as hydra:
        await hydra.revoke_consent_sessions(SUBJECT)

    request = route.calls.last.request
    assert dict(request.url.params) == {"subject": SUBJECT, "all": "true"}
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["User-Agent"].startswith("stale-tokens")
    assert request.content == b""


async def test_revoke_login_sessions_sends_subject(router: respx.MockRouter) -> None:
    """Login session revocation sends the subject alone."""
    route = router.delete("/admin/oauth2/auth/sessions/login").mock(
        return_value=httpx.Response(204)
    )

    async with HydraAdmin(BASE) as hydra:
        await hydra.revoke_login_sessions(SUBJECT)

    request = route.calls.last.request
    assert dict(request.url.params) == {"subject": SUBJECT}
    assert "Authorization" not in request.headers


async def test_revoke_consent_sessions_maps_oauth2_error(router: respx.MockRouter) -> None:
    """Hydra's OAuth2 error body becomes BadRequestError with error and description."""
    description = (
        "The request is missing a required parameter, includes an invalid parameter value, "
        "includes a parameter more than once, or is otherwise malformed. Invalid combination "
        "of query parameters."
    )
    route = router.delete("/admin/oauth2/auth/sessions/consent").mock(
        return_value=httpx.Response(
            400, json={"error": "invalid_request", "error_description": description}
        )
    )

    async with HydraAdmin(BASE) as hydra:
        with pytest.raises(BadRequestError) as caught:
            await hydra.revoke_consent_sessions(SUBJECT)

    assert caught.value.service == "hydra"
    assert caught.value.error_message == "invalid_request"
    assert caught.value.reason == description
    assert route.call_count == 1


async def test_revoke_login_sessions_retries_503(router: respx.MockRouter) -> None:
    """Revocations are idempotent, so a 503 is retried."""
    route = router.delete("/admin/oauth2/auth/sessions/login").mock(
        side_effect=[httpx.Response(503), httpx.Response(204)]
    )

    async with HydraAdmin(BASE) as hydra:
        await hydra.revoke_login_sessions(SUBJECT)

    assert route.call_count == 2


async def test_revoke_consent_sessions_rejects_empty_subject() -> None:
    """An empty subject raises before any request."""
    async with HydraAdmin(BASE) as hydra:
        with pytest.raises(ConfigurationError, match="subject"):
            await hydra.revoke_consent_sessions("")


async def test_hydra_admin_keeps_path_prefix(router: respx.MockRouter) -> None:
    """A base URL with a path prefix keeps it in front of /admin."""
    route = router.delete("/hydra/admin/oauth2/auth/sessions/login").mock(
        return_value=httpx.Response(204)
    )

    async with HydraAdmin(f"{BASE}/hydra/") as hydra:
        await hydra.revoke_login_sessions(SUBJECT)

    assert route.calls.last.request.url.path == "/hydra/admin/oauth2/auth/sessions/login"


async def test_revoke_login_sessions_plain_404(
    router: respx.MockRouter,
) -> None:
    """Go's plain-text 404 under a wrong path prefix raises UnknownRouteError naming base_url."""
    route = router.delete("/hydra/admin/oauth2/auth/sessions/login").mock(
        return_value=httpx.Response(
            404, text="404 page not found\n", headers={"Content-Type": "text/plain; charset=utf-8"}
        )
    )

    async with HydraAdmin(f"{BASE}/hydra") as hydra:
        with pytest.raises(UnknownRouteError) as caught:
            await hydra.revoke_login_sessions(SUBJECT)

    assert not isinstance(caught.value, NotFoundError)
    assert caught.value.service == "hydra"
    assert f"base_url '{BASE}/hydra'" in str(caught.value)
    assert "'http://127.0.0.1:4445'" in str(caught.value)
    assert route.call_count == 1
    assert route.calls.last.request.url.params["subject"] == SUBJECT


async def test_revoke_consent_sessions_json_404(
    router: respx.MockRouter,
) -> None:
    """A 404 with Hydra's OAuth2 error body stays NotFoundError."""
    route = router.delete("/admin/oauth2/auth/sessions/consent").mock(
        return_value=httpx.Response(
            404, json={"error": "not_found", "error_description": "Unable to locate the resource"}
        )
    )

    async with HydraAdmin(BASE) as hydra:
        with pytest.raises(NotFoundError) as caught:
            await hydra.revoke_consent_sessions(SUBJECT)

    assert not isinstance(caught.value, UnknownRouteError)
    assert caught.value.error_message == "not_found"
    assert route.calls.last.request.url.params["all"] == "true"


async def test_hydra_admin_used_after_close(router: respx.MockRouter) -> None:
    """A revocation after aclose raises ClientClosedError and sends nothing."""
    hydra = HydraAdmin(BASE)
    await hydra.aclose()

    with pytest.raises(ClientClosedError, match=r"HydraAdmin.*lifespan"):
        await hydra.revoke_consent_sessions(SUBJECT)

    assert router.calls.call_count == 0
