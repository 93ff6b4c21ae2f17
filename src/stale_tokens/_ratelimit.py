"""Client-side rate limits that mirror the Ory Network project buckets."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Literal

import anyio

from ._errors import ConfigurationError

__all__ = ["DEFAULT_BURST", "EndpointClass", "RateLimiter", "RateLimits"]

DEFAULT_BURST = 5
"""Requests a class may send at once; Ory Network allows at least 5 per second in every bucket."""

OryNetworkPlan = Literal["developer", "production", "growth", "enterprise"]


class EndpointClass(StrEnum):
    """The Ory Network rate-limit bucket an admin request counts against."""

    IDENTITY_WRITES = "identity_writes"
    IDENTITY_LISTINGS = "identity_listings"
    IDENTITY_READS = "identity_reads"
    HYDRA_WRITES = "hydra_writes"


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """Requests per minute the clients may send, per endpoint class.

    ``None`` means unlimited. Each class is a token bucket that stores *burst*
    requests and refills at its per-minute rate, so a long run never exceeds
    the rate and short bursts stay within *burst* requests.

    Attributes:
        identity_writes: ``PATCH``/``PUT``/``DELETE /admin/identities/{id}`` and
            ``DELETE /admin/identities/{id}/sessions``, per minute.
        identity_listings: ``GET /admin/identities`` and
            ``GET /admin/identities/{id}/sessions``, per minute.
        identity_reads: ``GET /admin/identities/{id}``, per minute.
        hydra_writes: ``DELETE /admin/oauth2/auth/sessions/{consent,login}``,
            per minute.
        burst: Requests a class may send back to back before its rate applies.
    """

    identity_writes: float | None = None
    identity_listings: float | None = None
    identity_reads: float | None = None
    hydra_writes: float | None = None
    burst: int = DEFAULT_BURST

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "burst":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigurationError(
                        f"RateLimits.burst must be an integer of at least 1, got {value!r}."
                    )
            elif value is not None and (isinstance(value, bool) or not value > 0):
                raise ConfigurationError(
                    f"RateLimits.{field.name} must be a positive number of requests per "
                    f"minute or None for unlimited, got {value!r}."
                )

    @classmethod
    def ory_network(cls, plan: OryNetworkPlan) -> RateLimits:
        """Return the production-environment limits of an Ory Network plan.

        The numbers are the project rate limits Ory documents for each plan
        (2026); development and staging environments have lower ones.

        Args:
            plan: ``"developer"``, ``"production"``, ``"growth"`` or ``"enterprise"``.

        Raises:
            ConfigurationError: If *plan* is not one of these.
        """
        try:
            writes, listings, reads, hydra = _ORY_NETWORK_PLANS[plan]
        except KeyError:
            raise ConfigurationError(
                f"Unknown Ory Network plan {plan!r}; use one of {', '.join(_ORY_NETWORK_PLANS)}."
            ) from None
        return cls(
            identity_writes=writes,
            identity_listings=listings,
            identity_reads=reads,
            hydra_writes=hydra,
        )

    def per_minute(self, endpoint_class: EndpointClass) -> float | None:
        """Return the limit of *endpoint_class* in requests per minute, ``None`` if unlimited."""
        limit: float | None = getattr(self, endpoint_class.value)
        return limit


# Requests per minute: identity writes, identity listings, identity reads, Hydra writes.
_ORY_NETWORK_PLANS: dict[str, tuple[float, float, float, float]] = {
    "developer": (80, 25, 40, 15),
    "production": (175, 90, 80, 35),
    "growth": (425, 200, 550, 350),
    "enterprise": (850, 400, 1100, 700),
}


class _TokenBucket:
    def __init__(
        self,
        per_minute: float,
        burst: int,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._interval = 60.0 / per_minute
        self._capacity = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        # The lock queues waiters in arrival order, so one slow caller cannot starve.
        async with self._lock:
            now = self._clock()
            self._tokens = min(
                self._capacity, self._tokens + (now - self._updated) / self._interval
            )
            self._updated = now
            if self._tokens < 1:
                await self._sleep((1 - self._tokens) * self._interval)
                self._tokens = 1.0
                self._updated = self._clock()
            self._tokens -= 1


class RateLimiter:
    """Paces requests per endpoint class; one limiter is shared by all tasks of a client."""

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._buckets: dict[EndpointClass, _TokenBucket] = {}
        for endpoint_class in EndpointClass:
            per_minute = limits.per_minute(endpoint_class)
            if per_minute is not None:
                self._buckets[endpoint_class] = _TokenBucket(per_minute, limits.burst, clock, sleep)

    async def acquire(self, endpoint_class: EndpointClass) -> None:
        """Wait until *endpoint_class* may send one more request."""
        bucket = self._buckets.get(endpoint_class)
        if bucket is not None:
            await bucket.acquire()
