"""The example FastAPI app against the in-process Ory emulator, lifespan driven for real."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from fastapi_app.app import create_app
from fastapi_app.scheduling import SweepSchedule
from fastapi_app.settings import EMULATOR_URL, Settings
from stale_tokens import ConfigurationError, HydraAdmin, KratosAdmin, Policy
from stale_tokens.testing import SESSION_COOKIE, Fault, OryEmulator

API_KEY = "example-admin-key"
SETTINGS = Settings(api_key=API_KEY, sweep_interval=0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emulator() -> OryEmulator:
    return OryEmulator(api_key=API_KEY)


@asynccontextmanager
async def running_app(
    emulator: OryEmulator, settings: Settings = SETTINGS
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """Run the app's lifespan and yield the app with a client that calls it in-process."""
    app = create_app(settings, transport=emulator.transport())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://app.test"
        ) as client,
    ):
        yield app, client


def add_user(emulator: OryEmulator, **metadata_admin: Any) -> str:
    identity = emulator.kratos.add_identity(
        traits={"email": "ada@example.org", "role": "user"},
        metadata_admin=metadata_admin or None,
        created_at=datetime.now(UTC) - timedelta(days=400),
    )
    identity_id: str = identity["id"]
    return identity_id


@pytest.mark.anyio
async def test_me_resolves_session_cookie(emulator: OryEmulator) -> None:
    """A Kratos session cookie is resolved with one whoami call."""
    identity_id = add_user(emulator)
    session = emulator.kratos.create_session(identity_id)

    async with running_app(emulator) as (_, client):
        response = await client.get("/me", headers={"Cookie": f"{SESSION_COOKIE}={session.cookie}"})

    assert response.status_code == 200
    assert response.json() == {"identity_id": identity_id, "session_id": session.id}
    assert emulator.requests["whoami"] == 1


@pytest.mark.anyio
async def test_me_resolves_session_token(emulator: OryEmulator) -> None:
    """An X-Session-Token header is resolved like a cookie."""
    identity_id = add_user(emulator)
    session = emulator.kratos.create_session(identity_id)

    async with running_app(emulator) as (_, client):
        response = await client.get("/projects", headers={"X-Session-Token": session.token})

    assert response.status_code == 200
    assert [project["name"] for project in response.json()] == ["Project 1", "Project 2"]
    assert emulator.requests["whoami"] == 1


@pytest.mark.anyio
async def test_me_rejects_revoked_session_without_tracking(emulator: OryEmulator) -> None:
    """A revoked session gets 401 and records no activity."""
    identity_id = add_user(emulator)
    session = emulator.kratos.create_session(identity_id)
    emulator.kratos.delete_sessions(identity_id)

    async with running_app(emulator) as (app, client):
        response = await client.get("/me", headers={"Cookie": f"{SESSION_COOKIE}={session.cookie}"})
        pending = app.state.services.tracker.health().pending

    assert response.status_code == 401
    assert pending == 0
    assert emulator.writes[identity_id] == 0


@pytest.mark.anyio
async def test_me_returns_503_on_kratos_error(emulator: OryEmulator) -> None:
    """A 5xx from whoami becomes 503 for the client, and no activity is recorded."""
    identity_id = add_user(emulator)
    session = emulator.kratos.create_session(identity_id)
    emulator.add_fault(Fault("whoami", status=500))

    async with running_app(emulator) as (app, client):
        response = await client.get("/me", headers={"X-Session-Token": session.token})
        pending = app.state.services.tracker.health().pending

    assert response.status_code == 503
    assert emulator.requests["whoami"] == 1
    assert pending == 0


@pytest.mark.anyio
async def test_me_without_credentials_skips_kratos(emulator: OryEmulator) -> None:
    """A request without a cookie or token gets 401 without asking Kratos."""
    async with running_app(emulator) as (_, client):
        response = await client.get("/me")

    assert response.status_code == 401
    assert emulator.requests["whoami"] == 0


