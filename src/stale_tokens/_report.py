"""The outcome of one sweep, `SweepReport`, and `SweepAbortedError` for a sweep that stopped."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._audit import AuditEvent
from ._errors import StaleTokensError
from ._timestamps import format_timestamp

__all__ = [
    "ActedIdentity",
    "FailedIdentity",
    "IdentityFinding",
    "SkippedIdentity",
    "SweepAbortedError",
    "SweepReport",
]

DEFAULT_MAX_LISTED_FINDINGS = 1000


@dataclass(frozen=True, slots=True)
class ActedIdentity:
    """An identity a step was carried out on (or would have been, in a dry run)."""

    identity_id: str
    step: str
    days_inactive: int


@dataclass(frozen=True, slots=True)
class SkippedIdentity:
    """An identity that was due for a step but was left alone, and why."""

    identity_id: str
    step: str
    reason: str


@dataclass(frozen=True, slots=True)
class FailedIdentity:
    """An identity whose step failed after the client's retries.

    ``error`` is the exception's class and message; API keys, cookies and
    tokens never appear in the library's messages.
    """

    identity_id: str
    step: str
    error: str


@dataclass(frozen=True, slots=True)
class IdentityFinding:
    """Bad data the policy met on one identity, and the rule it applied."""

    identity_id: str
    finding: str


@dataclass(frozen=True, slots=True)
class SweepReport:
    """The outcome of one sweep.

    Attributes:
        run_id: Unique id of the run, also written into claim markers.
        policy_name: The policy the run applied.
        dry_run: ``True`` when nothing was written; the counts are then those
            a real run would have reached.
        started_at: The ``now`` the policy decided against (aware UTC).
        duration: Seconds from start to end, by the injected clock.
        identities_seen: Identities listed and decided, never-active ones included.
        due: Identities per step the plan found due (step value -> count).
        done: Steps carried out per step value (would have been carried
            out, in a dry run).
        exempt: Identities per exemption reason (service accounts, opt-outs).
        acted: Each step carried out, with its identity, sorted by identity
            id; the same steps that `done` counts.
        skipped: Due identities left alone in the act phase, with the reason.
        deferred: Ids of identities due for a destructive step beyond the
            per-run cap; the next run picks them up.
        failures: Identities whose step failed, with the error.
        findings: Bad-data findings, at most ``DEFAULT_MAX_LISTED_FINDINGS``.
        findings_total: All findings, including those not listed.
        suspensions_cleared: Suspension markers removed because the user came back.
        audit_events: In a dry run, the events a real run would emit; empty
            otherwise, because a real run sends them to the audit sink.
        audit_failures: Events the audit sink raised on.
        aborted: ``True`` when the run stopped before acting.
        abort_reason: Why it stopped, or ``None``.
    """

    run_id: str
    policy_name: str
    dry_run: bool
    started_at: datetime
    duration: float
    identities_seen: int
    due: Mapping[str, int]
    done: Mapping[str, int]
    exempt: Mapping[str, int]
    acted: tuple[ActedIdentity, ...]
    skipped: tuple[SkippedIdentity, ...]
    deferred: tuple[str, ...]
    failures: tuple[FailedIdentity, ...]
    findings: tuple[IdentityFinding, ...]
    findings_total: int
    suspensions_cleared: int
    audit_events: tuple[AuditEvent, ...]
    audit_failures: int
    aborted: bool
    abort_reason: str | None

    @property
    def is_clean(self) -> bool:
        """``True`` when the run was not aborted and no identity failed."""
        return not self.aborted and not self.failures

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return {
            "run_id": self.run_id,
            "policy_name": self.policy_name,
            "dry_run": self.dry_run,
            "started_at": format_timestamp(self.started_at),
            "duration_seconds": self.duration,
            "identities_seen": self.identities_seen,
            "due": dict(self.due),
            "done": dict(self.done),
            "exempt": dict(self.exempt),
            "acted": [_as_dict(item) for item in self.acted],
            "skipped": [_as_dict(item) for item in self.skipped],
            "deferred": list(self.deferred),
            "failures": [_as_dict(item) for item in self.failures],
            "findings": [_as_dict(item) for item in self.findings],
            "findings_total": self.findings_total,
            "suspensions_cleared": self.suspensions_cleared,
            "audit_events": [event.to_dict() for event in self.audit_events],
            "audit_failures": self.audit_failures,
            "aborted": self.aborted,
            "abort_reason": self.abort_reason,
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """Return `to_dict` encoded as JSON."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)


class SweepAbortedError(StaleTokensError):
    """Raised when a sweep stopped before acting on any identity.

    That happens when the circuit breaker tripped, or when another sweep
    has taken the `SweepLock`. ``report`` contains what the plan found, so
    the numbers that tripped the breaker can be checked.

    Attributes:
        report: The report of the aborted run, with ``aborted=True``.
    """

    def __init__(self, report: SweepReport) -> None:
        super().__init__(f"sweep {report.run_id} aborted: {report.abort_reason}")
        self.report = report


def _as_dict(
    item: ActedIdentity | SkippedIdentity | FailedIdentity | IdentityFinding,
) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.__slots__}


@dataclass(slots=True)
class ReportBuilder:
    """Mutable tallies of a running sweep, frozen into a `SweepReport` at the end."""

    run_id: str
    policy_name: str
    dry_run: bool
    started_at: datetime
    max_listed_findings: int = DEFAULT_MAX_LISTED_FINDINGS
    identities_seen: int = 0
    due: Counter[str] = field(default_factory=Counter)
    done: Counter[str] = field(default_factory=Counter)
    exempt: Counter[str] = field(default_factory=Counter)
    acted: list[ActedIdentity] = field(default_factory=list)
    skipped: list[SkippedIdentity] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    failures: list[FailedIdentity] = field(default_factory=list)
    findings: list[IdentityFinding] = field(default_factory=list)
    findings_total: int = 0
    suspensions_cleared: int = 0
    audit_events: list[AuditEvent] = field(default_factory=list)
    audit_failures: int = 0
    abort_reason: str | None = None

    def add_finding(self, identity_id: str, finding: str) -> None:
        self.findings_total += 1
        if len(self.findings) < self.max_listed_findings:
            self.findings.append(IdentityFinding(identity_id, finding))

    def build(self, *, duration: float) -> SweepReport:
        return SweepReport(
            run_id=self.run_id,
            policy_name=self.policy_name,
            dry_run=self.dry_run,
            started_at=self.started_at,
            duration=duration,
            identities_seen=self.identities_seen,
            due=dict(sorted(self.due.items())),
            done=dict(sorted(self.done.items())),
            exempt=dict(sorted(self.exempt.items())),
            acted=tuple(sorted(self.acted, key=lambda item: (item.identity_id, item.step))),
            skipped=tuple(sorted(self.skipped, key=lambda item: item.identity_id)),
            deferred=tuple(sorted(self.deferred)),
            failures=tuple(sorted(self.failures, key=lambda item: item.identity_id)),
            findings=tuple(self.findings),
            findings_total=self.findings_total,
            suspensions_cleared=self.suspensions_cleared,
            audit_events=tuple(self.audit_events),
            audit_failures=self.audit_failures,
            aborted=self.abort_reason is not None,
            abort_reason=self.abort_reason,
        )
