"""The Python snippets of docs/integrations.md run against the emulator, SQLite and aiosmtpd."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from stale_tokens import ActivityTracker, AuditEvent
from stale_tokens.integrations.smtp import EmailTemplate
from stale_tokens.integrations.sql import SqlAuditSink
from stale_tokens.testing import OryEmulator
from test_smtp import MailHandler, free_port

pytestmark = pytest.mark.anyio

PAGE = Path(__file__).parent.parent / "docs" / "integrations.md"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def run_snippet(marker: str) -> dict[str, Any]:
    """Execute the page's one Python snippet that contains *marker* and return its globals."""
    snippets = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    (source,) = [snippet for snippet in snippets if marker in snippet]
    namespace: dict[str, Any] = {"__name__": "docs_snippet"}
    exec(compile(source, str(PAGE), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


@pytest.fixture
def mail() -> Iterator[tuple[MailHandler, int]]:
    handler = MailHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def add_inactive(emulator: OryEmulator, days: int, **traits: str) -> str:
    """Add an identity last active *days* before the real current time, which the snippet uses."""
    last_activity = datetime.now(UTC) - timedelta(days=days)
    created = emulator.kratos.add_identity(
        traits=traits,
        metadata_admin={"last_activity_at": last_activity.isoformat()},
        created_at=last_activity - timedelta(days=30),
    )
    identity_id: str = created["id"]
    return identity_id


async def test_docs_wiring_snippet_sweeps(
    mail: tuple[MailHandler, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring example emails the warning, revokes, and fills the audit table."""
    handler, port = mail
    emulator = OryEmulator()
    warned = add_inactive(emulator, 84, email="person@example.org")
    revoked = add_inactive(emulator, 120, email="other@example.org")
    database = tmp_path / "docs.sqlite"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_TLS", "none")
    main = run_snippet("async def main() -> int:")["main"]

    async with emulator.serve() as base_url:
        monkeypatch.setenv("KRATOS_ADMIN_URL", base_url)
        monkeypatch.setenv("HYDRA_ADMIN_URL", base_url)
        exit_code = await main()

    assert exit_code == 0
    assert [envelope.rcpt_tos for envelope in handler.messages] == [["person@example.org"]]
    assert emulator.requests["delete_sessions"] == 1
    sink = SqlAuditSink(f"sqlite:///{database}")
    async with sink, sink.engine.connect() as connection:
        query = select(sink.table.c.event_type, sink.table.c.identity_id)
        rows = {tuple(row) for row in (await connection.execute(query)).all()}
    assert rows == {("stale_warning_sent", warned), ("tokens_revoked_stale", revoked)}


def test_docs_template_snippet_is_valid() -> None:
    """The custom template example builds an `EmailTemplate`."""
    warning = run_snippet("warning = EmailTemplate(")["warning"]

    assert isinstance(warning, EmailTemplate)
    assert "$next_step_sentence" in warning.text


async def test_docs_monthly_report_snippet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The monthly report example prints one line per month and event type."""
    url = f"sqlite:///{tmp_path / 'report.sqlite'}"
    async with SqlAuditSink(url) as sink:
        await sink.emit(
            AuditEvent(
                type="tokens_revoked_stale",
                identity_id="id-1",
                days_inactive=95,
                policy="default",
                step="revoke",
                outcome="success",
                occurred_at=datetime(2026, 2, 3, tzinfo=UTC),
            )
        )
    print_monthly_report = run_snippet("async def print_monthly_report")["print_monthly_report"]

    await print_monthly_report(url)

    assert capsys.readouterr().out.split() == ["2026-02", "tokens_revoked_stale", "1"]


def test_docs_metrics_snippet_exposes_tracker() -> None:
    """The metrics example renders the tracker's counters in the Prometheus text format."""
    expose_tracker_metrics = run_snippet("def expose_tracker_metrics")["expose_tracker_metrics"]
    tracker = ActivityTracker(OryEmulatorWriter())

    exposition = expose_tracker_metrics(tracker).decode()

    assert "stale_tokens_tracker_writes_total 0.0" in exposition
    assert "stale_tokens_tracker_running 0.0" in exposition


class OryEmulatorWriter:
    """A metadata writer that is never called: the tracker is not started."""

    async def set_metadata_admin(self, identity_id: str, values: Any) -> object:
        raise AssertionError("the tracker must not write in this test")
