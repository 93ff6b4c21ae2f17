"""A realistic Kratos population for the demo, in the JSON shape of ``GET /admin/identities``.

Every identity belongs to a named group whose dates put it before, at or
past a threshold of the example policy (users: warning at day 83,
revocation at day 90; administrators: warning at day 5, revocation at day
7). The dates are real dates relative to now, so the emulator needs no
fake clock.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from stale_tokens.testing import EmulatedConsent, EmulatedSession, OryEmulator

__all__ = ["GROUPS", "Group", "Member", "Population", "seed_population"]

SESSION_LIFESPAN = timedelta(days=365)
"""Kratos ``session.lifespan`` of the demo, so that sessions from months ago are still valid."""

# Kratos writes UTC microseconds to the database but echoes in-memory times
# with nanoseconds and the server's zone, so clients must parse all three.
_OFFSETS = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))


@dataclass(frozen=True, slots=True)
class Group:
    """One kind of account in the population.

    Attributes:
        name: The group's name in the demo's output.
        share: Fraction of the population in this group.
        role: ``traits.role``; ``None`` leaves the trait out.
        idle_days: Range of days since the last recorded activity; ``None``
            means the account never had any (``metadata_admin`` stays null).
        created_days: Range of days since the identity was created.
        metadata_admin: Extra ``metadata_admin`` keys.
        has_session: Whether the identity has a Kratos session.
        has_consent: Whether the identity granted an OAuth2 client consent.
        oauth2_idle_days: Range of days since the OAuth2 tokens were last
            used, recorded in ``last_activity_by_kind``; ``None`` records none.
        sends_traffic: Whether the demo sends requests as these users.
        expected: What the example policy does to the group.
    """

    name: str
    share: float
    role: str | None
    idle_days: tuple[float, float] | None
    created_days: tuple[float, float] = (400, 1500)
    metadata_admin: dict[str, Any] = field(default_factory=dict)
    has_session: bool = False
    has_consent: bool = False
    oauth2_idle_days: tuple[float, float] | None = None
    sends_traffic: bool = False
    expected: str = "nothing"


GROUPS = (
    Group("active users", 0.6506, "user", (0, 75)),
    Group("active users sending traffic", 0.05, "user", (1, 75), has_session=True,
          has_consent=True, sends_traffic=True, expected="activity written, nothing else"),
    Group("returning users", 0.017, "user", (84, 150), has_session=True, sends_traffic=True,
          expected="activity written before the sweep, so not warned or revoked"),
    Group("active administrators", 0.017, "admin", (0, 4.5)),
    Group("users due a warning", 0.05, "user", (83.2, 89.5), has_session=True,
          expected="warned by email, sessions kept"),
    Group("administrators due a warning", 0.0025, "admin", (5.2, 6.5), has_session=True,
          expected="warned by email, sessions kept"),
    Group("stale users", 0.03, "user", (91, 500), has_session=True, has_consent=True,
          expected="sessions and OAuth2 tokens revoked"),
    Group("stale administrators", 0.0042, "admin", (8, 60), has_session=True, has_consent=True,
          expected="sessions and OAuth2 tokens revoked"),
    Group("active contractors (unknown role)", 0.021, "contractor", (0, 60)),
    Group("stale contractors (unknown role)", 0.0042, "contractor", (95, 300), has_session=True,
          expected="revoked as a user, finding unknown_role"),
    Group("active users without a role", 0.021, None, (0, 60)),
    Group("stale users without a role", 0.0042, None, (95, 300), has_session=True,
          expected="revoked as a user, finding missing_role"),
    Group("service accounts", 0.017, "user", (200, 1000), has_session=True,
          metadata_admin={"account_type": "service"}, expected="exempt"),
    Group("trusted integrations", 0.0085, "user", (100, 900),
          metadata_admin={"account_type": "trusted_integration"}, expected="exempt"),
    Group("service role", 0.0042, "service", (500, 1200), expected="exempt"),
    Group("opted out", 0.0127, "user", (100, 400), has_session=True,
          metadata_admin={"skip_stale_revocation": True}, expected="exempt"),
    Group("never active, new", 0.063, "user", None, created_days=(1, 60)),
    Group("never active, old", 0.0127, "user", None, created_days=(120, 400), has_session=True,
          expected="revoked, counted from created_at"),
    Group("OAuth2 grant unused", 0.0085, "user", (2, 30), has_session=True, has_consent=True,
          oauth2_idle_days=(200, 300), expected="OAuth2 tokens revoked, browser session kept"),
    Group("unparseable activity", 0.0017, "user", (0, 0), has_session=True,
          metadata_admin={"last_activity_at": "yesterday"},
          expected="revoked from created_at, finding invalid_timestamp"),
)  # fmt: skip


@dataclass(slots=True)
class Member:
    """One seeded identity, with the credentials the demo holds for it."""

    group: Group
    identity_id: str
    session: EmulatedSession | None = None
    consent: EmulatedConsent | None = None


@dataclass(slots=True)
class Population:
    """The seeded identities, by group."""

    members: list[Member]

    def of(self, group_name: str) -> list[Member]:
        """Return the members of the group called *group_name*."""
        return [member for member in self.members if member.group.name == group_name]

    def where(self, *, expected_prefix: str) -> list[Member]:
        """Return the members whose group's expected outcome starts with *expected_prefix*."""
        return [m for m in self.members if m.group.expected.startswith(expected_prefix)]

    def __len__(self) -> int:
        return len(self.members)


