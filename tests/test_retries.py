"""Retries, waits and error translation of the admin clients' HTTP layer."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx
import stamina

from stale_tokens import (
    BadRequestError,
    ConflictError,
    InvalidResponseError,
    KratosAdmin,
    OryAPIError,
    OryConnectionError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
)
from stale_tokens._http import retry_after_seconds

BASE = "http://127.0.0.1:4434"
IDENTITY_ID = "00000000-0000-4000-8000-000000000001"
IDENTITY_PATH = f"/admin/identities/{IDENTITY_ID}"
IDENTITY = {"id": IDENTITY_ID, "state": "active", "metadata_admin": None}

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


def retry_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Return the retries the Kratos client logged."""
    return [
        record
        for record in caplog.records
        if record.name == "stale_tokens.kratos" and record.getMessage().startswith("Retrying")
    ]


def retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    """Return the wait, in seconds, that each logged retry reported."""
    return [float(record.args[5]) for record in retry_records(caplog)]  # type: ignore[index, arg-type]


async def test_request_honours_ratelimit_reset(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """A 429 with x-ratelimit-reset is retried after that many seconds."""
    route = router.get(IDENTITY_PATH).mock(
        side_effect=[
            httpx.Response(429, headers={"x-ratelimit-reset": "3", "retry-after": "9"}),
            httpx.Response(200, json=IDENTITY),
        ]
    )

    with caplog.at_level(logging.INFO, logger="stale_tokens.kratos"):
        async with KratosAdmin(BASE) as kratos:
            identity = await kratos.get_identity(IDENTITY_ID)

    assert identity.id == IDENTITY_ID
    assert route.call_count == 2
    assert retry_waits(caplog) == [3.0]
    assert "status 429" in retry_records(caplog)[0].getMessage()
    assert retry_records(caplog)[0].levelno == logging.INFO


async def test_request_caps_retry_after_date(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """A Retry-After date far ahead is honoured only up to max_retry_wait."""
    router.get(IDENTITY_PATH).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"}),
            httpx.Response(200, json=IDENTITY),
        ]
    )

    with caplog.at_level(logging.INFO, logger="stale_tokens.kratos"):
        async with KratosAdmin(BASE, max_retry_wait=12.5) as kratos:
            await kratos.get_identity(IDENTITY_ID)

    assert retry_waits(caplog) == [12.5]


async def test_request_retries_429_for_plain_patch(router: respx.MockRouter) -> None:
    """A 429 is retried even for a non-idempotent patch, as Kratos did not process it."""
    route = router.patch(IDENTITY_PATH).mock(
        side_effect=[
            httpx.Response(429, headers={"x-ratelimit-reset": "1"}),
            httpx.Response(200, json=IDENTITY),
        ]
    )

    async with KratosAdmin(BASE) as kratos:
        await kratos.patch_identity(IDENTITY_ID, [{"op": "remove", "path": "/traits/x"}])

    assert route.call_count == 2


async def test_request_raises_rate_limited_after_attempts(router: respx.MockRouter) -> None:
    """Once the attempts are used up a 429 raises RateLimitedError with the server's hint."""
    route = router.get(IDENTITY_PATH).mock(
        return_value=httpx.Response(429, headers={"x-ratelimit-reset": "42"})
    )

    async with KratosAdmin(BASE, max_attempts=3) as kratos:
        with pytest.raises(RateLimitedError) as caught:
            await kratos.get_identity(IDENTITY_ID)

    assert route.call_count == 3
    assert caught.value.retry_after == 42.0
    assert caught.value.status_code == 429


async def test_request_retries_500_for_get(router: respx.MockRouter) -> None:
    """A GET is retried on 500 and returns the later 200."""
    route = router.get(IDENTITY_PATH).mock(
        side_effect=[httpx.Response(500), httpx.Response(200, json=IDENTITY)]
    )

    async with KratosAdmin(BASE) as kratos:
        identity = await kratos.get_identity(IDENTITY_ID)

    assert identity.id == IDENTITY_ID
    assert route.call_count == 2


async def test_request_raises_server_error_after_attempts(router: respx.MockRouter) -> None:
    """Persistent 503s raise ServerError after max_attempts requests."""
    route = router.get(IDENTITY_PATH).mock(return_value=httpx.Response(503, text="upstream down"))

    async with KratosAdmin(BASE, max_attempts=4) as kratos:
        with pytest.raises(ServerError, match="upstream down") as caught:
            await kratos.get_identity(IDENTITY_ID)

    assert route.call_count == 4
    assert caught.value.status_code == 503
    assert caught.value.body is None


