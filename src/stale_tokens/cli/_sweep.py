"""``stale-tokens sweep``: run `sweep()` once, as cron or a Kubernetes CronJob does."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

from .._breaker import (
    DEFAULT_MAX_DESTRUCTIVE_COUNT,
    DEFAULT_MAX_DESTRUCTIVE_FRACTION,
    DEFAULT_MIN_IDENTITIES_FOR_FRACTION,
    CircuitBreaker,
)
from .._errors import ConfigurationError
from .._lock import SweepLock
from .._notify import Notifier
from .._report import SweepAbortedError, SweepReport
from .._sweeper import DEFAULT_CONCURRENCY, DEFAULT_RECENT_SESSION_WINDOW_SECONDS, sweep
from ._audit import add_audit_options, open_audit_sink
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Console,
    add_connection_options,
    load_policy,
    open_hydra,
    open_kratos,
    positive_int,
    redact_url,
)
from ._lock import (
    DEFAULT_REDIS_LOCK_TTL_SECONDS,
    REDIS_LOCK_URL_VARIABLE,
    FileSweepLock,
    RedisLockError,
    open_redis_lock,
)
from ._plugins import load_plugin
from ._progress import ProgressKratos, SweepProgress

__all__ = ["add_sweep_parser", "run_sweep"]

MAX_LISTED_FAILURES = 20


def add_sweep_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``sweep`` command."""
    parser = subparsers.add_parser(
        "sweep",
        parents=parents,
        help="apply the policy to every identity once",
        description="List every Kratos identity, decide each with the policy and act on "
        "those due: warn, revoke Kratos sessions and Hydra consent sessions, and the "
        "further ladder steps the policy enables. Exit status: 0 done, 1 some "
        "identities failed or Kratos could not be listed, 2 usage error or the run was "
        "aborted by the circuit breaker or the lock, 130 interrupted by Ctrl-C, 143 "
        "stopped by SIGTERM.",
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy TOML file (default: the built-in policy: users 90 days, admins 7, "
        "service accounts never)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read everything, write nothing, and report what a real run would do",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="identities acted on at the same time (default: %(default)s)",
    )
    parser.add_argument(
        "--max-destructive-steps",
        type=_count_or_none,
        default=None,
        metavar="N",
        help="maximum number of identities that get revoke, deactivate or delete in this "
        "run; the rest are deferred to the next run (default: no cap)",
    )
    parser.add_argument(
        "--recent-session-window",
        type=float,
        default=DEFAULT_RECENT_SESSION_WINDOW_SECONDS,
        metavar="SECONDS",
        help="skip a destructive step when a session was authenticated this recently "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--lock-file",
        metavar="PATH",
        help="take an flock on PATH for the run and exit with status 2 when another "
        "sweep on this machine holds it (default: no lock)",
    )
    parser.add_argument(
        "--redis-lock-url",
        metavar="URL",
        help="take a lock in Redis, such as redis://127.0.0.1:6379/0, for the run and exit "
        "with status 2 when another sweep on any machine holds it; needs the 'redis' extra; "
        f"a URL with a password belongs in the environment variable (default: "
        f"${REDIS_LOCK_URL_VARIABLE}, else no Redis lock)",
    )
    parser.add_argument(
        "--redis-lock-ttl",
        type=float,
        default=DEFAULT_REDIS_LOCK_TTL_SECONDS,
        metavar="SECONDS",
        help="seconds until the Redis lock expires, so a crashed sweep blocks the next one "
        "at most this long; set it above the longest sweep (default: %(default)s)",
    )
    parser.add_argument(
        "--notifier",
        metavar="MODULE:NAME",
        help="notifier object or factory that sends warnings and notices (default: log "
        "them on stale_tokens.notify, which sends nothing)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="show no progress line on a terminal and no progress log lines elsewhere",
    )

    breaker = parser.add_argument_group(
        "circuit breaker",
        "The run acts on nothing and exits with status 2 when the plan exceeds a limit, "
        "because a tracker that stopped writing makes every identity look stale.",
    )
    breaker.add_argument(
        "--max-destructive-fraction",
        type=_fraction_or_none,
        default=DEFAULT_MAX_DESTRUCTIVE_FRACTION,
        metavar="FRACTION",
        help="largest share of listed identities, above 0 and at most 1, that may be due "
        "for a destructive step; 'none' disables the check (default: %(default)s)",
    )
    breaker.add_argument(
        "--max-destructive-count",
        type=_count_or_none,
        default=DEFAULT_MAX_DESTRUCTIVE_COUNT,
        metavar="N",
        help="largest number of identities that may be due for a destructive step; 'none' "
        "disables the check (default: %(default)s)",
    )
    breaker.add_argument(
        "--min-identities-for-fraction",
        type=int,
        default=DEFAULT_MIN_IDENTITIES_FOR_FRACTION,
        metavar="N",
        help="check the fraction only when at least N identities were listed "
        "(default: %(default)s)",
    )
    add_audit_options(parser)
    add_connection_options(parser, needs_hydra=True)
    parser.set_defaults(run=run_sweep)


async def run_sweep(arguments: argparse.Namespace, console: Console) -> int:
    """Run one sweep and print its report; return the exit status."""
    policy = load_policy(arguments.policy)
    breaker = _circuit_breaker(arguments)
    notifier: Notifier | None = None
    if arguments.notifier:
        notifier = load_plugin(
            arguments.notifier, option="--notifier", method="notify", app_dir=arguments.app_dir
        )
    redis_url = _redis_lock_url(arguments, console)

    now = datetime.now(UTC)
    progress: SweepProgress | None = None
    if not arguments.no_progress:
        progress = SweepProgress(policy=policy, now=now, status_line=console.status_line)
        console.progress_notes.append(progress.describe)

    kratos = open_kratos(arguments, console)
    async with kratos, contextlib.AsyncExitStack() as stack:
        lock: SweepLock | None = None
        if arguments.lock_file:
            lock = FileSweepLock(arguments.lock_file)
        elif redis_url is not None:
            lock = open_redis_lock(redis_url, ttl=arguments.redis_lock_ttl, stack=stack)
        audit = open_audit_sink(arguments, console, stack)
        hydra = open_hydra(arguments, console)
        if hydra is not None:
            await stack.enter_async_context(hydra)
        try:
            report = await sweep(
                kratos=kratos if progress is None else ProgressKratos(kratos, progress),
                hydra=hydra,
                policy=policy,
                notifier=notifier,
                audit=audit,
                dry_run=arguments.dry_run,
                now=now,
                concurrency=arguments.concurrency,
                circuit_breaker=breaker,
                max_destructive_steps=arguments.max_destructive_steps,
                recent_session_window=arguments.recent_session_window,
                lock=lock,
                page_size=arguments.page_size,
            )
        except RedisLockError as exc:
            raise CommandError(
                f"the Redis lock at {redact_url(redis_url or '')} failed: {exc}; check "
                f"--redis-lock-url or {REDIS_LOCK_URL_VARIABLE}",
                exit_code=EXIT_FAILED,
            ) from exc
        except SweepAbortedError as exc:
            _print_report(exc.report, console.stdout, as_json=arguments.json)
            raise CommandError(f"{exc}", exit_code=EXIT_USAGE) from exc
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        else:
            if progress is not None:
                progress.finish()
        finally:
            if progress is not None:
                progress.close()

    _print_report(report, console.stdout, as_json=arguments.json)
    return EXIT_FAILED if report.failures else EXIT_OK


def _redis_lock_url(arguments: argparse.Namespace, console: Console) -> str | None:
    """Return the Redis lock URL of the option or the variable, rejecting it with --lock-file."""
    url = arguments.redis_lock_url or console.environ.get(REDIS_LOCK_URL_VARIABLE) or None
    if arguments.lock_file and url:
        raise CommandError(
            "--lock-file and a Redis lock URL were both given; pass one of them "
            f"(and unset {REDIS_LOCK_URL_VARIABLE} if it is set)"
        )
    return url


def _circuit_breaker(arguments: argparse.Namespace) -> CircuitBreaker:
    try:
        return CircuitBreaker(
            max_destructive_fraction=arguments.max_destructive_fraction,
            max_destructive_count=arguments.max_destructive_count,
            min_identities_for_fraction=arguments.min_identities_for_fraction,
        )
    except ConfigurationError as exc:
        raise CommandError(f"invalid circuit breaker option: {_cli_spelling(str(exc))}") from exc


def _cli_spelling(message: str) -> str:
    """Rewrite a `CircuitBreaker` message in the option names and the 'none' of the CLI."""
    for name in (
        "max_destructive_fraction",
        "max_destructive_count",
        "min_identities_for_fraction",
    ):
        message = message.replace(name, "--" + name.replace("_", "-"))
    return message.replace(" None ", " 'none' ")


def _print_report(report: SweepReport, stdout: TextIO, *, as_json: bool) -> None:
    if as_json:
        stdout.write(report.to_json(indent=2) + "\n")
        return

    mode = ", dry run: nothing was written" if report.dry_run else ""
    done_label = "would do:" if report.dry_run else "done:"
    lines = [
        f"Sweep {report.run_id} (policy {report.policy_name}{mode})",
        f"  identities: {report.identities_seen:,} in {report.duration:.1f} s",
        f"  due:        {_counts(report.due)}",
        f"  {done_label:<12}{_counts(report.done)}",
        f"  exempt:     {_counts(report.exempt)}",
        (
            f"  skipped: {len(report.skipped):,}, deferred: {len(report.deferred):,}, "
            f"failed: {len(report.failures):,}, findings: {report.findings_total:,}"
        ),
    ]
    if report.suspensions_cleared:
        lines.append(f"  suspensions cleared: {report.suspensions_cleared:,}")
    if report.audit_failures:
        lines.append(f"  audit events the sink rejected: {report.audit_failures:,}")
    lines.extend(
        f"  failed {failure.identity_id} ({failure.step}): {failure.error}"
        for failure in report.failures[:MAX_LISTED_FAILURES]
    )
    if len(report.failures) > MAX_LISTED_FAILURES:
        lines.append(f"  ... and {len(report.failures) - MAX_LISTED_FAILURES:,} more; see --json")
    if report.aborted:
        lines.append(f"  aborted: {report.abort_reason}")
    stdout.write("\n".join(lines) + "\n")


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "none"


def _count_or_none(value: str) -> int | None:
    if value.lower() == "none":
        return None
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number; pass an integer of 0 or more, or 'none'"
        ) from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is negative; pass 0 or more, or 'none'")
    return count


def _fraction_or_none(value: str) -> float | None:
    if value.lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number; pass a fraction such as 0.1 for 10 %, or 'none'"
        ) from None
