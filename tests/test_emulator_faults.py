"""Fault injection, API keys, Ory Network's inflight limit, the transport and the server."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from stale_tokens.testing import Fault, OryEmulator

LATENCY = 0.02


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emulator() -> OryEmulator:
    return OryEmulator(seed=3)


@pytest.fixture
async def client(emulator: OryEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ory") as client:
        yield client


def add_operation(key: str, value: Any) -> list[dict[str, Any]]:
    return [{"op": "add", "path": f"/metadata_admin/{key}", "value": value}]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"endpoint": "nope", "status": 500}, "unknown endpoint"),
        ({"status": 302}, "not an error status"),
        ({"latency": -1.0}, "negative"),
        ({"status": 500, "probability": 1.5}, "outside 0..1"),
        ({"status": 500, "times": 0}, "at least 1"),
        ({}, "does nothing"),
    ],
)
def test_fault_rejects_invalid_options(options: dict[str, Any], message: str) -> None:
    """Fault validates its options and names the problem."""
    with pytest.raises(ValueError, match=message):
        Fault(**options)


@pytest.mark.anyio
async def test_fault_status_for_a_number_of_times(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """A 503 fault with times=2 fails two PATCHes, and the third is written."""
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.add_fault(Fault("patch_identity", status=503, times=2))

    statuses = [
        (
            await client.patch(f"/admin/identities/{identity_id}", json=add_operation("a", n))
        ).status_code
        for n in range(3)
    ]

    assert statuses == [503, 503, 200]
    assert emulator.requests["patch_identity"] == 3
    assert emulator.writes[identity_id] == 1
    assert emulator.kratos.identity_json(identity_id)["metadata_admin"] == {"a": 2}


@pytest.mark.anyio
async def test_fault_500_body_is_herodot(client: httpx.AsyncClient, emulator: OryEmulator) -> None:
    """An injected 500 on a Kratos endpoint has herodot's shape."""
    emulator.add_fault(Fault("list_identities", status=500))

    response = await client.get("/admin/identities")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == 500
    assert response.headers["content-type"] == "application/json"


@pytest.mark.anyio
async def test_fault_429_sends_rate_limit_headers(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """A 429 carries x-ratelimit headers and no Retry-After unless asked."""
    emulator.add_fault(Fault("list_identities", status=429, times=1, rate_limit_reset=7))
    emulator.add_fault(Fault("list_identities", status=429, times=1, retry_after=2.5))

    plain = await client.get("/admin/identities")
    with_retry_after = await client.get("/admin/identities")

    assert plain.status_code == 429
    assert plain.headers["x-ratelimit-reset"] == "7"
    assert plain.headers["x-ratelimit-remaining"] == "0"
    assert "x-ratelimit-limit" in plain.headers
    assert "retry-after" not in plain.headers
    assert with_retry_after.headers["retry-after"] == "2.5"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "error"),
    [(503, "temporarily_unavailable"), (500, "server_error"), (400, "invalid_request")],
)
async def test_fault_on_hydra_uses_oauth2_shape(
    client: httpx.AsyncClient, emulator: OryEmulator, status: int, error: str
) -> None:
    """An injected error on a Hydra endpoint responds in the OAuth2 shape and revokes nothing."""
    consent = emulator.hydra.grant_consent("alice")
    emulator.add_fault(Fault("revoke_consent_sessions", status=status))

    response = await client.delete(
        "/admin/oauth2/auth/sessions/consent", params={"subject": "alice", "all": "true"}
    )

    assert response.status_code == status
    assert response.json()["error"] == error
    assert emulator.hydra.is_token_active(consent.access_token) is True


