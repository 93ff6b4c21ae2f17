"""Exit codes, the command error, environment variables and client construction."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO, get_args
from urllib.parse import urlsplit, urlunsplit

import httpx

from .._errors import ConfigurationError
from .._http import DEFAULT_MAX_ATTEMPTS, DEFAULT_READ_TIMEOUT
from .._hydra import HydraAdmin
from .._kratos import DEFAULT_PAGE_SIZE, KratosAdmin
from .._policy import Policy
from .._ratelimit import OryNetworkPlan, RateLimits
from ._logging import StatusLine

__all__ = [
    "API_KEY_VARIABLE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "HYDRA_URL_VARIABLE",
    "KRATOS_URL_VARIABLE",
    "CommandError",
    "Console",
    "Terminated",
    "add_connection_options",
    "load_policy",
    "open_hydra",
    "open_kratos",
    "positive_int",
    "redact_url",
    "redact_urls",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
"""128 + SIGTERM, the status a shell reports for a process that SIGTERM ended."""

KRATOS_URL_VARIABLE = "KRATOS_ADMIN_URL"
HYDRA_URL_VARIABLE = "HYDRA_ADMIN_URL"
API_KEY_VARIABLE = "ORY_API_KEY"


class CommandError(Exception):
    """Raised by a command to end with one line on stderr and an exit code.

    Args:
        message: A sentence naming the value and the fix. Never a secret.
        exit_code: The process exit status, `EXIT_USAGE` by default.
    """

    def __init__(self, message: str, *, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler, so a sweep stops as it does on Ctrl-C.

    It derives from ``KeyboardInterrupt`` because asyncio lets that reach
    the caller of the event loop at once instead of storing it in a task.
    """


@dataclass(frozen=True, slots=True)
class Console:
    """The streams, environment and transport a command uses besides its arguments.

    Attributes:
        stdout: Results: reports, tables, JSON.
        stderr: Errors, log records and the progress line.
        environ: Environment variables, for URLs and the API key.
        status_line: The progress line on stderr when it is a terminal, else
            ``None``. The log handler clears it before each record.
        transport: The transport of the Kratos and Hydra clients, such as an
            emulator's in-process one; ``None`` uses the network.
        progress_notes: Functions a running command adds, each returning how
            far it got, for the line printed on Ctrl-C or SIGTERM.
    """

    stdout: TextIO
    stderr: TextIO
    environ: Mapping[str, str]
    status_line: StatusLine | None
    transport: httpx.AsyncBaseTransport | None = None
    progress_notes: list[Callable[[], str]] = field(default_factory=list)


