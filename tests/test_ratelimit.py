"""RateLimits presets and the client-side token buckets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
import stamina

from stale_tokens import ConfigurationError, HydraAdmin, KratosAdmin, RateLimits
from stale_tokens._ratelimit import EndpointClass, RateLimiter

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_limits_ory_network_production() -> None:
    """The production plan preset carries the documented per-minute limits."""
    limits = RateLimits.ory_network("production")

    assert limits.identity_writes == 175
    assert limits.identity_listings == 90
    assert limits.identity_reads == 80
    assert limits.hydra_writes == 35


def test_rate_limits_rejects_unknown_plan() -> None:
    """An unknown plan name raises ConfigurationError listing the known ones."""
    with pytest.raises(ConfigurationError, match="developer, production, growth, enterprise"):
        RateLimits.ory_network("free")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [{"identity_writes": 0}, {"hydra_writes": -5}, {"identity_reads": True}, {"burst": 0}],
)
def test_rate_limits_rejects_invalid_values(options: dict[str, Any]) -> None:
    """Zero, negative or boolean limits raise ConfigurationError naming the field."""
    with pytest.raises(ConfigurationError, match=next(iter(options))):
        RateLimits(**options)


async def test_rate_limiter_paces_after_burst() -> None:
    """After the burst each request waits one interval of the per-minute rate."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(identity_writes=60, burst=2), clock=clock, sleep=clock.sleep)

    for _ in range(4):
        await limiter.acquire(EndpointClass.IDENTITY_WRITES)

    assert clock.sleeps == [1.0, 1.0]


async def test_rate_limiter_refills_while_idle() -> None:
    """Time without requests refills the bucket up to the burst size."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(identity_reads=30, burst=2), clock=clock, sleep=clock.sleep)

    await limiter.acquire(EndpointClass.IDENTITY_READS)
    await limiter.acquire(EndpointClass.IDENTITY_READS)
    clock.now += 600
    await limiter.acquire(EndpointClass.IDENTITY_READS)
    await limiter.acquire(EndpointClass.IDENTITY_READS)
    await limiter.acquire(EndpointClass.IDENTITY_READS)

    assert clock.sleeps == [2.0]


async def test_rate_limiter_leaves_unlimited_classes_alone() -> None:
    """A class without a limit never waits."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(identity_writes=1, burst=1), clock=clock, sleep=clock.sleep)

    for _ in range(20):
        await limiter.acquire(EndpointClass.HYDRA_WRITES)

    assert clock.sleeps == []


class RecordingLimiter(RateLimiter):
    """A limiter that records the endpoint class of each request instead of waiting."""

    def __init__(self) -> None:
        super().__init__(RateLimits())
        self.classes: list[EndpointClass] = []

    async def acquire(self, endpoint_class: EndpointClass) -> None:
        self.classes.append(endpoint_class)


async def test_kratos_admin_rate_limits_each_endpoint_class() -> None:
    """Each Kratos and Hydra request counts against its Ory Network bucket, retries included."""
    identity_id = "00000000-0000-4000-8000-000000000001"
    identity = {"id": identity_id}
    limiter = RecordingLimiter()
    with respx.mock(base_url="http://127.0.0.1:4434", assert_all_called=True) as router:
        router.get("/admin/identities").mock(return_value=httpx.Response(200, json=[identity]))
        router.get(f"/admin/identities/{identity_id}").mock(
            side_effect=[httpx.Response(500), httpx.Response(200, json=identity)]
        )
        router.get(f"/admin/identities/{identity_id}/sessions").mock(
            return_value=httpx.Response(200, json=[])
        )
        router.patch(f"/admin/identities/{identity_id}").mock(
            return_value=httpx.Response(200, json=identity)
        )
        router.delete(f"/admin/identities/{identity_id}/sessions").mock(
            return_value=httpx.Response(204)
        )
        router.delete("/admin/oauth2/auth/sessions/consent").mock(return_value=httpx.Response(204))
        async with (
            KratosAdmin("http://127.0.0.1:4434", rate_limits=RateLimits()) as kratos,
            HydraAdmin("http://127.0.0.1:4434", rate_limits=RateLimits()) as hydra,
        ):
            kratos._rate_limiter = limiter
            hydra._rate_limiter = limiter
            [found async for found in kratos.iter_identities()]
            await kratos.get_identity(identity_id)
            await kratos.list_sessions(identity_id)
            await kratos.set_state(identity_id, "active")
            await kratos.delete_sessions(identity_id)
            await hydra.revoke_consent_sessions(identity_id)

    assert limiter.classes == [
        EndpointClass.IDENTITY_LISTINGS,
        EndpointClass.IDENTITY_READS,
        EndpointClass.IDENTITY_READS,
        EndpointClass.IDENTITY_LISTINGS,
        EndpointClass.IDENTITY_WRITES,
        EndpointClass.IDENTITY_WRITES,
        EndpointClass.HYDRA_WRITES,
    ]