async def test_request_without_retries_sends_once(router: respx.MockRouter) -> None:
    """max_attempts=1 sends a failing GET exactly once."""
    route = router.get(IDENTITY_PATH).mock(return_value=httpx.Response(500))

    async with KratosAdmin(BASE, max_attempts=1) as kratos:
        with pytest.raises(ServerError):
            await kratos.get_identity(IDENTITY_ID)

    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ReadError("connection reset"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
async def test_request_retries_lost_connection_for_get(
    router: respx.MockRouter, failure: httpx.HTTPError
) -> None:
    """Timeouts and dropped connections are retried for a GET."""
    route = router.get(IDENTITY_PATH).mock(
        side_effect=[failure, httpx.Response(200, json=IDENTITY)]
    )

    async with KratosAdmin(BASE) as kratos:
        await kratos.get_identity(IDENTITY_ID)

    assert route.call_count == 2


async def test_request_wraps_timeout_after_attempts(router: respx.MockRouter) -> None:
    """A timeout on every attempt raises OryConnectionError chained to the httpx error."""
    router.get(IDENTITY_PATH).mock(side_effect=httpx.ReadTimeout("read timed out"))

    async with KratosAdmin(BASE, max_attempts=2) as kratos:
        with pytest.raises(OryConnectionError, match="timed out") as caught:
            await kratos.get_identity(IDENTITY_ID)

    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert caught.value.service == "kratos"


async def test_request_does_not_retry_dropped_plain_patch(router: respx.MockRouter) -> None:
    """A plain patch whose connection dropped after sending is not sent again."""
    route = router.patch(IDENTITY_PATH).mock(side_effect=httpx.ReadError("connection reset"))

    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(OryConnectionError) as caught:
            await kratos.patch_identity(IDENTITY_ID, [{"op": "remove", "path": "/traits/x"}])

    assert route.call_count == 1
    assert isinstance(caught.value.__cause__, httpx.ReadError)


async def test_request_retries_refused_connection_for_patch(router: respx.MockRouter) -> None:
    """A connection that was never opened is retried for any request, a plain patch included."""
    route = router.patch(IDENTITY_PATH).mock(
        side_effect=[httpx.ConnectError("connection refused"), httpx.Response(200, json=IDENTITY)]
    )

    async with KratosAdmin(BASE) as kratos:
        await kratos.patch_identity(IDENTITY_ID, [{"op": "remove", "path": "/traits/x"}])

    assert route.call_count == 2


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, UnauthorizedError),
        (403, UnauthorizedError),
        (409, ConflictError),
        (418, OryAPIError),
    ],
)
async def test_request_maps_kratos_error_body(
    router: respx.MockRouter, status: int, error_class: type[OryAPIError]
) -> None:
    """Kratos error bodies become the matching error with message, reason and ids."""
    body = {
        "error": {
            "id": "some_error",
            "code": status,
            "status": "Some Status",
            "request": "38308051-dd5e-9f91-b053-5b32f751b281",
            "reason": "The page token is invalid, do not craft your own page tokens",
            "message": "The request was malformed or contained invalid parameters",
        }
    }
    route = router.get(IDENTITY_PATH).mock(return_value=httpx.Response(status, json=body))

    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(error_class) as caught:
            await kratos.get_identity(IDENTITY_ID)

    error = caught.value
    assert type(error) is error_class
    assert error.status_code == status
    assert error.error_message == "The request was malformed or contained invalid parameters"
    assert error.reason == "The page token is invalid, do not craft your own page tokens"
    assert error.request_id == "38308051-dd5e-9f91-b053-5b32f751b281"
    assert error.error_id == "some_error"
    assert error.body == body
    assert route.call_count == 1


async def test_request_maps_non_json_error_body(router: respx.MockRouter) -> None:
    """A non-JSON error body still yields an error with its text and the request id header."""
    router.get(IDENTITY_PATH).mock(
        return_value=httpx.Response(
            403, text="<html>Forbidden by proxy</html>", headers={"X-Request-Id": "proxy-7"}
        )
    )

    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(UnauthorizedError, match="Forbidden by proxy") as caught:
            await kratos.get_identity(IDENTITY_ID)

    assert caught.value.error_message is None
    assert caught.value.request_id == "proxy-7"


async def test_request_rejects_malformed_identity(router: respx.MockRouter) -> None:
    """A 200 whose body is JSON but not an identity raises InvalidResponseError."""
    router.get(IDENTITY_PATH).mock(return_value=httpx.Response(200, json={"state": "active"}))

    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(InvalidResponseError, match="not an identity"):
            await kratos.get_identity(IDENTITY_ID)


def test_retry_after_seconds_reads_each_format() -> None:
    """x-ratelimit-reset wins, then Retry-After as seconds or as an HTTP date."""
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

    def wait(**headers: str) -> float | None:
        return retry_after_seconds(httpx.Headers(headers), now=now)

    assert wait(**{"x-ratelimit-reset": "7", "retry-after": "60"}) == 7.0
    assert wait(**{"retry-after": "2.5"}) == 2.5
    assert wait(**{"retry-after": "Sun, 01 Mar 2026 12:00:20 GMT"}) == 20.0
    assert wait(**{"retry-after": "Sun, 01 Mar 2026 11:00:00 GMT"}) == 0.0
    assert wait(**{"x-ratelimit-reset": "soon", "retry-after": "4"}) == 4.0
    assert wait(**{"retry-after": "-3"}) is None
    assert wait(**{"retry-after": "whenever"}) is None
    assert wait() is None