def seed_population(emulator: OryEmulator, *, size: int, seed: int) -> Population:
    """Load about *size* identities into *emulator*, with their sessions and consents.

    Every group gets at least one identity, so the total can exceed *size*
    slightly for a small *size*.
    """
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets.
    now = datetime.now(UTC)
    plan = [(group, max(1, round(group.share * size))) for group in GROUPS]

    exports: list[dict[str, Any]] = []
    members: list[Member] = []
    for group, count in plan:
        for number in range(count):
            identity = _identity(group, number, rng, now)
            exports.append(identity)
            members.append(Member(group=group, identity_id=identity["id"]))
    emulator.kratos.load_identities(exports)

    for member, identity in zip(members, exports, strict=True):
        _add_credentials(emulator, member, identity, rng, now)
    return Population(members)


def _identity(group: Group, number: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    created = now - timedelta(days=rng.uniform(*group.created_days))
    traits: dict[str, Any] = {
        "email": f"{_slug(group.name)}-{number}@example.org",
        "name": {"first": rng.choice(_FIRST_NAMES), "last": rng.choice(_LAST_NAMES)},
    }
    if group.role is not None:
        traits["role"] = group.role

    metadata_admin: dict[str, Any] | None = None
    if group.idle_days is not None:
        last_activity = max(created, now - timedelta(days=rng.uniform(*group.idle_days)))
        metadata_admin = {"last_activity_at": _kratos_time(last_activity, rng)}
        by_kind = {"browser_session": metadata_admin["last_activity_at"]}
        if group.oauth2_idle_days is not None:
            oauth2_at = now - timedelta(days=rng.uniform(*group.oauth2_idle_days))
            by_kind["oauth2"] = _kratos_time(max(created, oauth2_at), rng)
        metadata_admin["last_activity_by_kind"] = by_kind
        if "last_activity_at" in group.metadata_admin:
            # A bad value written by some other tool, without a per-kind record.
            del metadata_admin["last_activity_by_kind"]
        metadata_admin.update(group.metadata_admin)

    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "schema_id": "default",
        "schema_url": "http://127.0.0.1:4433/schemas/ZGVmYXVsdA",
        "state": "active",
        "state_changed_at": _kratos_time(created, rng),
        "traits": traits,
        "metadata_public": None,
        "metadata_admin": metadata_admin,
        "organization_id": None,
        "created_at": _kratos_time(created, rng),
        "updated_at": _kratos_time(created, rng),
    }


def _add_credentials(
    emulator: OryEmulator,
    member: Member,
    identity: dict[str, Any],
    rng: random.Random,
    now: datetime,
) -> None:
    group = member.group
    if group.has_session:
        # Signed in when last active, with "remember me": the session is still valid.
        signed_in = _latest_activity(identity) or now - timedelta(days=rng.uniform(100, 300))
        member.session = emulator.kratos.create_session(
            member.identity_id, authenticated_at=signed_in, expires_at=now + SESSION_LIFESPAN
        )
    if group.has_consent:
        member.consent = emulator.hydra.grant_consent(member.identity_id)
        emulator.hydra.create_login_session(member.identity_id)


def _latest_activity(identity: dict[str, Any]) -> datetime | None:
    metadata_admin = identity["metadata_admin"] or {}
    try:
        return datetime.fromisoformat(metadata_admin["last_activity_at"])
    except (KeyError, ValueError):
        return None


def _kratos_time(moment: datetime, rng: random.Random) -> str:
    """Format *moment* as Kratos may: 0, 6 or 9 fraction digits, ``Z`` or an offset."""
    local = moment.astimezone(rng.choice(_OFFSETS))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    digits = rng.choice((0, 6, 9))
    if digits == 6:
        text += f".{local.microsecond:06d}"
    elif digits == 9:
        text += f".{local.microsecond:06d}{rng.randrange(1, 1000):03d}"
    offset = local.strftime("%z")
    return text + ("Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


_FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Donald")
_LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Knuth")
