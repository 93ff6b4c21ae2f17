"""Serve the emulator until interrupted: ``python -m stale_tokens.testing --port 4434``.

``stale-tokens emulator`` takes the same options and hands them to `main`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio

from ._emulator import OryEmulator
from ._server import bind_socket, build_server

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "add_options", "check_options", "main", "to_argv"]

DEFAULT_PORT = 4434
DEFAULT_HOST = "127.0.0.1"


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to *parser*, for this module and ``stale-tokens emulator``."""
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        metavar="ADDRESS",
        help="address to bind (default: %(default)s)",
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
        help="identities to create at start, with traits "
        '{"email": "userN@example.com"} (default: %(default)s)',
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=0,
        metavar="N",
        help="create a session for each of the first N identities and print its identity id "
        "and session token, one line each, after the base URL (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of ids, tokens and fault probabilities (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' on /admin paths; pass a made-up key, as "
        "it shows in the process list (default: none, so no key is required; ORY_API_KEY "
        "is never read)",
    )


def check_options(arguments: argparse.Namespace) -> None:
    """Reject counts the emulator cannot seed.

    Raises:
        ValueError: If ``--identities`` or ``--sessions`` is negative, or
            ``--sessions`` exceeds ``--identities``.
    """
    if arguments.identities < 0:
        raise ValueError(f"--identities must be 0 or more, got {arguments.identities}")
    if arguments.sessions < 0:
        raise ValueError(f"--sessions must be 0 or more, got {arguments.sessions}")
    if arguments.sessions > arguments.identities:
        raise ValueError(
            f"--sessions {arguments.sessions} exceeds --identities {arguments.identities}; "
            "seed at least as many identities as sessions"
        )


def to_argv(arguments: argparse.Namespace) -> list[str]:
    """Return the command line that `main` parses back into *arguments*' emulator options."""
    argv = [
        "--host",
        arguments.host,
        "--port",
        str(arguments.port),
        "--identities",
        str(arguments.identities),
        "--sessions",
        str(arguments.sessions),
        "--seed",
        str(arguments.seed),
    ]
    if arguments.api_key is not None:
        argv += ["--api-key", arguments.api_key]
    return argv


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stale_tokens.testing",
        description="Serve an in-memory Ory Kratos and Hydra admin API until Ctrl-C.",
    )
    add_options(parser)
    arguments = parser.parse_args(argv)
    try:
        check_options(arguments)
    except ValueError as exc:
        parser.error(str(exc))
    return arguments


async def _serve(arguments: argparse.Namespace) -> None:
    emulator = OryEmulator(seed=arguments.seed, api_key=arguments.api_key)
    identity_ids = [
        emulator.kratos.add_identity(traits={"email": f"user{number}@example.com"})["id"]
        for number in range(arguments.identities)
    ]
    sessions = [
        emulator.kratos.create_session(identity_id)
        for identity_id in identity_ids[: arguments.sessions]
    ]

    sock = bind_socket(arguments.host, arguments.port)
    host = f"[{arguments.host}]" if ":" in arguments.host else arguments.host
    emulator.public_url = f"http://{host}:{sock.getsockname()[1]}"
    # The tokens are the emulator's own test data, so printing them leaks nothing.
    lines = [
        emulator.public_url,
        *(f"{session.identity_id} {session.token}" for session in sessions),
    ]
    print("\n".join(lines), flush=True)  # noqa: T201 - the command's output.
    try:
        await build_server(emulator.app).serve([sock])
    finally:
        sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator server; return the process exit status."""
    arguments = _parse_arguments(argv)
    try:
        anyio.run(_serve, arguments)
    except KeyboardInterrupt:
        pass
    except ModuleNotFoundError as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except OSError as exc:
        print(f"cannot serve on {arguments.host}:{arguments.port}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
