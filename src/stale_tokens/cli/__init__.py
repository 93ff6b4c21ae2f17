"""The ``stale-tokens`` command: sweep, plan, exempt, unexempt, reactivate, report, emulator.

Run ``stale-tokens --help``, or ``python -m stale_tokens --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import FrameType
from typing import Any, TextIO

import anyio
import httpx

from .._errors import (
    ConfigurationError,
    OryConnectionError,
    OryError,
    StaleTokensError,
    UnauthorizedError,
)
from ._audit import DATABASE_URL_VARIABLE
from ._audit_report import add_report_parser
from ._common import (
    API_KEY_VARIABLE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    HYDRA_URL_VARIABLE,
    KRATOS_URL_VARIABLE,
    CommandError,
    Console,
    Terminated,
    redact_url,
)
from ._emulator import add_emulator_parser
from ._identity import add_identity_parsers
from ._logging import StatusLine, configure_logging
from ._plan import add_plan_parser
from ._sweep import add_sweep_parser

__all__ = ["main"]

PROGRAM = "stale-tokens"


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run the command line and return the exit status.

    Args:
        argv: The arguments after the program name; ``None`` reads ``sys.argv``.
        stdout: Where results go; ``None`` means ``sys.stdout``.
        stderr: Where errors, logs and progress go; ``None`` means ``sys.stderr``.
        environ: Environment variables; ``None`` means ``os.environ``.
        transport: The transport of the Kratos and Hydra clients instead of the
            network, such as ``OryEmulator.transport()`` in tests.

    Returns:
        0 when done, 1 when identities failed or Kratos or Hydra failed, 2 for
        a usage error or a sweep aborted by the circuit breaker or the lock,
        130 when interrupted by Ctrl-C (SIGINT), 143 when stopped by SIGTERM.
    """
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    console = Console(
        stdout=stdout,
        stderr=stderr,
        environ=os.environ if environ is None else environ,
        status_line=StatusLine(stderr) if stderr.isatty() else None,
        transport=transport,
    )

    parser = build_parser()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            arguments = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits for --help (0) and for usage errors (2) after printing.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    verbosity = -1 if arguments.quiet else arguments.verbose
    restore_logging = configure_logging(
        max(verbosity, 1) if arguments.debug else verbosity,
        stream=stderr,
        status_line=console.status_line,
    )
    restore_sigterm = _raise_on_sigterm()
    try:
        return _run(arguments, console)
    except BrokenPipeError:
        # The reader of stdout went away, as `stale-tokens plan ... | head` does.
        _silence_stdout(stdout)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - every error ends as one line; --debug adds the traceback.
        if arguments.debug:
            traceback.print_exc(file=stderr)
        code, message = _describe_error(exc, arguments, console.environ)
        stderr.write(f"{PROGRAM}: error: {message}\n")
        return code
    except KeyboardInterrupt as exc:
        # Terminated derives from KeyboardInterrupt, so both stop a sweep the same way.
        terminated = isinstance(exc, Terminated)
        stopped = "terminated by SIGTERM" if terminated else "interrupted"
        notes = "".join(f" {note()}" for note in console.progress_notes)
        stderr.write(f"{PROGRAM}: {stopped}{notes}\n")
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        restore_sigterm()
        restore_logging()


def _raise_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM raise `Terminated`; return the function that restores the old handler.

    Kubernetes sends SIGTERM at activeDeadlineSeconds and on eviction. Python's
    default ends the process at once, without a line saying so.
    """
    if threading.current_thread() is not threading.main_thread():
        # signal.signal works only in the main thread; elsewhere keep the default.
        return lambda: None

    def handle(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handle)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of every command."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Revoke the sessions and tokens of inactive Ory Kratos identities.",
        epilog=f"""environment variables:
  {KRATOS_URL_VARIABLE}, {HYDRA_URL_VARIABLE}
                 admin API URLs, when --kratos-url or --hydra-url is not given
  {API_KEY_VARIABLE}    Ory Network API key, sent to Kratos and Hydra as a bearer
                 token; read only from the environment, never from an option
  {DATABASE_URL_VARIABLE}
                 database of the SQL audit table

exit status:
  0    done
  1    some identities failed, or Kratos, Hydra or the database failed
  2    usage error, or a sweep aborted by the circuit breaker or the lock
  130  interrupted by Ctrl-C (SIGINT)
  143  stopped by SIGTERM, as Kubernetes sends at activeDeadlineSeconds
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_output_options(parser, defaults=True)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    # The options repeat on each command, so `stale-tokens sweep -v` works as well
    # as `stale-tokens -v sweep`; without defaults there, they keep the earlier value.
    common = argparse.ArgumentParser(add_help=False)
    _add_output_options(common, defaults=False)
    parents = [common]
    add_sweep_parser(subparsers, parents)
    add_plan_parser(subparsers, parents)
    add_identity_parsers(subparsers, parents)
    add_report_parser(subparsers, parents)
    add_emulator_parser(subparsers, parents)
    return parser


def _add_output_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    group = parser.add_argument_group("output")
    suppress: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="show debug log records (default: info records: sweep start and end, "
        "progress, audit events)",
        **({"default": 0} if defaults else suppress),
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="show only warnings and errors on stderr",
        **suppress,
    )
    group.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error and debug log records",
        **suppress,
    )


def _run(arguments: argparse.Namespace, console: Console) -> int:
    command = arguments.run
    if inspect.iscoroutinefunction(command):
        code: int = anyio.run(functools.partial(command, arguments, console))
        return code
    return int(command(arguments, console))


def _describe_error(
    exc: Exception, arguments: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[int, str]:
    """Return the exit status and the one-line message for an error that ended a command."""
    exc = _leaf(exc)
    if isinstance(exc, CommandError):
        return exc.exit_code, str(exc)
    if isinstance(exc, ConfigurationError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, OryError):
        return EXIT_FAILED, _describe_ory_error(exc, arguments, environ)
    if isinstance(exc, StaleTokensError):
        return EXIT_FAILED, str(exc)
    hint = "" if arguments.debug else "; rerun with --debug for the traceback"
    return EXIT_FAILED, f"unexpected {type(exc).__name__}: {exc}{hint}"


def _describe_ory_error(
    exc: OryError, arguments: argparse.Namespace, environ: Mapping[str, str]
) -> str:
    if isinstance(exc, UnauthorizedError):
        return f"{exc} (check {API_KEY_VARIABLE})"
    if not isinstance(exc, OryConnectionError):
        return str(exc)

    name, option, variable = (
        ("Hydra", "hydra_url", HYDRA_URL_VARIABLE)
        if exc.service == "hydra"
        else ("Kratos", "kratos_url", KRATOS_URL_VARIABLE)
    )
    url = getattr(arguments, option, None) or environ.get(variable, "")
    flag = "--" + option.replace("_", "-")
    return f"{exc} The {name} admin URL was {redact_url(url)!r}, from {flag} or {variable}."


def _silence_stdout(stdout: TextIO) -> None:
    """Point the process's stdout at /dev/null, so flushing it at exit raises no second error."""
    if stdout is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _leaf(exc: Exception) -> Exception:
    """Return the first error inside task-group exception groups, which wrap a failed listing."""
    while isinstance(exc, ExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _version() -> str:
    try:
        return version("stale-tokens")
    except PackageNotFoundError:
        return "unknown"
