"""The demo's output: sweep reports, sent messages, audit events and the per-group table."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from population import Population

from stale_tokens import AuditEvent, Notification, SweepReport

__all__ = ["DemoAuditSink", "DemoNotifier", "print_groups", "print_report"]

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
class DemoNotifier:
    """A `Notifier` that keeps each message and renders it as the email a user would get."""

    sent: list[Notification] = field(default_factory=list)

    async def notify(self, notification: Notification) -> None:
        """Keep *notification*."""
        self.sent.append(notification)

    def print_summary(self) -> None:
        """Print how many messages went out per step, and the first warning in full."""
        steps = Counter(notification.step for notification in self.sent)
        print(f"   Messages sent: {_join(steps) or 'none'}.")
        warnings = [n for n in self.sent if n.step == "warn"]
        if warnings:
            print("   The first warning, as a user reads it:")
            for line in render_email(warnings[0]).splitlines():
                print(f"   | {line}")


def render_email(notification: Notification) -> str:
    """Write the warning email; every number comes from the policy's decision."""
    traits = notification.identity.traits if isinstance(notification.identity.traits, dict) else {}
    name = (traits.get("name") or {}).get("first", "there")
    deadline = notification.next_step_at
    when = "soon" if deadline is None else f"on {deadline:%d %B %Y at %H:%M} UTC"
    return (
        f"To: {traits.get('email', '(no address)')}\n"
        f"Subject: Your sessions will be signed out {when}\n"
        f"\n"
        f"Hi {name}, you have not used your account for {notification.days_inactive} days.\n"
        f"For your security we sign out every device {when}.\n"
        f"Sign in before then to keep your sessions; signing in later works too."
    )


@dataclass(slots=True)
class DemoAuditSink:
    """An `AuditSink` that keeps every event in memory."""

    events: list[AuditEvent] = field(default_factory=list)

    async def emit(self, event: AuditEvent) -> None:
        """Keep *event*."""
        self.events.append(event)

    def print_summary(self) -> None:
        """Print the number of events per type and outcome."""
        types = Counter(f"{event.type} ({event.outcome})" for event in self.events)
        print(f"   Audit events: {_join(types) or 'none'}.")


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
        f"Deferred: {len(report.deferred)}."
    )
    codes = Counter(item.finding.split(":", 1)[0] for item in report.findings)
    print(f"   Bad data found and handled: {_join(codes) or 'none'}.")


def print_groups(population: Population, events: list[AuditEvent]) -> None:
    """Print, per group, the sweep's actions next to the outcome the policy leads to."""
    actions: dict[str, Counter[str]] = defaultdict(Counter)
    group_of = {member.identity_id: member.group.name for member in population.members}
    for event in events:
        if event.outcome == "success" and event.type in _EVENT_NAMES:
            actions[group_of[event.identity_id]][_EVENT_NAMES[event.type]] += 1

    sizes = Counter(member.group.name for member in population.members)
    width = max(len(name) for name in sizes)
    print(f"   {'group':<{width}}  {'size':>5}  {'sweep did':<24}  expected")
    for name, size in sizes.items():
        group = next(m.group for m in population.members if m.group.name == name)
        did = _join(actions[name]) or "nothing"
        print(f"   {name:<{width}}  {size:>5}  {did:<24}  {group.expected}")


def _join(counts: object, names: dict[str, str] | None = None) -> str:
    items = dict(counts).items() if isinstance(counts, dict | Counter) else ()
    return ", ".join(f"{(names or {}).get(key, key)} {count}" for key, count in sorted(items))
