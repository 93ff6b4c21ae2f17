"""``stale-tokens emulator`` hands its options to ``python -m stale_tokens.testing``."""

from __future__ import annotations

import argparse

import pytest

import stale_tokens.testing.__main__ as emulator_command
from cli_helpers import run_cli
from stale_tokens.cli import build_parser


@pytest.fixture
def delegated(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the argv each run hands to the testing package's main instead of serving."""
    calls: list[list[str]] = []

    def record(argv: list[str]) -> int:
        calls.append(argv)
        return 0

    monkeypatch.setattr(emulator_command, "main", record)
    return calls


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def test_emulator_delegates_every_option(delegated: list[list[str]]) -> None:
    """Host, port, counts, seed and an explicit --api-key reach the testing main unchanged."""
    result = run_cli(
        "emulator",
        "--host", "::1", "--port", "0", "--identities", "3", "--sessions", "2",
        "--seed", "7", "--api-key", "ory_pat_emulated",
    )  # fmt: skip

    assert result.code == 0, result.stderr
    assert delegated == [
        [
            "--host", "::1", "--port", "0", "--identities", "3", "--sessions", "2",
            "--seed", "7", "--api-key", "ory_pat_emulated",
        ]
    ]  # fmt: skip
    assert "ory_pat_emulated" not in result.stdout + result.stderr


def test_emulator_ignores_ory_api_key(delegated: list[list[str]]) -> None:
    """An exported ORY_API_KEY is not handed over, so the emulator requires no key."""
    result = run_cli("emulator", "--port", "0", environ={"ORY_API_KEY": "ory_pat_real"})

    assert result.code == 0, result.stderr
    assert delegated == [
        ["--host", "127.0.0.1", "--port", "0", "--identities", "0", "--sessions", "0",
         "--seed", "0"]
    ]  # fmt: skip


def test_emulator_options_match_testing_main() -> None:
    """The command takes exactly the options of python -m stale_tokens.testing."""
    [subparsers] = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    shared_output_options = {"-v", "--verbose", "-q", "--quiet", "--debug"}
    standalone = argparse.ArgumentParser()
    emulator_command.add_options(standalone)

    command_options = _option_strings(subparsers.choices["emulator"]) - shared_output_options

    assert command_options == _option_strings(standalone)
    assert {"--host", "--api-key", "--sessions"} <= command_options


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--identities", "-1"], "--identities must be 0 or more, got -1"),
        (["--identities", "1", "--sessions", "2"], "--sessions 2 exceeds --identities 1"),
    ],
)
def test_emulator_bad_counts_exit_2(
    delegated: list[list[str]], argv: list[str], message: str
) -> None:
    """Counts the emulator cannot seed are rejected before the server starts."""
    result = run_cli("emulator", *argv)

    assert result.code == 2
    assert message in result.stderr
    assert delegated == []
