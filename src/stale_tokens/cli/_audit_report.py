"""``stale-tokens report``: audit event counts per month, from the SQL audit table."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .._database_errors import DatabaseError
from ._audit import DATABASE_URL_VARIABLE, add_audit_options, open_sql_audit_sink
from ._common import EXIT_FAILED, EXIT_OK, CommandError, Console, redact_url, redact_urls

if TYPE_CHECKING:
    from ..integrations.sql import MonthlyCount, SqlAuditSink

__all__ = ["add_report_parser"]

DEFAULT_MONTHS = 12


def add_report_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        parents=parents,
        help="count audit events per month and event type",
        description="Count the events of the SQL audit table per calendar month (UTC) and "
        "event type, such as how many identities had their tokens revoked each month. "
        "Needs the 'sql' extra.",
    )
    parser.add_argument(
        "--months",
        type=int,
        default=DEFAULT_MONTHS,
        metavar="N",
        help="months to count, the current one included (default: %(default)s)",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output format (default: %(default)s)",
    )
    add_audit_options(parser, with_plugin=False)
    parser.set_defaults(run=run_report)


async def run_report(arguments: argparse.Namespace, console: Console) -> int:
    """Print the monthly counts; return the exit status."""
    if arguments.months < 1:
        raise CommandError(f"--months must be at least 1, got {arguments.months}")
    since = _first_day_months_ago(datetime.now(UTC), arguments.months - 1)

    async with contextlib.AsyncExitStack() as stack:
        sink = open_sql_audit_sink(arguments, console, stack)
        if sink is None:
            raise CommandError(
                f"no audit database: pass --audit-database-url or set {DATABASE_URL_VARIABLE}, "
                "such as sqlite:///audit.db"
            )
        from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - the sql extra is present.

        shown_url = redact_url(
            arguments.audit_database_url or console.environ[DATABASE_URL_VARIABLE]
        )
        _require_sqlite_file(sink, shown_url)
        try:
            if not await sink.table_exists():
                raise CommandError(
                    f"the audit table {sink.table.name!r} does not exist in "
                    f"{shown_url}; report only reads it, so run a sweep or "
                    "reactivate with this database URL first, or check --audit-table",
                    exit_code=EXIT_FAILED,
                )
            counts = await sink.monthly_counts(since=since)
        except NotImplementedError as exc:
            raise CommandError(str(exc)) from exc
        except (DatabaseError, SQLAlchemyError, OSError) as exc:
            # SQLAlchemy's messages span several lines and may quote the URL.
            first_line = redact_urls(str(exc)).splitlines()[0] if str(exc) else ""
            raise CommandError(
                f"reading the audit table failed: {type(exc).__name__}: {first_line}; check "
                "the database URL and that the sweeps write to this table",
                exit_code=1,
            ) from exc

    if arguments.format == "json":
        rows = [
            {
                "month": count.month.strftime("%Y-%m"),
                "event_type": count.event_type,
                "count": count.count,
            }
            for count in counts
        ]
        json.dump(rows, console.stdout, indent=2)
        console.stdout.write("\n")
    elif arguments.format == "csv":
        writer = csv.writer(console.stdout, lineterminator="\n")
        writer.writerow(("month", "event_type", "count"))
        writer.writerows(
            (count.month.strftime("%Y-%m"), count.event_type, count.count) for count in counts
        )
    else:
        _write_table(counts, console.stdout, since=since)
    return EXIT_OK


def _require_sqlite_file(sink: SqlAuditSink, shown_url: str) -> None:
    """Raise instead of letting SQLite create a missing database file on connect."""
    url = sink.engine.url
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:") or Path(database).exists():
        return
    raise CommandError(
        f"the audit database {shown_url} does not exist; report only reads it, so "
        "check --audit-database-url or run a sweep or reactivate with this URL first",
        exit_code=EXIT_FAILED,
    )


def _write_table(counts: Sequence[MonthlyCount], stdout: TextIO, *, since: date) -> None:
    """Write one row per month and one column per event type."""
    if not counts:
        stdout.write(f"no audit events since {since:%Y-%m-%d}\n")
        return
    event_types = sorted({count.event_type for count in counts})
    months = sorted({count.month for count in counts})
    by_cell = {(count.month, count.event_type): count.count for count in counts}

    header = ["MONTH", *event_types]
    rows = [header]
    rows.extend(
        [f"{month:%Y-%m}", *(str(by_cell.get((month, kind), 0)) for kind in event_types)]
        for month in months
    )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        cells = (
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        stdout.write("  ".join(cells) + "\n")


def _first_day_months_ago(now: datetime, months: int) -> datetime:
    """Return 00:00 UTC of the first day of the month *months* before *now*'s month."""
    index = now.year * 12 + (now.month - 1) - months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
