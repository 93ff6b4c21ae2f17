"""``stale-tokens plan``: decide a Kratos identity export offline, without calling Kratos."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence, Set
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .._decision import Decision, Step
from .._models import Identity
from .._policy import Policy
from .._timestamps import format_timestamp, parse_timestamp
from ._common import EXIT_OK, CommandError, Console, load_policy

__all__ = ["add_plan_parser", "run_plan"]

FORMATS = ("table", "json", "csv")
COLUMNS = (
    "identity_id",
    "step",
    "revoke_kinds",
    "days_inactive",
    "last_activity_at",
    "activity_source",
    "next_step",
    "next_step_at",
    "exempt_reason",
    "role",
    "account_type",
    "findings",
    "episode",
    "policy_name",
    "kind_episodes",
    "revoke_at",
)

# Kratos rejects every session of an inactive identity, so the policy only
# deletes it, and a reader of the table would otherwise wonder why it is left.
_DEACTIVATED_NOTE = "Kratos state inactive: sessions already rejected, only deletion applies"


def add_plan_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``plan`` command."""
    parser = subparsers.add_parser(
        "plan",
        parents=parents,
        help="show who is due for what, from an identity export",
        description="Decide every identity of a Kratos export with the policy and show "
        "which step is due now and which comes next, and when. Nothing is sent anywhere.",
    )
    parser.add_argument(
        "--identities",
        required=True,
        metavar="FILE",
        help="Kratos identities as the list endpoint returns them: one JSON array, or "
        "JSON Lines with one identity per line; '-' reads stdin",
    )
    parser.add_argument(
        "--policy", metavar="FILE", help="policy TOML file (default: the built-in policy)"
    )
    parser.add_argument(
        "--now",
        type=_timestamp,
        metavar="RFC3339",
        help="decide as of this moment, such as 2026-07-01T00:00:00Z (default: the current time)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: %(default)s)"
    )
    parser.add_argument(
        "--due-only",
        action="store_true",
        help="list only identities with a step or a revocation due now",
    )
    parser.set_defaults(run=run_plan)


async def run_plan(arguments: argparse.Namespace, console: Console) -> int:
    """Print the plan in the chosen format; return the exit status."""
    policy = load_policy(arguments.policy)
    now = arguments.now or datetime.now(UTC)
    identities = _read_export(arguments.identities)

    decisions = [policy.decide(identity, now) for identity in identities]
    deactivated = {identity.id for identity in identities if identity.state == "inactive"}
    shown = [decision for decision in decisions if decision.has_action or not arguments.due_only]
    if arguments.format == "json":
        json.dump([_row(decision) for decision in shown], console.stdout, indent=2)
        console.stdout.write("\n")
    elif arguments.format == "csv":
        _write_csv(shown, console.stdout)
    else:
        _write_table(shown, deactivated, console.stdout)
        console.stdout.write(_summary(decisions, policy, now) + "\n")
    return EXIT_OK


def _read_export(path: str) -> list[Identity]:
    """Read identities from a JSON array or JSON Lines file.

    Raises:
        CommandError: If the file is unreadable, not JSON, or contains an entry
            that is not an identity object with an ``id``.
    """
    name = "stdin" if path == "-" else repr(path)
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read --identities {name}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"--identities {name} is not UTF-8 text: {exc}") from exc

    if text.lstrip().startswith("["):
        entries = list(_array_entries(text, name))
    else:
        entries = list(_json_lines(text, name))

    identities: list[Identity] = []
    for position, entry in entries:
        try:
            identities.append(Identity.from_json(entry))
        except ValueError as exc:
            raise CommandError(
                f"{position} of --identities {name} is not a Kratos identity ({exc}); export "
                "identities with GET /admin/identities"
            ) from exc
    return identities


def _array_entries(text: str, name: str) -> Iterator[tuple[str, Any]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"--identities {name} starts like a JSON array but is not valid JSON: {exc}"
        ) from exc
    for index, entry in enumerate(document):
        yield f"entry {index}", entry


