"""Audit options shared by ``sweep``, ``reactivate`` and ``report``: a plug-in or the SQL sink."""

from __future__ import annotations

import argparse
import contextlib
from typing import TYPE_CHECKING, Any

from .._audit import AuditSink
from .._errors import ConfigurationError
from .._extras import MissingExtraError
from ._common import CommandError, Console, redact_url, redact_urls
from ._plugins import add_app_dir_option, load_plugin

if TYPE_CHECKING:
    from ..integrations.sql import SqlAuditSink

__all__ = [
    "DATABASE_URL_VARIABLE",
    "add_audit_options",
    "open_audit_sink",
    "open_sql_audit_sink",
]

DATABASE_URL_VARIABLE = "STALE_TOKENS_AUDIT_DATABASE_URL"


def add_audit_options(parser: argparse.ArgumentParser, *, with_plugin: bool = True) -> None:
    """Add the options that choose where audit events go or come from."""
    group = parser.add_argument_group("audit")
    if with_plugin:
        add_app_dir_option(group)
        group.add_argument(
            "--audit-sink",
            metavar="MODULE:NAME",
            help="audit sink object or factory (default: the SQL table when a database URL "
            "is set, else log each event as JSON on stale_tokens.audit)",
        )
    group.add_argument(
        "--audit-database-url",
        metavar="URL",
        help="database of the SQL audit table, such as sqlite:///audit.db or "
        "postgresql://user@host/db; a URL with a password belongs in the environment "
        f"variable (default: ${DATABASE_URL_VARIABLE})",
    )
    group.add_argument(
        "--audit-table",
        metavar="NAME",
        help="name of the SQL audit table (default: security_audit)",
    )


def open_sql_audit_sink(
    arguments: argparse.Namespace, console: Console, stack: contextlib.AsyncExitStack
) -> SqlAuditSink | None:
    """Return the SQL audit sink of the options, closed with *stack*, or ``None`` without a URL.

    Raises:
        CommandError: If the ``sql`` extra is missing or the URL or table name is invalid.
    """
    url = arguments.audit_database_url or console.environ.get(DATABASE_URL_VARIABLE)
    if not url:
        return None
    try:
        from ..integrations.sql import SqlAuditSink  # noqa: PLC0415 - an optional extra.
    except MissingExtraError as exc:
        raise CommandError(f"the SQL audit table cannot be used: {exc}") from exc
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415 - present once the import above worked.

    options: dict[str, Any] = {}
    if arguments.audit_table:
        options["table_name"] = arguments.audit_table
    try:
        sink = SqlAuditSink(url, **options)
    except MissingExtraError as exc:
        # The extras bring the SQLite and PostgreSQL drivers only, so the advice
        # to install one does not help for another database.
        raise CommandError(
            f"the audit database URL {redact_url(url)!r} needs the {exc.name!r} package, "
            "which is not installed. pip install 'stale-tokens[sql]' installs the driver "
            "of sqlite:// URLs (aiosqlite), 'stale-tokens[postgres]' that of postgresql:// "
            "URLs (asyncpg); for another database, install its SQLAlchemy async driver and "
            "name it in the URL, such as mysql+aiomysql://"
        ) from exc
    except (ConfigurationError, ArgumentError) as exc:
        # SQLAlchemy rejects an unknown dialect in the URL with ArgumentError.
        raise CommandError(f"invalid SQL audit options: {redact_urls(str(exc))}") from exc
    stack.push_async_callback(sink.aclose)
    return sink


def open_audit_sink(
    arguments: argparse.Namespace, console: Console, stack: contextlib.AsyncExitStack
) -> AuditSink | None:
    """Return the audit sink the options name, or ``None`` for the library's logging default.

    Raises:
        CommandError: If both a plug-in and a database are given, or either is invalid.
    """
    sql_sink = open_sql_audit_sink(arguments, console, stack)
    if arguments.audit_sink:
        if sql_sink is not None:
            raise CommandError(
                "--audit-sink and an audit database URL were both given; pass one of them "
                f"(and unset {DATABASE_URL_VARIABLE} if it is set)"
            )
        sink: AuditSink = load_plugin(
            arguments.audit_sink, option="--audit-sink", method="emit", app_dir=arguments.app_dir
        )
        return sink
    return sql_sink
