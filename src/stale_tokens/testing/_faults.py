"""Fault injection: latency, error statuses, rate limits and dropped connections."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field

import anyio

__all__ = [
    "ENDPOINTS",
    "ConnectionDroppedError",
    "Fault",
    "FaultInjector",
    "FaultOutcome",
    "Pause",
]

ENDPOINTS = frozenset(
    {
        "create_identity",
        "delete_identity",
        "delete_sessions",
        "get_identity",
        "introspect",
        "list_identities",
        "list_sessions",
        "patch_identity",
        "put_identity",
        "revoke_consent_sessions",
        "revoke_login_sessions",
        "whoami",
    }
)


class ConnectionDroppedError(Exception):
    """Raised inside the emulator's ASGI app when a fault drops the connection.

    `OryEmulator.transport` turns it into `httpx.RemoteProtocolError`, and the
    uvicorn server closes the socket instead.
    """


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure the emulator injects into matching requests.

    Exactly one outcome is chosen per fault: *drop*, else *status*, else only
    *latency*. Latency applies before the outcome in every case.

    Args:
        endpoint: An endpoint name such as ``"patch_identity"``; ``None``
            matches every endpoint.
        status: A 4xx or 5xx status to return. A 429 carries Ory
            Network's ``x-ratelimit-limit``, ``x-ratelimit-remaining`` and
            ``x-ratelimit-reset`` headers.
        latency: Seconds to wait (with `anyio.sleep`) before responding. On
            ``patch_identity`` and ``put_identity`` the wait falls between
            reading and writing the row, so concurrent writes lose updates the
            way Kratos does.
        drop: Close the connection without a complete response.
        probability: Chance (0 to 1) that a matching request is affected,
            drawn from the emulator's seeded random source.
        times: Affect at most this many requests, then stay inert; ``None``
            means no limit.
        identity_id: Match only requests for this identity's paths.
        retry_after: Seconds to send in ``Retry-After`` with a 429; Ory
            Network does not send it, so ``None`` (the default) leaves it out.
        rate_limit_reset: Seconds to send in ``x-ratelimit-reset`` with a 429.

    Raises:
        ValueError: If an option is out of range or the endpoint is unknown.
    """

    endpoint: str | None = None
    _: KW_ONLY
    status: int | None = None
    latency: float = 0.0
    drop: bool = False
    probability: float = 1.0
    times: int | None = None
    identity_id: str | None = None
    retry_after: float | None = None
    rate_limit_reset: int = 1

    def __post_init__(self) -> None:
        if self.endpoint is not None and self.endpoint not in ENDPOINTS:
            known = ", ".join(sorted(ENDPOINTS))
            raise ValueError(f"unknown endpoint {self.endpoint!r}; use one of: {known}")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an error status; pass 400 to 599")
        if self.latency < 0:
            raise ValueError(f"latency {self.latency} is negative; pass seconds >= 0")
        if not 0 <= self.probability <= 1:
            raise ValueError(f"probability {self.probability} is outside 0..1")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times {self.times} must be at least 1, or None for no limit")
        if self.rate_limit_reset < 0:
            raise ValueError(f"rate_limit_reset {self.rate_limit_reset} is negative")
        if self.status is None and not self.drop and self.latency == 0:
            raise ValueError("the fault does nothing; set status, drop or latency")


@dataclass(frozen=True, slots=True)
class FaultOutcome:
    """The emulator's response plan for one request."""

    latency: float = 0.0
    status: int | None = None
    drop: bool = False
    fault: Fault | None = None


@dataclass(slots=True)
class _ArmedFault:
    fault: Fault
    remaining: int | None = field(default=None)


class FaultInjector:
    """The faults added to an emulator, applied in the order they were added."""

    def __init__(self, random_source: random.Random) -> None:
        self._random = random_source
        self._faults: list[_ArmedFault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(_ArmedFault(fault, fault.times))

    def clear(self) -> None:
        self._faults.clear()

    def decide(self, endpoint: str, identity_id: str | None) -> FaultOutcome:
        """Choose the outcome for one request; the first status or drop wins, latencies add."""
        latency = 0.0
        for armed in self._faults:
            fault = armed.fault
            if fault.endpoint not in (None, endpoint):
                continue
            if fault.identity_id is not None and fault.identity_id != identity_id:
                continue
            if armed.remaining == 0:
                continue
            if fault.probability < 1 and self._random.random() >= fault.probability:
                continue
            if armed.remaining is not None:
                armed.remaining -= 1
            latency += fault.latency
            if fault.drop or fault.status is not None:
                return FaultOutcome(latency, fault.status, fault.drop, fault)
        return FaultOutcome(latency)


class Pause:
    """A latency to spend once, either before routing or inside a write handler."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    async def __call__(self) -> None:
        seconds, self._seconds = self._seconds, 0.0
        if seconds > 0:
            await anyio.sleep(seconds)


PAUSE_KEY = "stale_tokens.emulator.pause"


def pause_of(state: dict[str, object]) -> Callable[[], Awaitable[None]]:
    """Return the request's pending latency, or a no-op when there is none."""
    pause = state.get(PAUSE_KEY)
    return pause if isinstance(pause, Pause) else Pause(0.0)