@pytest.mark.anyio
async def test_activity_written_after_flush(emulator: OryEmulator) -> None:
    """A flush writes last_activity_at and the browser-session time, keeping other keys."""
    identity_id = add_user(emulator, account_type="regular")
    session = emulator.kratos.create_session(identity_id)
    before = datetime.now(UTC)

    async with running_app(emulator) as (app, client):
        await client.get("/me", headers={"Cookie": f"{SESSION_COOKIE}={session.cookie}"})
        await app.state.services.tracker.flush()
        health = app.state.services.tracker.health()

    stored = emulator.kratos.identity_json(identity_id)["metadata_admin"]
    recorded = datetime.fromisoformat(stored["last_activity_at"])
    assert health.written == 1
    assert emulator.writes[identity_id] == 1
    assert stored["account_type"] == "regular"
    assert before - timedelta(seconds=1) <= recorded <= datetime.now(UTC)
    assert stored["last_activity_by_kind"] == {"browser_session": stored["last_activity_at"]}


@pytest.mark.anyio
async def test_lifespan_shutdown_flushes_activity(emulator: OryEmulator) -> None:
    """Leaving the lifespan writes the activity still buffered."""
    identity_id = add_user(emulator)
    session = emulator.kratos.create_session(identity_id)

    async with running_app(emulator) as (_, client):
        await client.get("/me", headers={"X-Session-Token": session.token})
        assert emulator.writes[identity_id] == 0

    stored = emulator.kratos.identity_json(identity_id)["metadata_admin"]
    assert emulator.writes[identity_id] == 1
    assert "last_activity_at" in stored


@pytest.mark.anyio
async def test_healthz_reports_tracker_and_sweep(emulator: OryEmulator) -> None:
    """/healthz returns the tracker's counters and the sweep schedule, and is not tracked."""
    settings = replace(SETTINGS, sweep_interval=3600.0)

    async with running_app(emulator, settings) as (app, client):
        response = await client.get("/healthz")
        pending = app.state.services.tracker.health().pending

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert set(body["tracker"]) == {
        "is_running",
        "last_successful_flush_at",
        "consecutive_failures",
        "pending",
        "written",
        "failed",
        "dropped",
        "rejected",
        "not_found",
        "pending_credentials",
        "failed_lookups",
    }
    assert body["tracker"]["is_running"] is True
    assert body["sweep"] == {
        "interval_seconds": 3600.0,
        "dry_run": False,
        "last_finished_at": None,
        "last_error": None,
        "last_done": None,
        "last_failures": None,
    }
    assert pending == 0


@pytest.mark.anyio
async def test_healthz_without_schedule_has_null_sweep(emulator: OryEmulator) -> None:
    """With the sweep interval at 0 the app schedules no sweep."""
    async with running_app(emulator) as (app, client):
        response = await client.get("/healthz")
        schedule = app.state.services.schedule

    assert response.json()["sweep"] is None
    assert schedule is None


@pytest.mark.anyio
async def test_schedule_run_once_revokes_stale_sessions(emulator: OryEmulator) -> None:
    """One scheduled run revokes a stale user's session and keeps the report."""
    now = datetime.now(UTC)
    stale_at = now - timedelta(days=120)
    identity_id = add_user(emulator, last_activity_at=stale_at.isoformat())
    session = emulator.kratos.create_session(
        identity_id, authenticated_at=stale_at, expires_at=now + timedelta(days=30)
    )
    transport = emulator.transport()

    async with (
        KratosAdmin(EMULATOR_URL, api_key=API_KEY, transport=transport) as kratos,
        HydraAdmin(EMULATOR_URL, api_key=API_KEY, transport=transport) as hydra,
    ):
        schedule = SweepSchedule(kratos=kratos, hydra=hydra, policy=Policy(), interval=60.0)
        report = await schedule.run_once()

    assert report is not None
    assert report.done == {"revoke": 1}
    assert session.id not in emulator.kratos.session_ids(identity_id)
    assert emulator.requests["delete_sessions"] == 1
    assert emulator.requests["revoke_consent_sessions"] == 1
    assert schedule.status()["last_done"] == {"revoke": 1}
    assert schedule.status()["last_error"] is None