@pytest.mark.anyio
async def test_fault_drop_raises_remote_protocol_error(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """A dropped connection surfaces as httpx.RemoteProtocolError and writes nothing."""
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.add_fault(Fault("patch_identity", drop=True, times=1))

    with pytest.raises(httpx.RemoteProtocolError):
        await client.patch(f"/admin/identities/{identity_id}", json=add_operation("a", 1))

    assert emulator.requests["patch_identity"] == 1
    assert emulator.writes[identity_id] == 0


@pytest.mark.anyio
async def test_fault_limited_to_one_identity(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """A fault with identity_id affects only that identity's requests."""
    failing = emulator.kratos.add_identity()["id"]
    healthy = emulator.kratos.add_identity()["id"]
    emulator.add_fault(Fault("get_identity", status=500, identity_id=failing))

    failed = await client.get(f"/admin/identities/{failing}")
    passed = await client.get(f"/admin/identities/{healthy}")

    assert failed.status_code == 500
    assert passed.status_code == 200


async def outcomes_for_seed(seed: int) -> list[int]:
    emulator = OryEmulator(seed=seed)
    emulator.add_fault(Fault("list_identities", status=500, probability=0.5))
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://o") as client:
        return [(await client.get("/admin/identities")).status_code for _ in range(20)]


@pytest.mark.anyio
async def test_fault_probability_repeats_with_seed() -> None:
    """The same seed gives the same sequence of faulted requests."""
    first = await outcomes_for_seed(9)
    second = await outcomes_for_seed(9)

    assert first == second
    assert set(first) == {200, 500}


@pytest.mark.anyio
async def test_clear_faults_and_reset_counters(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """clear_faults removes faults and reset_counters empties both counters."""
    emulator.add_fault(Fault(status=500))
    await client.get("/admin/identities")

    emulator.clear_faults()
    emulator.reset_counters()
    response = await client.get("/admin/identities")

    assert response.status_code == 200
    assert emulator.requests == {"list_identities": 1}
    assert emulator.writes == {}


@pytest.mark.anyio
async def test_concurrent_patches_lose_an_update(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """Two PATCHes that overlap both succeed, but the last writer's row wins whole."""
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.add_fault(Fault("patch_identity", latency=LATENCY))
    statuses: list[int] = []

    async def write(key: str) -> None:
        response = await client.patch(
            f"/admin/identities/{identity_id}", json=add_operation(key, True)
        )
        statuses.append(response.status_code)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(write, "first")
        tasks.start_soon(write, "second")

    metadata = emulator.kratos.identity_json(identity_id)["metadata_admin"]
    assert statuses == [200, 200]
    assert len(metadata) == 1
    assert emulator.writes[identity_id] == 2


@pytest.mark.anyio
async def test_inflight_limit_rejects_concurrent_writes() -> None:
    """With reject_concurrent_writes, an overlapping write to one identity gets a 429."""
    emulator = OryEmulator(reject_concurrent_writes=True)
    same = emulator.kratos.add_identity()["id"]
    other = emulator.kratos.add_identity()["id"]
    emulator.add_fault(Fault("patch_identity", latency=LATENCY))
    statuses: dict[str, int] = {}

    async def write(client: httpx.AsyncClient, name: str, identity_id: str) -> None:
        response = await client.patch(
            f"/admin/identities/{identity_id}", json=add_operation(name, 1)
        )
        statuses[name] = response.status_code

    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://o") as client:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(write, client, "first", same)
            await anyio.wait_all_tasks_blocked()
            tasks.start_soon(write, client, "second", same)
            tasks.start_soon(write, client, "third", other)
        reads = await client.get(f"/admin/identities/{same}")

    assert statuses == {"first": 200, "second": 429, "third": 200}
    assert reads.status_code == 200
    assert emulator.writes[same] == 1


@pytest.mark.anyio
async def test_api_key_required_on_admin_paths() -> None:
    """With api_key, admin requests need the bearer key, while whoami does not."""
    emulator = OryEmulator(api_key="ory_pat_test")
    session = emulator.kratos.create_session(emulator.kratos.add_identity()["id"])

    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://o") as client:
        missing = await client.get("/admin/identities")
        wrong = await client.get(
            "/admin/identities", headers={"Authorization": "Bearer ory_pat_other"}
        )
        right = await client.get(
            "/admin/identities", headers={"Authorization": "Bearer ory_pat_test"}
        )
        hydra = await client.delete("/admin/oauth2/auth/sessions/login?subject=a")
        whoami = await client.get("/sessions/whoami", headers={"X-Session-Token": session.token})

    assert missing.status_code == 401
    assert missing.json()["error"]["message"] == "The request could not be authorized"
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert hydra.status_code == 401
    assert whoami.status_code == 200
    assert emulator.requests["list_identities"] == 3


@pytest.mark.anyio
async def test_unknown_route_is_404(client: httpx.AsyncClient, emulator: OryEmulator) -> None:
    """A path the emulator does not serve is a 404 and counts no endpoint."""
    response = await client.get("/admin/unknown")

    assert response.status_code == 404
    assert sum(emulator.requests.values()) == 0


@pytest.mark.anyio
async def test_serve_answers_over_a_socket(emulator: OryEmulator) -> None:
    """serve() runs uvicorn on loopback and shows the served URL in schema_url."""
    identity_id = emulator.kratos.add_identity()["id"]

    async with emulator.serve() as base_url, httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get(f"/admin/identities/{identity_id}")

    assert base_url.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    assert response.json()["schema_url"].startswith(f"{base_url}/schemas/")
    assert emulator.requests["get_identity"] == 1
    assert emulator.public_url == "http://127.0.0.1:4433"


@pytest.mark.anyio
async def test_serve_drop_closes_the_connection(emulator: OryEmulator) -> None:
    """Over uvicorn a dropped connection ends the response early."""
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.add_fault(Fault("get_identity", drop=True, times=1))

    async with emulator.serve() as base_url, httpx.AsyncClient(base_url=base_url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"/admin/identities/{identity_id}")
        retried = await client.get(f"/admin/identities/{identity_id}")

    assert retried.status_code == 200
    assert emulator.requests["get_identity"] == 2


def test_command_line_serves_until_interrupted() -> None:
    """python -m stale_tokens.testing prints its URL, serves seeded identities, stops on SIGINT."""
    command = [sys.executable, "-m", "stale_tokens.testing", "--port", "0", "--identities", "3"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:  # noqa: S603
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            response = httpx.get(f"{base_url}/admin/identities", timeout=5)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)

    assert base_url.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    assert len(response.json()) == 3
    assert process.returncode == 0
