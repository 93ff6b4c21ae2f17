"""``stale-tokens report``: audit event counts per month, from the SQL audit sink."""

from __future__ import annotations

import argparse

import stale_tokens

from ._common import CommandError, Console

__all__ = ["add_report_parser"]

DATABASE_URL_VARIABLE = "STALE_TOKENS_AUDIT_DATABASE_URL"
DEFAULT_MONTHS = 12


def add_report_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        parents=parents,
        help="count audit events per month and action",
        description="Count the audit events of the SQL audit sink per month and event "
        "type, such as how many identities had their tokens revoked each month.",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=f"database URL of the audit table; it may contain a password, so prefer "
        f"the environment variable (default: ${DATABASE_URL_VARIABLE})",
    )
    parser.add_argument(
        "--months",
        type=int,
        default=DEFAULT_MONTHS,
        metavar="N",
        help="months to show, the current one included (default: %(default)s)",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output format (default: %(default)s)",
    )
    parser.set_defaults(run=run_report)


async def run_report(arguments: argparse.Namespace, console: Console) -> int:
    """Print the monthly counts; return the exit status."""
    # NOTE: the SQL audit sink is not part of this version yet, so the command
    # stops here with a message instead of reading a table it cannot name.
    if not hasattr(stale_tokens, "SqlAuditSink"):
        raise CommandError(
            "the report command reads the SQL audit sink (stale_tokens.SqlAuditSink), "
            "which this version of stale-tokens does not include yet; until it does, "
            "count the JSON events that --audit-sink or the stale_tokens.audit log "
            "received"
        )
    raise CommandError(
        "the report command does not support this version's SqlAuditSink yet; upgrade stale-tokens"
    )