def _json_lines(text: str, name: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise CommandError(
                f"line {number} of --identities {name} is not JSON ({exc}); pass a JSON array "
                "or JSON Lines with one identity object per line"
            ) from exc


def _row(decision: Decision) -> dict[str, Any]:
    return {
        "identity_id": decision.identity_id,
        "step": str(decision.step),
        "revoke_kinds": sorted(str(kind) for kind in decision.revoke_kinds),
        "days_inactive": decision.days_inactive,
        "last_activity_at": format_timestamp(decision.last_activity_at),
        "activity_source": str(decision.activity_source),
        "next_step": str(decision.next_step) if decision.next_step is not None else None,
        "next_step_at": _timestamp_or_none(decision.next_step_at),
        "exempt_reason": decision.exempt_reason,
        "role": decision.role,
        "account_type": decision.account_type,
        "findings": [f"{finding.code}: {finding.message}" for finding in decision.findings],
        "episode": decision.episode,
        "policy_name": decision.policy_name,
        "kind_episodes": {
            str(kind): episode for kind, episode in sorted(decision.kind_episodes.items())
        },
        "revoke_at": _timestamp_or_none(decision.revoke_at),
    }


def _write_csv(decisions: Sequence[Decision], stdout: TextIO) -> None:
    writer = csv.writer(stdout, lineterminator="\n")
    writer.writerow(COLUMNS)
    for decision in decisions:
        row = _row(decision)
        row["revoke_kinds"] = " ".join(row["revoke_kinds"])
        row["findings"] = " | ".join(row["findings"])
        row["kind_episodes"] = " ".join(
            f"{kind}={episode}" for kind, episode in row["kind_episodes"].items()
        )
        writer.writerow("" if row[column] is None else row[column] for column in COLUMNS)


def _write_table(decisions: Sequence[Decision], deactivated: Set[str], stdout: TextIO) -> None:
    header = ("IDENTITY", "DUE", "REVOKE", "DAYS", "LAST ACTIVITY", "NEXT", "NEXT AT", "NOTE")
    rows = [
        header,
        *(
            _table_row(decision, is_deactivated=decision.identity_id in deactivated)
            for decision in decisions
        ),
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        stdout.write("  ".join(cells).rstrip() + "\n")


def _table_row(decision: Decision, *, is_deactivated: bool) -> tuple[str, ...]:
    notes = []
    if decision.exempt_reason:
        notes.append(f"exempt: {decision.exempt_reason}")
    elif is_deactivated:
        notes.append(_DEACTIVATED_NOTE)
    if decision.findings:
        codes = ", ".join(sorted({finding.code for finding in decision.findings}))
        notes.append(f"findings: {codes}")
    note = "; ".join(notes)
    return (
        decision.identity_id,
        "-" if decision.step is Step.NONE else str(decision.step),
        ",".join(sorted(str(kind) for kind in decision.revoke_kinds)) or "-",
        str(decision.days_inactive),
        f"{_day(decision.last_activity_at)} ({decision.activity_source})",
        str(decision.next_step) if decision.next_step is not None else "-",
        _day(decision.next_step_at) if decision.next_step_at is not None else "-",
        note,
    )


def _summary(decisions: Sequence[Decision], policy: Policy, now: datetime) -> str:
    due = Counter(
        str(decision.step) if decision.step is not Step.NONE else "revoke"
        for decision in decisions
        if decision.has_action
    )
    exempt = sum(decision.is_exempt for decision in decisions)
    due_text = ", ".join(f"{step} {count:,}" for step, count in sorted(due.items()))
    return (
        f"{len(decisions):,} identities at {format_timestamp(now)} under policy "
        f"{policy.name}: {sum(due.values()):,} due ({due_text or 'none'}), {exempt:,} exempt"
    )


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def _timestamp_or_none(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


def _timestamp(value: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an RFC 3339 timestamp; pass one with a zone, such as "
            "2026-07-01T00:00:00Z"
        ) from None
