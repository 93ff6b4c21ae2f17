"""``python -m stale_tokens.testing``: seeding, printed sessions and the API key option."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.types import ASGIApp

import stale_tokens.testing.__main__ as emulator_command


@dataclass
class Harness:
    """The requests each served app receives, and what it returned."""

    requests: list[httpx.Request] = field(default_factory=list)
    responses: list[httpx.Response] = field(default_factory=list)
    servers_started: int = 0


@dataclass
class FakeServer:
    """Stands in for uvicorn: sends the harness's requests to the app, then returns."""

    app: ASGIApp
    harness: Harness

    async def serve(self, sockets: list[socket.socket]) -> None:
        self.harness.servers_started += 1
        self.harness.responses.clear()
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport) as client:
            for request in self.harness.requests:
                self.harness.responses.append(await client.send(request))


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Harness:
    """Replace the uvicorn server with `FakeServer`."""
    shared = Harness()
    monkeypatch.setattr(emulator_command, "build_server", lambda app: FakeServer(app, shared))
    return shared


def test_main_prints_sessions_after_base_url(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """--sessions 2 prints the URL, then identity id and token of the first two identities."""
    harness.requests.append(httpx.Request("GET", "http://127.0.0.1/admin/identities"))

    code = emulator_command.main(
        ["--port", "0", "--identities", "3", "--sessions", "2", "--seed", "7"]
    )

    lines = capsys.readouterr().out.splitlines()
    identities = harness.responses[0].json()
    assert code == 0
    assert lines[0].startswith("http://127.0.0.1:")
    assert len(lines) == 3
    assert [line.split(" ")[0] for line in lines[1:]] == [item["id"] for item in identities[:2]]
    assert all(line.split(" ")[1].startswith("ory_st_") for line in lines[1:])


def test_main_sessions_tokens_pass_whoami(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each printed token is a live session of the printed identity on /sessions/whoami."""
    emulator_command.main(["--port", "0", "--identities", "1", "--sessions", "1", "--seed", "3"])
    identity_id, token = capsys.readouterr().out.splitlines()[1].split(" ")
    harness.requests.append(
        httpx.Request("GET", "http://127.0.0.1/sessions/whoami", headers={"X-Session-Token": token})
    )

    emulator_command.main(["--port", "0", "--identities", "1", "--sessions", "1", "--seed", "3"])

    whoami = harness.responses[0]
    assert capsys.readouterr().out.splitlines()[1] == f"{identity_id} {token}"
    assert whoami.status_code == 200
    assert whoami.json()["identity"]["id"] == identity_id
    assert whoami.request.headers["X-Session-Token"] == token


def test_main_ignores_ory_api_key(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --api-key, /admin needs no key even when ORY_API_KEY is exported."""
    monkeypatch.setenv("ORY_API_KEY", "ory_pat_real-project-key")
    harness.requests.append(httpx.Request("GET", "http://127.0.0.1/admin/identities"))

    code = emulator_command.main(["--port", "0", "--identities", "1"])

    response = harness.responses[0]
    assert code == 0
    assert "Authorization" not in response.request.headers
    assert response.status_code == 200


def test_main_api_key_required_when_given(harness: Harness) -> None:
    """--api-key makes /admin reject a request without the bearer key and accept one with it."""
    url = "http://127.0.0.1/admin/identities"
    harness.requests += [
        httpx.Request("GET", url),
        httpx.Request("GET", url, headers={"Authorization": "Bearer ory_pat_fake"}),
    ]

    emulator_command.main(["--port", "0", "--api-key", "ory_pat_fake"])

    without_key, with_key = harness.responses
    assert without_key.status_code == 401
    assert with_key.status_code == 200
    assert with_key.request.headers["Authorization"] == "Bearer ory_pat_fake"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--identities", "-1"], "--identities must be 0 or more, got -1"),
        (["--identities", "2", "--sessions", "-1"], "--sessions must be 0 or more, got -1"),
        (["--identities", "2", "--sessions", "3"], "--sessions 3 exceeds --identities 2"),
    ],
)
def test_main_rejects_bad_counts(
    harness: Harness, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Negative counts and more sessions than identities exit 2 before serving."""
    with pytest.raises(SystemExit) as exited:
        emulator_command.main(argv)

    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert harness.servers_started == 0
