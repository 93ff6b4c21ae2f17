"""`stale-tokens report` and the SQL audit table written by `sweep` and `reactivate`."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from cli_helpers import BASE_URL, add_inactive_identity, run_cli, run_on
from stale_tokens import AuditEvent
from stale_tokens.integrations.sql import SqlAuditSink
from stale_tokens.testing import OryEmulator


def _database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'audit.sqlite'}"


def _store(url: str, events: list[AuditEvent]) -> None:
    async def store() -> None:
        async with SqlAuditSink(url) as sink:
            for event in events:
                await sink.emit(event)

    anyio.run(store)


def _create_table(url: str) -> None:
    async def create() -> None:
        async with SqlAuditSink(url) as sink:
            await sink.create_table()

    anyio.run(create)


def _event(event_type: str, occurred_at: datetime) -> AuditEvent:
    return AuditEvent(
        type=event_type,
        identity_id="9f425a8d-7efc-4768-8f23-7647a74fdf13",
        days_inactive=100,
        policy="default",
        step="revoke",
        outcome="success",
        occurred_at=occurred_at,
    )


def _this_month_and_last() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    this_month = now.replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    return this_month, last_month


def test_report_counts_per_month_as_json(tmp_path: Path) -> None:
    """The JSON report has one row per month and event type, oldest month first."""
    url = _database_url(tmp_path)
    this_month, last_month = _this_month_and_last()
    _store(
        url,
        [
            _event("tokens_revoked_stale", last_month),
            _event("tokens_revoked_stale", this_month),
            _event("tokens_revoked_stale", this_month),
            _event("stale_warning_sent", this_month),
        ],
    )

    result = run_cli("report", "--format", "json", environ={"STALE_TOKENS_AUDIT_DATABASE_URL": url})

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"month": f"{last_month:%Y-%m}", "event_type": "tokens_revoked_stale", "count": 1},
        {"month": f"{this_month:%Y-%m}", "event_type": "stale_warning_sent", "count": 1},
        {"month": f"{this_month:%Y-%m}", "event_type": "tokens_revoked_stale", "count": 2},
    ]


def test_report_table_pivots_event_types(tmp_path: Path) -> None:
    """The table has a column per event type and zero where a month had none."""
    url = _database_url(tmp_path)
    this_month, last_month = _this_month_and_last()
    _store(
        url,
        [
            _event("tokens_revoked_stale", last_month),
            _event("stale_warning_sent", this_month),
        ],
    )

    result = run_cli("report", "--audit-database-url", url)

    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["MONTH", "stale_warning_sent", "tokens_revoked_stale"]
    assert lines[1].split() == [f"{last_month:%Y-%m}", "0", "1"]
    assert lines[2].split() == [f"{this_month:%Y-%m}", "1", "0"]


def test_report_months_limits_range(tmp_path: Path) -> None:
    """--months 1 counts only the current month, as CSV."""
    url = _database_url(tmp_path)
    this_month, last_month = _this_month_and_last()
    _store(url, [_event("tokens_revoked_stale", last_month), _event("x_event", this_month)])

    result = run_cli("report", "--audit-database-url", url, "--months", "1", "--format", "csv")

    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows == [{"month": f"{this_month:%Y-%m}", "event_type": "x_event", "count": "1"}]


def test_report_empty_table_says_so(tmp_path: Path) -> None:
    """A database without events prints one line instead of an empty table."""
    url = _database_url(tmp_path)
    _create_table(url)

    result = run_cli("report", "--audit-database-url", url)

    assert result.code == 0, result.stderr
    assert result.stdout.startswith("no audit events since ")


def test_report_missing_database_file_exits_1(tmp_path: Path) -> None:
    """A missing SQLite file ends with one line naming the URL, and the file is not created."""
    path = tmp_path / "missing.db"

    result = run_cli("report", "--audit-database-url", f"sqlite:///{path}")

    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"stale-tokens: error: the audit database sqlite:///{path} does not exist; report "
        "only reads it, so check --audit-database-url or run a sweep or reactivate with "
        "this URL first\n"
    )
    assert not path.exists()


def test_report_missing_table_exits_1(tmp_path: Path) -> None:
    """A database without the audit table ends with one line, and the table is not created."""
    url = _database_url(tmp_path)
    _create_table(url)

    result = run_cli("report", "--audit-database-url", url, "--audit-table", "other_audit")

    assert result.code == 1
    assert result.stderr == (
        f"stale-tokens: error: the audit table 'other_audit' does not exist in {url}; report "
        "only reads it, so run a sweep or reactivate with this database URL first, or check "
        "--audit-table\n"
    )
    assert not _has_table(url, "other_audit")


def _has_table(url: str, name: str) -> bool:
    async def look_up() -> bool:
        async with SqlAuditSink(url, table_name=name) as sink:
            return await sink.table_exists()

    return anyio.run(look_up)


def test_report_needs_database_url() -> None:
    """Without a database URL the report names the option and the variable."""
    result = run_cli("report")

    assert result.code == 2
    assert "pass --audit-database-url or set STALE_TOKENS_AUDIT_DATABASE_URL" in result.stderr


def test_report_months_below_one_exits_2(tmp_path: Path) -> None:
    """--months 0 is a usage error."""
    result = run_cli("report", "--audit-database-url", _database_url(tmp_path), "--months", "0")

    assert result.code == 2
    assert "--months must be at least 1, got 0" in result.stderr


def test_report_bad_url_hides_password() -> None:
    """An unusable database URL ends with one line that does not show the password."""
    result = run_cli("report", "--audit-database-url", "nosuchdb://admin:s3cret-pw@127.0.0.1/x")

    assert result.code == 2
    assert "s3cret-pw" not in result.stderr
    assert result.stderr.startswith("stale-tokens: error: ")
    assert result.stderr.count("\n") == 1


def test_sweep_writes_sql_audit_table(tmp_path: Path) -> None:
    """A sweep with a database URL stores its events, and report counts them."""
    url = _database_url(tmp_path)
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)
    environ = {"STALE_TOKENS_AUDIT_DATABASE_URL": url}

    swept = run_on(emulator, "sweep", "--kratos-url", BASE_URL, environ=environ)
    reported = run_cli("report", "--format", "json", environ=environ)

    assert swept.code == 0, swept.stderr
    assert emulator.requests["delete_sessions"] == 1
    assert reported.code == 0, reported.stderr
    rows = json.loads(reported.stdout)
    assert [(row["event_type"], row["count"]) for row in rows] == [("tokens_revoked_stale", 1)]


def test_reactivate_writes_sql_audit_table(tmp_path: Path) -> None:
    """reactivate with --audit-database-url stores an identity_reactivated event."""
    url = _database_url(tmp_path)
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity(state="inactive")["id"]

    result = run_on(
        emulator, "reactivate", identity_id, "--kratos-url", BASE_URL, "--audit-database-url", url
    )
    reported = run_cli("report", "--audit-database-url", url, "--format", "json")

    assert result.code == 0, result.stderr
    assert [row["event_type"] for row in json.loads(reported.stdout)] == ["identity_reactivated"]


def test_sweep_rejects_two_audit_destinations(tmp_path: Path) -> None:
    """--audit-sink together with a database URL is a usage error."""
    emulator = OryEmulator()

    result = run_on(
        emulator,
        "sweep",
        "--kratos-url",
        BASE_URL,
        "--audit-sink",
        "json:JSONDecoder",
        "--audit-database-url",
        _database_url(tmp_path),
    )

    assert result.code == 2
    assert "--audit-sink and an audit database URL were both given" in result.stderr
    assert emulator.requests["list_identities"] == 0


@pytest.mark.parametrize("months", ["1", "12", "30"])
def test_report_since_is_first_of_month(tmp_path: Path, months: str) -> None:
    """The empty-table line names the first day of the earliest month counted."""
    url = _database_url(tmp_path)
    _create_table(url)

    result = run_cli("report", "--audit-database-url", url, "--months", months)

    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 - (int(months) - 1)
    expected = f"{index // 12:04d}-{index % 12 + 1:02d}-01"
    assert result.stdout == f"no audit events since {expected}\n"


def test_report_corrupt_database_exits_1(tmp_path: Path) -> None:
    """A file that is not a database ends with status 1 and one line naming the error."""
    path = tmp_path / "audit.sqlite"
    path.write_bytes(b"this is not an SQLite database, but long enough to have a header" * 4)

    result = run_cli("report", "--audit-database-url", f"sqlite:///{path}")

    assert result.code == 1
    assert result.stderr.startswith("stale-tokens: error: reading the audit table failed: ")
    assert "file is not a database" in result.stderr
    assert result.stderr.count("\n") == 1
