"""Helpers shared by the command-line tests: an emulator served on 127.0.0.1 and a runner."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from anyio.from_thread import start_blocking_portal

from stale_tokens.cli import main
from stale_tokens.testing import OryEmulator


@dataclass(frozen=True)
class Result:
    """The exit status and the output of one `main` call."""

    code: int
    stdout: str
    stderr: str


class _NotATerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


class FakeTerminal(io.StringIO):
    """A captured stderr that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


BASE_URL = "http://127.0.0.1:4434"
"""The URL the in-process tests pass; the emulator's transport serves it without a socket."""


def run_cli(
    *argv: str,
    environ: Mapping[str, str] | None = None,
    stderr: io.StringIO | None = None,
    emulator: OryEmulator | None = None,
) -> Result:
    """Call `main` with *argv* and captured output; stderr is not a terminal.

    With *emulator*, the clients reach it through its in-process transport.
    """
    stdout = io.StringIO()
    captured_stderr = _NotATerminal() if stderr is None else stderr
    code = main(
        list(argv),
        stdout=stdout,
        stderr=captured_stderr,
        environ=dict(environ or {}),
        transport=emulator.transport() if emulator is not None else None,
    )
    return Result(code, stdout.getvalue(), captured_stderr.getvalue())


def run_on(emulator: OryEmulator, *argv: str, environ: Mapping[str, str] | None = None) -> Result:
    """Call `main` with *argv*, its clients reaching *emulator* through the in-process transport."""
    return run_cli(*argv, environ=environ, emulator=emulator)


@contextmanager
def served_emulator(**options: Any) -> Iterator[tuple[OryEmulator, str]]:
    """Serve a new emulator on 127.0.0.1 from a background thread; yield it and its URL."""
    emulator = OryEmulator(**options)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(emulator.serve(host="127.0.0.1", port=0)) as base_url,
    ):
        yield emulator, base_url


def add_inactive_identity(
    emulator: OryEmulator, *, days_inactive: float, role: str | None = None, sessions: int = 1
) -> str:
    """Add an identity last active *days_inactive* days ago, with *sessions* sessions."""
    now = datetime.now(UTC)
    traits: dict[str, Any] = {"email": "someone@example.org"}
    if role is not None:
        traits["role"] = role
    created = emulator.kratos.add_identity(
        traits=traits,
        metadata_admin={"last_activity_at": (now - timedelta(days=days_inactive)).isoformat()},
        created_at=now - timedelta(days=1000),
    )
    identity_id: str = created["id"]
    for _ in range(sessions):
        emulator.kratos.create_session(
            identity_id,
            authenticated_at=now - timedelta(days=days_inactive),
            expires_at=now + timedelta(days=30),
        )
    return identity_id
