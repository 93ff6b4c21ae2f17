"""The installed script, `python -m stale_tokens`, the help texts and `emulator`."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import run_cli
from stale_tokens.cli import build_parser

COMMANDS = ("sweep", "plan", "exempt", "unexempt", "reactivate", "report", "emulator")


def _subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [subparsers] = [
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    ]
    return dict(subparsers.choices)


def _script() -> str:
    script = Path(sys.executable).with_name("stale-tokens")
    found = str(script) if script.exists() else shutil.which("stale-tokens")
    assert found is not None, "the stale-tokens script is not installed; pip install -e ."
    return found


def test_script_prints_version() -> None:
    """The console script runs and prints the package version."""
    completed = subprocess.run(  # noqa: S603 - a fixed, local executable.
        [_script(), "--version"], capture_output=True, text=True, check=False, timeout=60
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("stale-tokens ")


def test_module_runs_plan_from_stdin() -> None:
    """`python -m stale_tokens plan --identities -` reads stdin and prints JSON."""
    identity = {"id": "9f425a8d-7efc-4768-8f23-7647a74fdf13", "created_at": "2020-01-01T00:00:00Z"}

    completed = subprocess.run(
        [sys.executable, "-m", "stale_tokens", "plan", "--identities", "-", "--format", "json"],
        input=json.dumps(identity) + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    [row] = json.loads(completed.stdout)
    assert row["identity_id"] == identity["id"]
    assert row["step"] == "revoke"


def test_help_lists_every_command() -> None:
    """The top-level help names every command and the environment variables."""
    result = run_cli("--help")

    assert result.code == 0
    for command in COMMANDS:
        assert command in result.stdout
    for variable in ("KRATOS_ADMIN_URL", "HYDRA_ADMIN_URL", "ORY_API_KEY"):
        assert variable in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_documents_every_option(command: str) -> None:
    """Every option that takes a value shows its default in the help text."""
    parser = _subcommand_parsers()[command]

    undocumented = [
        action.option_strings[0]
        for action in parser._actions
        if action.option_strings
        and action.nargs != 0
        and not action.required
        and "(default: " not in (action.help or "")
    ]

    assert undocumented == []
    assert run_cli(command, "--help").code == 0


def test_no_option_takes_api_key() -> None:
    """No command that calls Ory has an API key option, so a real key stays out of process lists."""
    for command, parser in _subcommand_parsers().items():
        # The emulator's --api-key is a made-up key that the fake server demands.
        if command == "emulator":
            continue
        for action in parser._actions:
            for option in action.option_strings:
                assert "key" not in option, (command, option)


def test_verbose_after_command_is_kept() -> None:
    """-v after the command name is not reset by the command's own defaults."""
    parser = build_parser()

    before = parser.parse_args(["-v", "plan", "--identities", "-"])
    after = parser.parse_args(["plan", "--identities", "-", "-vv"])
    quiet = parser.parse_args(["plan", "--identities", "-", "-q"])

    assert before.verbose == 1
    assert after.verbose == 2
    assert quiet.quiet is True
    assert before.quiet is False
