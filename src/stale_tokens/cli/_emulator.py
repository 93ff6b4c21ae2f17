"""``stale-tokens emulator``: serve the in-memory Kratos and Hydra until Ctrl-C.

The options and the server are those of ``python -m stale_tokens.testing``;
this command only hands its arguments over.
"""

from __future__ import annotations

import argparse

from ..testing import __main__ as emulator_command
from ._common import CommandError, Console

__all__ = ["add_emulator_parser"]


def add_emulator_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``emulator`` command."""
    parser = subparsers.add_parser(
        "emulator",
        parents=parents,
        help="serve an in-memory Kratos and Hydra for trying the tool",
        description="Serve the Kratos admin, Kratos public and Hydra admin APIs of "
        "stale_tokens.testing until Ctrl-C, and print the base URL, then one line per "
        "session with its identity id and session token. The same server as 'python -m "
        "stale_tokens.testing'. Only --api-key makes /admin requests need a bearer key; "
        "ORY_API_KEY is ignored. Needs uvicorn (the 'server' extra).",
    )
    emulator_command.add_options(parser)
    parser.set_defaults(run=run_emulator)


def run_emulator(arguments: argparse.Namespace, console: Console) -> int:
    """Hand over to the emulator's own server entry point, which runs its own event loop."""
    try:
        emulator_command.check_options(arguments)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return emulator_command.main(emulator_command.to_argv(arguments))
