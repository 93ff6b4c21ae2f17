"""`stale-tokens exempt`, `unexempt` and `reactivate` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from cli_helpers import BASE_URL, run_cli, run_on
from stale_tokens.integrations.sql import SqlAuditSink
from stale_tokens.testing import OryEmulator

UNKNOWN_ID = "9f425a8d-7efc-4768-8f23-7647a74fdf13"


def test_exempt_sets_flag_and_keeps_keys() -> None:
    """exempt sets skip_stale_revocation to true and keeps the other metadata_admin keys."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity(
        metadata_admin={"last_activity_at": "2026-01-01T00:00:00Z", "team": "sales"}
    )["id"]

    result = run_on(emulator, "exempt", identity_id, "--kratos-url", BASE_URL)

    assert result.code == 0, result.stderr
    assert result.stdout == (
        f"identity {identity_id} is exempt: metadata_admin.skip_stale_revocation = true\n"
    )
    assert emulator.kratos.identity_json(identity_id)["metadata_admin"] == {
        "last_activity_at": "2026-01-01T00:00:00Z",
        "team": "sales",
        "skip_stale_revocation": True,
    }
    assert emulator.requests["patch_identity"] == 1


def test_exempt_works_on_null_metadata_admin() -> None:
    """exempt creates metadata_admin when the identity has none."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity()["id"]

    result = run_on(emulator, "exempt", identity_id, "--kratos-url", BASE_URL)

    assert result.code == 0, result.stderr
    assert emulator.kratos.identity_json(identity_id)["metadata_admin"] == {
        "skip_stale_revocation": True
    }


def test_exempt_uses_policy_opt_out_key(tmp_path: Path) -> None:
    """With --policy, exempt writes the policy's nested opt_out_key."""
    policy = tmp_path / "policy.toml"
    policy.write_text('opt_out_key = "flags.no_sweep"\n')
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity(metadata_admin={"flags": {"beta": True}})["id"]

    result = run_on(
        emulator, "exempt", identity_id, "--kratos-url", BASE_URL, "--policy", str(policy)
    )

    assert result.code == 0, result.stderr
    assert "metadata_admin.flags.no_sweep = true" in result.stdout
    assert emulator.kratos.identity_json(identity_id)["metadata_admin"] == {
        "flags": {"beta": True, "no_sweep": True}
    }


def test_unexempt_removes_flag_only() -> None:
    """unexempt removes skip_stale_revocation and keeps the other keys."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity(
        metadata_admin={"skip_stale_revocation": True, "team": "sales"}
    )["id"]

    result = run_on(emulator, "unexempt", identity_id, "--kratos-url", BASE_URL)

    assert result.code == 0, result.stderr
    assert "is no longer exempt" in result.stdout
    assert emulator.kratos.identity_json(identity_id)["metadata_admin"] == {"team": "sales"}
    assert emulator.requests["patch_identity"] == 1


def test_unexempt_without_flag_writes_nothing() -> None:
    """unexempt on an identity that is not exempt succeeds without a write."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity(metadata_admin={"team": "sales"})["id"]
    emulator.reset_counters()

    result = run_on(emulator, "unexempt", identity_id, "--kratos-url", BASE_URL)

    assert result.code == 0, result.stderr
    assert result.stdout == (
        f"identity {identity_id} was not exempt (metadata_admin.skip_stale_revocation is not "
        "set); nothing changed\n"
    )
    assert emulator.requests["patch_identity"] == 0
    assert emulator.writes[identity_id] == 0


def test_reactivate_sets_state_active() -> None:
    """reactivate sets an inactive identity back to active."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity(state="inactive")["id"]

    result = run_on(emulator, "reactivate", identity_id, "--kratos-url", BASE_URL)

    assert result.code == 0, result.stderr
    assert result.stdout == f"identity {identity_id} is active again\n"
    assert emulator.kratos.identity_json(identity_id)["state"] == "active"
    assert emulator.requests["patch_identity"] == 1


async def _create_audit_table(url: str) -> None:
    async with SqlAuditSink(url) as sink:
        await sink.create_table()


def test_reactivate_active_identity_changes_nothing(tmp_path: Path) -> None:
    """reactivate on an active identity without a suspension writes nothing and no audit event."""
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    anyio.run(_create_audit_table, url)
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.reset_counters()

    result = run_on(
        emulator, "reactivate", identity_id, "--kratos-url", BASE_URL, "--audit-database-url", url
    )
    reported = run_cli("report", "--audit-database-url", url, "--format", "json")

    assert result.code == 0, result.stderr
    assert result.stdout == f"identity {identity_id} is already active; nothing changed\n"
    assert emulator.requests["get_identity"] == 1
    assert emulator.writes[identity_id] == 0
    assert reported.code == 0, reported.stderr
    assert json.loads(reported.stdout) == []


def test_reactivate_active_identity_clears_suspension() -> None:
    """reactivate on an active but suspended identity removes the marker only."""
    emulator = OryEmulator()
    identity_id = emulator.kratos.add_identity(
        metadata_public={"stale_tokens_suspended_at": "2026-01-01T00:00:00Z", "plan": "pro"}
    )["id"]
    emulator.reset_counters()

    result = run_on(emulator, "reactivate", identity_id, "--kratos-url", BASE_URL)

    assert result.code == 0, result.stderr
    assert result.stdout == f"identity {identity_id} is active again\n"
    assert emulator.requests["patch_identity"] == 1
    assert emulator.kratos.identity_json(identity_id)["metadata_public"] == {"plan": "pro"}


@pytest.mark.parametrize("command", ["exempt", "unexempt", "reactivate"])
def test_identity_command_has_no_page_size(command: str) -> None:
    """Commands on one identity reject --page-size, which only listing commands use."""
    result = run_cli(command, UNKNOWN_ID, "--page-size", "10")

    assert result.code == 2
    assert "unrecognized arguments: --page-size" in result.stderr


@pytest.mark.parametrize("command", ["exempt", "unexempt", "reactivate"])
def test_identity_command_unknown_id_exits_2(command: str) -> None:
    """An id Kratos does not know ends with status 2 and one line naming the id."""
    emulator = OryEmulator()

    result = run_on(emulator, command, UNKNOWN_ID, "--kratos-url", BASE_URL)

    assert result.code == 2
    assert result.stderr == (
        f"stale-tokens: error: identity {UNKNOWN_ID} was not found in Kratos; check the id "
        "and that --kratos-url or KRATOS_ADMIN_URL names the right project\n"
    )
    assert sum(emulator.writes.values()) == 0


@pytest.mark.parametrize("command", ["exempt", "unexempt", "reactivate"])
def test_identity_command_malformed_id_exits_2(command: str) -> None:
    """A value that is not a UUID is rejected before any request."""
    emulator = OryEmulator()

    result = run_on(emulator, command, "alice@example.org", "--kratos-url", BASE_URL)

    assert result.code == 2
    assert "'alice@example.org' is not an identity id" in result.stderr
    assert sum(emulator.requests.values()) == 0


def test_identity_command_needs_url() -> None:
    """Without --kratos-url or KRATOS_ADMIN_URL the command names both."""
    result = run_cli("exempt", UNKNOWN_ID)

    assert result.code == 2
    assert "pass --kratos-url or set KRATOS_ADMIN_URL" in result.stderr
