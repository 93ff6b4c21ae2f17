"""The demo's output, and the local mail server and audit table it reads back."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import anyio
from aiosmtpd.smtp import SMTP, Envelope, Session
from population import Population
from sqlalchemy import func, select

from stale_tokens import SweepReport
from stale_tokens.integrations.sql import SqlAuditSink

__all__ = [
    "MailBox",
    "audit_rows",
    "count_audit_rows",
    "open_audit",
    "print_audit",
    "print_groups",
    "print_mail",
    "print_report",
    "serve_mail",
]

_STEP_NAMES = {
    "warn": "warn",
    "revoke": "revoke every credential",
    "revoke_kinds": "revoke one credential kind",
}
_EVENT_NAMES = {
    "stale_warning_sent": "warned",
    "tokens_revoked_stale": "revoked",
}


@dataclass(slots=True)
class MailBox:
    """An aiosmtpd handler that keeps every message it accepts."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Keep the message and accept it."""
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        message = message_from_bytes(raw, policy=policy.default)
        if isinstance(message, EmailMessage):
            self.messages.append(message)
        return "250 OK"


@asynccontextmanager
async def serve_mail(host: str) -> AsyncIterator[tuple[MailBox, int]]:
    """Serve SMTP on *host* and a free port while the block runs; yield the mail box and port."""
    mailbox = MailBox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(mailbox, hostname="mail.example.org"), host=host, port=0
    )
    try:
        yield mailbox, server.sockets[0].getsockname()[1]
    finally:
        server.close()


@asynccontextmanager
async def open_audit(url: str) -> AsyncIterator[SqlAuditSink]:
    """Open the SQL audit sink at *url* for the block, and close it even on Ctrl-C."""
    audit = SqlAuditSink(url)
    try:
        yield audit
    finally:
        with anyio.CancelScope(shield=True):
            await audit.aclose()


async def audit_rows(audit: SqlAuditSink) -> list[tuple[str, str, str]]:
    """Return ``(identity_id, event_type, outcome)`` of every row in the audit table."""
    table = audit.table
    query = select(table.c.identity_id, table.c.event_type, table.c.outcome)
    async with audit.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [(str(row[0]), str(row[1]), str(row[2])) for row in rows]


async def count_audit_rows(audit: SqlAuditSink) -> int:
    """Return the number of rows in the audit table, creating it when missing."""
    await audit.create_table()
    async with audit.engine.connect() as connection:
        total = (await connection.execute(select(func.count()).select_from(audit.table))).scalar()
    return int(total or 0)


def print_report(report: SweepReport) -> None:
    """Print the counts of one sweep report."""
    verb = "would do" if report.dry_run else "done"
    print(
        f"   {report.identities_seen:,} identities listed and decided in "
        f"{report.duration:.1f} s with policy {report.policy_name!r}."
    )
    print(f"   Due: {_join(report.due, _STEP_NAMES) or 'nothing'}.")
    print(f"   {verb.capitalize()}: {_join(report.done, _STEP_NAMES) or 'nothing'}.")
    print(f"   Exempt: {_join(report.exempt) or 'none'}.")
    skipped = Counter(item.reason for item in report.skipped)
    print(
        f"   Skipped: {_join(skipped) or 'none'}. Failed: {len(report.failures)}. "
        f"Deferred: {len(report.deferred)}. Audit events not stored: {report.audit_failures}."
    )
    codes = Counter(item.finding.split(":", 1)[0] for item in report.findings)
    print(f"   Bad data found and handled: {_join(codes) or 'none'}.")


def print_mail(mailbox: MailBox, port: int) -> None:
    """Print how many emails the local server accepted, and the first one in full."""
    print(f"   Emails accepted by the SMTP server on 127.0.0.1:{port}: {len(mailbox.messages)}.")
    if not mailbox.messages:
        return
    first = mailbox.messages[0]
    body = first.get_body(preferencelist=("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    print("   The first one, as its recipient reads it:")
    print(f"   | To: {first['To']}")
    print(f"   | Subject: {first['Subject']}")
    print("   |")
    for line in str(text).strip().splitlines():
        print(f"   | {line}".rstrip())


async def print_audit(audit: SqlAuditSink, url: str) -> list[tuple[str, str, str]]:
    """Print the audit table's rows per month and event type; return every row."""
    rows = await audit_rows(audit)
    print(f"   Audit rows in {url} (table {audit.table.name}): {len(rows)}.")
    for count in await audit.monthly_counts():
        print(f"   | {count.month:%Y-%m}  {count.event_type:<24} {count.count}")
    return rows


def print_groups(population: Population, rows: list[tuple[str, str, str]]) -> None:
    """Print, per group, the sweep's actions from the audit table next to the expected outcome."""
    actions: dict[str, Counter[str]] = defaultdict(Counter)
    group_of = {member.identity_id: member.group.name for member in population.members}
    for identity_id, event_type, outcome in rows:
        if outcome == "success" and event_type in _EVENT_NAMES:
            actions[group_of[identity_id]][_EVENT_NAMES[event_type]] += 1

    sizes = Counter(member.group.name for member in population.members)
    expected = {member.group.name: member.group.expected for member in population.members}
    width = max(len(name) for name in sizes)
    print(f"   {'group':<{width}}  {'size':>5}  {'sweep did':<12}  expected")
    for name, size in sizes.items():
        did = _join(actions[name]) or "nothing"
        print(f"   {name:<{width}}  {size:>5}  {did:<12}  {expected[name]}")


def _join(counts: object, names: dict[str, str] | None = None) -> str:
    items = dict(counts).items() if isinstance(counts, dict | Counter) else ()
    return ", ".join(f"{(names or {}).get(key, key)} {count}" for key, count in sorted(items))
