"""``stale-tokens emulator``: serve the in-memory Kratos and Hydra on 127.0.0.1."""

from __future__ import annotations

import argparse

from ._common import API_KEY_VARIABLE, CommandError, Console

__all__ = ["add_emulator_parser"]

DEFAULT_PORT = 4434
HOST = "127.0.0.1"


def add_emulator_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``emulator`` command."""
    parser = subparsers.add_parser(
        "emulator",
        parents=parents,
        help="serve an in-memory Kratos and Hydra for trying the tool",
        description=f"Serve the Kratos admin, Kratos public and Hydra admin APIs of "
        f"stale_tokens.testing on {HOST} until Ctrl-C, and print the base URL. When "
        f"${API_KEY_VARIABLE} is set, every /admin request must send it as a bearer token, "
        "as on Ory Network. Needs uvicorn (the 'server' extra).",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        metavar="PORT",
        help="TCP port; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--identities",
        type=int,
        default=0,
        metavar="N",
        help="identities to create at start, all active since now (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of ids, tokens and fault probabilities (default: %(default)s)",
    )
    parser.set_defaults(run=run_emulator)


def run_emulator(arguments: argparse.Namespace, console: Console) -> int:
    """Hand over to the emulator's own server entry point, which runs its own event loop."""
    if arguments.identities < 0:
        raise CommandError(f"--identities must be 0 or more, got {arguments.identities}")
    try:
        from ..testing.__main__ import main as serve_emulator  # noqa: PLC0415 - optional extra.
    except ModuleNotFoundError as exc:
        raise CommandError(
            f"the emulator cannot start: {exc}; install stale-tokens[server]"
        ) from exc

    argv = [
        "--host",
        HOST,
        "--port",
        str(arguments.port),
        "--identities",
        str(arguments.identities),
        "--seed",
        str(arguments.seed),
    ]
    api_key = console.environ.get(API_KEY_VARIABLE)
    if api_key:
        argv += ["--api-key", api_key]
    return serve_emulator(argv)