def positive_int(value: str) -> int:
    """Parse an option value that must be a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number; pass an integer of at least 1"
        ) from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is below 1; pass an integer of at least 1")
    return number


def add_connection_options(
    parser: argparse.ArgumentParser, *, needs_hydra: bool, lists_identities: bool = True
) -> None:
    """Add the admin URL and client options shared by the commands that call Ory.

    Args:
        parser: The command's parser.
        needs_hydra: Add ``--hydra-url``.
        lists_identities: Add ``--page-size``, which only listing commands use.
    """
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--kratos-url",
        metavar="URL",
        help=f"Kratos admin API URL, such as http://127.0.0.1:4434 "
        f"(default: ${KRATOS_URL_VARIABLE})",
    )
    if needs_hydra:
        group.add_argument(
            "--hydra-url",
            metavar="URL",
            help=f"Hydra admin API URL, such as http://127.0.0.1:4445; without it OAuth2 "
            f"consent sessions are not revoked (default: ${HYDRA_URL_VARIABLE})",
        )
    group.add_argument(
        "--max-attempts",
        type=positive_int,
        default=DEFAULT_MAX_ATTEMPTS,
        metavar="N",
        help="attempts per request, the first included; 1 disables retries (default: %(default)s)",
    )
    group.add_argument(
        "--read-timeout",
        type=float,
        default=DEFAULT_READ_TIMEOUT,
        metavar="SECONDS",
        help="seconds to wait for each chunk of a response (default: %(default)s)",
    )
    group.add_argument(
        "--ory-network-plan",
        choices=get_args(OryNetworkPlan),
        metavar="PLAN",
        help="pace requests to the project rate limits of this Ory Network plan: "
        f"{', '.join(get_args(OryNetworkPlan))} (default: no client-side limit; a 429 is "
        "still retried)",
    )
    if not lists_identities:
        return
    group.add_argument(
        "--page-size",
        type=positive_int,
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help="identities per listing page; Kratos >= 25.4 serves at most 500 "
        "(default: %(default)s)",
    )


def open_kratos(arguments: argparse.Namespace, console: Console) -> KratosAdmin:
    """Build the Kratos client from the options, with the API key from the environment.

    Raises:
        CommandError: If no URL is given or the URL or an option is invalid.
    """
    url = arguments.kratos_url or console.environ.get(KRATOS_URL_VARIABLE)
    if not url:
        raise CommandError(
            f"no Kratos admin URL: pass --kratos-url or set {KRATOS_URL_VARIABLE}, "
            "such as http://127.0.0.1:4434"
        )
    _check_admin_url(url, "--kratos-url", KRATOS_URL_VARIABLE, "http://127.0.0.1:4434")
    try:
        return KratosAdmin(
            url,
            api_key=_api_key(console.environ),
            transport=console.transport,
            max_attempts=arguments.max_attempts,
            read_timeout=arguments.read_timeout,
            rate_limits=_rate_limits(arguments),
            page_size=getattr(arguments, "page_size", DEFAULT_PAGE_SIZE),
        )
    except ConfigurationError as exc:
        raise CommandError(_without_url(str(exc), url)) from exc


def open_hydra(arguments: argparse.Namespace, console: Console) -> HydraAdmin | None:
    """Build the Hydra client, or return ``None`` when no Hydra URL is configured.

    Raises:
        CommandError: If the URL or an option is invalid.
    """
    url = arguments.hydra_url or console.environ.get(HYDRA_URL_VARIABLE)
    if not url:
        return None
    _check_admin_url(url, "--hydra-url", HYDRA_URL_VARIABLE, "http://127.0.0.1:4445")
    try:
        return HydraAdmin(
            url,
            api_key=_api_key(console.environ),
            transport=console.transport,
            max_attempts=arguments.max_attempts,
            read_timeout=arguments.read_timeout,
            rate_limits=_rate_limits(arguments),
        )
    except ConfigurationError as exc:
        raise CommandError(_without_url(str(exc), url)) from exc


def load_policy(path: str | None) -> Policy:
    """Read the policy file, or return the default policy when *path* is ``None``.

    Raises:
        CommandError: With the policy's own message if the file is unreadable or invalid.
    """
    if path is None:
        return Policy()
    try:
        return Policy.from_toml(path)
    except ConfigurationError as exc:
        raise CommandError(f"invalid policy: {exc}") from exc


def redact_url(url: str) -> str:
    """Return *url* with any user name and password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unparsable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


_USER_INFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def redact_urls(text: str) -> str:
    """Replace the user name and password of every URL in *text* by ``***``."""
    return _USER_INFO.sub(r"\g<scheme>***@", text)


def _check_admin_url(url: str, option: str, variable: str, example: str) -> None:
    """Raise when *url* lacks the scheme or host, naming the option, the variable and the fix."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None and parts.scheme in ("http", "https") and parts.hostname:
        return
    # "127.0.0.1:4434" or "localhost:4434" is the usual slip: a host and port without a scheme.
    fix = redact_url(f"http://{url}") if "://" not in url else example
    raise CommandError(
        f"the admin URL {redact_url(url)!r} from {option} or {variable} is not an absolute "
        f"http:// or https:// URL; pass one such as {fix!r}"
    )


def _rate_limits(arguments: argparse.Namespace) -> RateLimits | None:
    plan = arguments.ory_network_plan
    return RateLimits.ory_network(plan) if plan is not None else None


def _api_key(environ: Mapping[str, str]) -> str | None:
    # An empty variable is treated as unset, as shells and Kubernetes produce it easily.
    return environ.get(API_KEY_VARIABLE) or None


def _without_url(message: str, url: str) -> str:
    """Replace *url* in a library message by its redacted form, in case it carries a password."""
    redacted = redact_url(url)
    return message.replace(url, redacted) if redacted != url else message
