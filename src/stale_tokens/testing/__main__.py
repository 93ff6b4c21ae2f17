"""Serve the emulator until interrupted: ``python -m stale_tokens.testing --port 4434``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio

from ._emulator import OryEmulator
from ._server import bind_socket, build_server

DEFAULT_PORT = 4434
DEFAULT_HOST = "127.0.0.1"


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stale_tokens.testing",
        description="Serve an in-memory Ory Kratos and Hydra admin API until Ctrl-C.",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="TCP port; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--identities", type=int, default=0, help="how many identities to seed (default: 0)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for ids, tokens and faults (default: 0)"
    )
    parser.add_argument(
        "--api-key", default=None, help="require 'Authorization: Bearer KEY' on /admin paths"
    )
    arguments = parser.parse_args(argv)
    if arguments.identities < 0:
        parser.error(f"--identities must be 0 or more, got {arguments.identities}")
    return arguments


async def _serve(arguments: argparse.Namespace) -> None:
    emulator = OryEmulator(seed=arguments.seed, api_key=arguments.api_key)
    for number in range(arguments.identities):
        emulator.kratos.add_identity(traits={"email": f"user{number}@example.com"})

    sock = bind_socket(arguments.host, arguments.port)
    host = f"[{arguments.host}]" if ":" in arguments.host else arguments.host
    emulator.public_url = f"http://{host}:{sock.getsockname()[1]}"
    print(emulator.public_url, flush=True)  # noqa: T201 - the command's output.
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
    except OSError as exc:
        print(f"cannot serve on {arguments.host}:{arguments.port}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
