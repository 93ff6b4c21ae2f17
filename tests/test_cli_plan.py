"""`stale-tokens plan` on Kratos identity exports, offline."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import run_cli
from stale_tokens import Decision
from stale_tokens.cli import main
from stale_tokens.testing import OryEmulator

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NOW_TEXT = "2026-06-01T12:00:00Z"


def _export() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Return identities as the Kratos list endpoint serves them, and their ids by name."""
    emulator = OryEmulator(clock=lambda: NOW - timedelta(days=1000))
    ids: dict[str, str] = {}
    for name, days, extra in (
        ("stale", 200, {}),
        ("fresh", 3, {}),
        ("warned", 85, {}),
        ("service", 400, {"account_type": "service"}),
    ):
        metadata = {"last_activity_at": (NOW - timedelta(days=days)).isoformat(), **extra}
        created = emulator.kratos.add_identity(
            traits={"email": f"{name}@example.org"}, metadata_admin=metadata
        )
        ids[name] = created["id"]
    never = emulator.kratos.add_identity(traits={"email": "never@example.org"})
    ids["never_active"] = never["id"]
    return [emulator.kratos.identity_json(identity_id) for identity_id in ids.values()], ids


@pytest.fixture
def export() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Five identities: revoke due, fresh, warning due, service account, never active."""
    return _export()


@pytest.fixture
def warning_policy(tmp_path: Path) -> Path:
    """A policy that warns users 10 days before the 90-day revocation."""
    path = tmp_path / "policy.toml"
    path.write_text("[roles.user]\nrevoke_after_days = 90\nwarn_before_days = 10\n")
    return path


def _write_array(tmp_path: Path, identities: list[dict[str, Any]]) -> Path:
    path = tmp_path / "identities.json"
    path.write_text(json.dumps(identities, indent=2))
    return path


def _write_lines(tmp_path: Path, identities: list[dict[str, Any]]) -> Path:
    path = tmp_path / "identities.jsonl"
    path.write_text("".join(json.dumps(identity) + "\n" for identity in identities))
    return path


def test_plan_json_array_as_json(
    tmp_path: Path, export: tuple[list[dict[str, Any]], dict[str, str]], warning_policy: Path
) -> None:
    """A JSON array export gives one JSON row per identity with the due step and the next one."""
    identities, ids = export
    path = _write_array(tmp_path, identities)

    result = run_cli(
        "plan",
        "--identities",
        str(path),
        "--policy",
        str(warning_policy),
        "--now",
        NOW_TEXT,
        "--format",
        "json",
    )

    assert result.code == 0, result.stderr
    rows = {row["identity_id"]: row for row in json.loads(result.stdout)}
    assert set(rows) == set(ids.values())
    stale = rows[ids["stale"]]
    assert stale["step"] == "revoke"
    assert stale["revoke_kinds"] == ["browser_session", "oauth2", "personal_access_token"]
    assert stale["days_inactive"] == 200
    assert stale["activity_source"] == "recorded"
    warned = rows[ids["warned"]]
    assert warned["step"] == "warn"
    assert warned["next_step"] == "revoke"
    assert warned["next_step_at"] == "2026-06-06T12:00:00.000000Z"
    assert rows[ids["fresh"]]["step"] == "none"
    assert rows[ids["service"]]["exempt_reason"] is not None
    assert rows[ids["service"]]["step"] == "none"
    assert rows[ids["never_active"]]["activity_source"] == "created_at"
    assert rows[ids["never_active"]]["step"] == "revoke"


def test_plan_json_lines_matches_array(
    tmp_path: Path, export: tuple[list[dict[str, Any]], dict[str, str]]
) -> None:
    """JSON Lines, blank lines included, give the same plan as the JSON array."""
    identities, _ = export
    lines_path = _write_lines(tmp_path, identities)
    lines_path.write_text(lines_path.read_text() + "\n\n")
    array_path = _write_array(tmp_path, identities)

    from_lines = run_cli(
        "plan", "--identities", str(lines_path), "--now", NOW_TEXT, "--format", "json"
    )
    from_array = run_cli(
        "plan", "--identities", str(array_path), "--now", NOW_TEXT, "--format", "json"
    )

    assert from_lines.code == 0, from_lines.stderr
    assert from_array.code == 0, from_array.stderr
    assert json.loads(from_lines.stdout) == json.loads(from_array.stdout)
    assert len(json.loads(from_lines.stdout)) == 5


def test_plan_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, export: tuple[list[dict[str, Any]], dict[str, str]]
) -> None:
    """--identities - reads the export from stdin."""
    identities, ids = export
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(identities)))

    result = run_cli("plan", "--identities", "-", "--now", NOW_TEXT, "--format", "json")

    assert result.code == 0, result.stderr
    assert {row["identity_id"] for row in json.loads(result.stdout)} == set(ids.values())


def test_plan_table_lists_due_and_summary(
    tmp_path: Path, export: tuple[list[dict[str, Any]], dict[str, str]], warning_policy: Path
) -> None:
    """The table has a header, one line per identity and a summary of the due steps."""
    identities, ids = export
    path = _write_lines(tmp_path, identities)

    result = run_cli(
        "plan", "--identities", str(path), "--policy", str(warning_policy), "--now", NOW_TEXT
    )

    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "IDENTITY", "DUE", "REVOKE", "DAYS", "LAST", "ACTIVITY", "NEXT", "NEXT", "AT", "NOTE"
    ]  # fmt: skip
    assert len(lines) == 1 + 5 + 1
    stale_line = next(line for line in lines if line.startswith(ids["stale"]))
    assert stale_line.split()[1:4] == [
        "revoke",
        "browser_session,oauth2,personal_access_token",
        "200",
    ]
    assert "2025-11-13 (recorded)" in stale_line
    warned_line = next(line for line in lines if line.startswith(ids["warned"]))
    assert warned_line.split()[1:4] == ["warn", "-", "85"]
    assert "revoke  2026-06-06" in warned_line
    service_line = next(line for line in lines if line.startswith(ids["service"]))
    assert "exempt:" in service_line
    assert lines[-1] == (
        "5 identities at 2026-06-01T12:00:00.000000Z under policy default: "
        "3 due (revoke 2, warn 1), 1 exempt"
    )


def test_plan_csv_has_header_and_rows(
    tmp_path: Path, export: tuple[list[dict[str, Any]], dict[str, str]]
) -> None:
    """CSV output has the column header and one parsable row per identity."""
    identities, ids = export
    path = _write_array(tmp_path, identities)

    result = run_cli("plan", "--identities", str(path), "--now", NOW_TEXT, "--format", "csv")

    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 5
    stale = next(row for row in rows if row["identity_id"] == ids["stale"])
    assert stale["step"] == "revoke"
    assert stale["revoke_kinds"] == "browser_session oauth2 personal_access_token"
    assert stale["days_inactive"] == "200"
    assert stale["exempt_reason"] == ""
    assert stale["last_activity_at"] == "2025-11-13T12:00:00.000000Z"


def test_plan_due_only_filters(
    tmp_path: Path, export: tuple[list[dict[str, Any]], dict[str, str]]
) -> None:
    """--due-only leaves out identities with nothing due now."""
    identities, ids = export
    path = _write_array(tmp_path, identities)

    result = run_cli(
        "plan", "--identities", str(path), "--now", NOW_TEXT, "--format", "json", "--due-only"
    )

    assert result.code == 0, result.stderr
    shown = {row["identity_id"] for row in json.loads(result.stdout)}
    assert shown == {ids["stale"], ids["warned"], ids["never_active"]}


def test_plan_now_moves_the_moment(
    tmp_path: Path, export: tuple[list[dict[str, Any]], dict[str, str]]
) -> None:
    """--now five months earlier counts the days from then, so the stale identity is not due."""
    identities, ids = export
    path = _write_array(tmp_path, identities)

    result = run_cli(
        "plan", "--identities", str(path), "--now", "2026-01-01T00:00:00+01:00", "--format", "json"
    )

    assert result.code == 0, result.stderr
    rows = {row["identity_id"]: row for row in json.loads(result.stdout)}
    assert rows[ids["stale"]]["days_inactive"] == 48
    assert rows[ids["stale"]]["step"] == "none"


def test_plan_reports_findings(tmp_path: Path) -> None:
    """Bad data such as an unparsable timestamp shows up as a finding, not an error."""
    identity = {
        "id": "9f425a8d-7efc-4768-8f23-7647a74fdf13",
        "state": "active",
        "traits": {},
        "metadata_admin": {"last_activity_at": "yesterday"},
        "created_at": "2020-01-01T00:00:00Z",
    }
    path = _write_array(tmp_path, [identity])

    result = run_cli("plan", "--identities", str(path), "--now", NOW_TEXT, "--format", "json")

    assert result.code == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert any("yesterday" in finding for finding in row["findings"])
    assert row["activity_source"] == "created_at"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a"}\nnot json\n', "line 2 of --identities"),
        ('[{"id": "a"},', "starts like a JSON array but is not valid JSON"),
        ('[{"id": "a"}, {"state": "active"}]', "entry 1 of --identities"),
        ('{"id": "a"}\n[1, 2]\n', "line 2 of --identities"),
    ],
)
def test_plan_bad_export_exits_2(tmp_path: Path, content: str, message: str) -> None:
    """A malformed export ends with status 2 and one line naming the position."""
    path = tmp_path / "identities.json"
    path.write_text(content)

    result = run_cli("plan", "--identities", str(path))

    assert result.code == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_plan_missing_file_exits_2(tmp_path: Path) -> None:
    """A missing export file ends with status 2 and names the file."""
    missing = tmp_path / "absent.json"

    result = run_cli("plan", "--identities", str(missing))

    assert result.code == 2
    assert f"cannot read --identities '{missing}'" in result.stderr


def test_plan_bad_now_exits_2(tmp_path: Path) -> None:
    """--now without a time zone is rejected by the parser with status 2."""
    path = _write_array(tmp_path, [])

    result = run_cli("plan", "--identities", str(path), "--now", "2026-01-01T00:00:00")

    assert result.code == 2
    assert "is not an RFC 3339 timestamp" in result.stderr


def test_plan_unknown_format_exits_2(tmp_path: Path) -> None:
    """An unknown --format is a usage error listing the choices."""
    path = _write_array(tmp_path, [])

    result = run_cli("plan", "--identities", str(path), "--format", "yaml")

    assert result.code == 2
    assert "choose from 'table', 'json', 'csv'" in result.stderr


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_plan_closed_stdout_exits_quietly(tmp_path: Path) -> None:
    """When the reader of stdout goes away, plan exits with 1 and writes no error."""
    path = _write_array(tmp_path, [{"id": "9f425a8d-7efc-4768-8f23-7647a74fdf13"}])
    stderr = io.StringIO()

    code = main(["plan", "--identities", str(path)], stdout=_ClosedPipe(), stderr=stderr)

    assert code == 1
    assert stderr.getvalue() == ""


def test_plan_json_and_csv_carry_every_decision_field(
    tmp_path: Path, export: tuple[list[dict[str, Any]], dict[str, str]]
) -> None:
    """JSON and CSV have a key per Decision field, episode and revoke_at included."""
    identities, ids = export
    path = _write_array(tmp_path, identities)
    decision_fields = {field.name for field in fields(Decision)}

    as_json = run_cli("plan", "--identities", str(path), "--now", NOW_TEXT, "--format", "json")
    as_csv = run_cli("plan", "--identities", str(path), "--now", NOW_TEXT, "--format", "csv")

    assert as_json.code == 0, as_json.stderr
    assert as_csv.code == 0, as_csv.stderr
    rows = {row["identity_id"]: row for row in json.loads(as_json.stdout)}
    assert set(rows[ids["stale"]]) == decision_fields
    stale = rows[ids["stale"]]
    assert stale["episode"] == "2025-11-13T12:00:00.000000Z"
    assert stale["policy_name"] == "default"
    assert stale["revoke_at"] == "2026-02-11T12:00:00.000000Z"
    assert stale["kind_episodes"] == {
        "browser_session": "2025-11-13T12:00:00.000000Z",
        "oauth2": "2025-11-13T12:00:00.000000Z",
        "personal_access_token": "2025-11-13T12:00:00.000000Z",
    }
    assert rows[ids["service"]]["revoke_at"] is None
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert set(csv_rows[0]) == decision_fields
    stale_csv = next(row for row in csv_rows if row["identity_id"] == ids["stale"])
    assert stale_csv["kind_episodes"].split() == [
        "browser_session=2025-11-13T12:00:00.000000Z",
        "oauth2=2025-11-13T12:00:00.000000Z",
        "personal_access_token=2025-11-13T12:00:00.000000Z",
    ]
    assert stale_csv["revoke_at"] == "2026-02-11T12:00:00.000000Z"


def test_plan_table_explains_deactivated_identity(
    tmp_path: Path, export: tuple[list[dict[str, Any]], dict[str, str]]
) -> None:
    """NOTE explains why nothing is due for an identity Kratos already deactivated."""
    identities, ids = export
    stale = next(identity for identity in identities if identity["id"] == ids["stale"])
    stale["state"] = "inactive"
    path = _write_array(tmp_path, identities)

    result = run_cli("plan", "--identities", str(path), "--now", NOW_TEXT)

    assert result.code == 0, result.stderr
    stale_line = next(line for line in result.stdout.splitlines() if line.startswith(ids["stale"]))
    assert stale_line.split()[1:3] == ["-", "-"]
    assert "Kratos state inactive: sessions already rejected, only deletion applies" in stale_line