def test_settings_read_environment(tmp_path: Path) -> None:
    """Every variable reaches its setting, and HYDRA_ADMIN_URL=none turns Hydra off."""
    policy_file = tmp_path / "policy.toml"
    settings = Settings.from_environ(
        {
            "KRATOS_PUBLIC_URL": "http://127.0.0.1:4433",
            "KRATOS_ADMIN_URL": "http://127.0.0.1:4434",
            "HYDRA_ADMIN_URL": "none",
            "ORY_API_KEY": "ory_pat_example",
            "STALE_TOKENS_POLICY_FILE": str(policy_file),
            "KRATOS_SESSION_COOKIE": "ory_session_example",
            "STALE_TOKENS_FLUSH_INTERVAL": "1.5",
            "STALE_TOKENS_MIN_WRITE_INTERVAL": "0",
            "STALE_TOKENS_MAX_WRITES_PER_MINUTE": "500",
            "STALE_TOKENS_SWEEP_INTERVAL": "0",
            "STALE_TOKENS_SWEEP_DRY_RUN": "true",
        }
    )

    assert settings == Settings(
        kratos_public_url="http://127.0.0.1:4433",
        kratos_admin_url="http://127.0.0.1:4434",
        hydra_admin_url=None,
        api_key="ory_pat_example",
        policy_file=policy_file,
        session_cookie="ory_session_example",
        flush_interval=1.5,
        min_write_interval=0.0,
        max_writes_per_minute=500,
        sweep_interval=0.0,
        sweep_dry_run=True,
    )


def test_settings_default_to_emulator() -> None:
    """An empty environment points every URL at the emulator's default address."""
    assert Settings.from_environ({}) == Settings()
    assert Settings().kratos_admin_url == EMULATOR_URL


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STALE_TOKENS_FLUSH_INTERVAL", "soon"),
        ("STALE_TOKENS_MAX_WRITES_PER_MINUTE", "12.5"),
        ("STALE_TOKENS_SWEEP_INTERVAL", "-1"),
        ("STALE_TOKENS_SWEEP_DRY_RUN", "maybe"),
    ],
)
def test_settings_reject_invalid_value(name: str, value: str) -> None:
    """An unparseable or out-of-range value raises ConfigurationError naming the variable."""
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_environ({name: value})


DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "run_demo.py"
DEMO_TIMEOUT = 120.0


@pytest.fixture
def demo() -> Iterator[subprocess.Popen[str]]:
    """Start the demo on its smallest population; kill it if a test left it running."""
    process = subprocess.Popen(  # noqa: S603 - this repository's own script.
        [sys.executable, str(DEMO), "--identities", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    with process:
        yield process
        if process.poll() is None:
            process.kill()


def app_pid(line: str) -> int | None:
    match = re.search(r"Example app \(uvicorn, pid (\d+)\)", line)
    return None if match is None else int(match.group(1))


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_runs_end_to_end(demo: subprocess.Popen[str]) -> None:
    """The demo sweeps a small population, proves the revocations and stops the app."""
    output, _ = demo.communicate(timeout=DEMO_TIMEOUT)
    pids = [pid for line in output.splitlines() if (pid := app_pid(line)) is not None]

    assert demo.returncode == 0, output
    assert len(pids) == 1
    assert not is_running(pids[0])
    assert "During the dry run: 0 Kratos writes, 0 emails, 0 audit rows." in output
    assert re.search(r"Emails accepted by the SMTP server on 127\.0\.0\.1:\d+: [1-9]", output)
    assert re.search(r"\| \d{4}-\d{2}  tokens_revoked_stale +[1-9]", output)
    assert re.search(r"sessions of revoked users: before 200 for (\d+), after 401 for \1\.", output)
    assert re.search(r"token pairs: inactive for \d+\.", output)
    assert "A second sweep right after: due nothing, done nothing" in output
    assert "Failed: 0." in output
    assert "Audit events not stored: 0." in output


def test_demo_sigint_stops_every_process(demo: subprocess.Popen[str]) -> None:
    """SIGINT while the app runs ends the demo with status 130 and no child left."""
    assert demo.stdout is not None
    pid = None
    for line in demo.stdout:
        pid = app_pid(line)
        if pid is not None:
            break

    demo.send_signal(signal.SIGINT)
    output, _ = demo.communicate(timeout=DEMO_TIMEOUT)

    assert pid is not None
    assert demo.returncode == 130, output
    assert "Interrupted" in output
    assert "Traceback" not in output
    assert "Warning" not in output
    assert not is_running(pid)
