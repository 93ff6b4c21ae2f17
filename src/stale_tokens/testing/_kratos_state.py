"""The in-memory Kratos database: identities, sessions and identity schemas."""

from __future__ import annotations

import base64
import bisect
import copy
import random
import re
import string
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from .._timestamps import require_aware
from ._gotime import format_go_time, parse_keeping_offset

__all__ = [
    "DEFAULT_SCHEMA_ID",
    "DEFAULT_SESSION_LIFESPAN",
    "IDENTITY_STATES",
    "NIL_UUID",
    "CredentialsView",
    "EmulatedKratos",
    "EmulatedSession",
    "IdentityRecord",
    "SchemaValidator",
    "SessionRecord",
    "canonical_uuid",
    "validate_traits_object",
]

NIL_UUID = "00000000-0000-0000-0000-000000000000"
IDENTITY_STATES = ("active", "inactive")
DEFAULT_SCHEMA_ID = "default"
# Kratos's default session.lifespan.
DEFAULT_SESSION_LIFESPAN = timedelta(hours=24)

_CANONICAL_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")

SchemaValidator = Callable[[Any], None]
"""Checks an identity's traits; raises `ValueError` whose text becomes the 400 reason."""

_T = TypeVar("_T")

CredentialsView = Literal["omit", "without_config", "with_config"]


def validate_traits_object(traits: Any) -> None:
    """Accept any JSON object as traits, which every identity schema requires.

    Raises:
        ValueError: If *traits* is not a JSON object.
    """
    if not isinstance(traits, dict):
        raise ValueError(
            f"I[#/traits] S[#/properties/traits/type] expected object, but got {_json_type(traits)}"
        )


def canonical_uuid(value: str) -> str | None:
    """Return *value* as a lower-case hyphenated UUID, or ``None`` if it is not one."""
    if _CANONICAL_UUID.match(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


@dataclass(slots=True)
class IdentityRecord:
    """One row of Kratos's ``identities`` table with its addresses and credentials."""

    id: str
    schema_id: str
    state: str
    traits: Any
    metadata_public: Any
    metadata_admin: Any
    created_at: datetime
    updated_at: datetime
    state_changed_at: datetime | None = None
    external_id: str | None = None
    organization_id: str | None = None
    credentials: dict[str, Any] = field(default_factory=dict)
    verifiable_addresses: list[Any] = field(default_factory=list)
    recovery_addresses: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class SessionRecord:
    """One row of Kratos's ``sessions`` table."""

    id: str
    token: str
    cookie: str
    identity_id: str
    active: bool
    authenticated_at: datetime
    issued_at: datetime
    expires_at: datetime
    created_at: datetime
    methods: tuple[str, ...]
    completed_at_nanoseconds: int


@dataclass(frozen=True, slots=True)
class EmulatedSession:
    """A Kratos session created by `EmulatedKratos.create_session`.

    Attributes:
        id: The session's UUID.
        token: The session token, for the ``X-Session-Token`` header or
            ``Authorization: Bearer``.
        cookie: The value of the ``ory_kratos_session`` cookie.
        identity_id: The identity the session belongs to.
        expires_at: When the session expires.
    """

    id: str
    token: str
    cookie: str
    identity_id: str
    expires_at: datetime


class EmulatedKratos:
    """The Kratos half of `OryEmulator`: seed identities and sessions, read them back.

    Reach it as ``emulator.kratos``; build it through `OryEmulator` only.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        random_source: random.Random,
        public_url: Callable[[], str],
    ) -> None:
        self._clock = clock
        self._random = random_source
        self._public_url = public_url
        self._identities: dict[str, IdentityRecord] = {}
        # Keyset pages are a bisect into _sorted_ids. New ids wait in
        # _unsorted_ids and are merged before the next read, so seeding
        # 100,000 identities costs one sort rather than 100,000 list inserts.
        self._sorted_ids: list[str] = []
        self._unsorted_ids: list[str] = []
        self._sessions: dict[str, SessionRecord] = {}
        self._sessions_by_identity: dict[str, list[str]] = {}
        self._session_ids_by_token: dict[str, str] = {}
        self._session_ids_by_cookie: dict[str, str] = {}
        self._schemas: dict[str, SchemaValidator] = {DEFAULT_SCHEMA_ID: validate_traits_object}

    def add_schema(self, schema_id: str, validator: SchemaValidator | None = None) -> None:
        """Register an identity schema, or replace the validator of a known one.

        Kratos validates an identity's traits against its schema on every
        PATCH and PUT, so a validator set after seeding makes the next write
        fail the way a schema change does on a real server.

        Args:
            schema_id: The ``schema_id`` identities refer to.
            validator: Raises `ValueError` for invalid traits; its text becomes
                the 400 reason. ``None`` accepts any JSON object.
        """
        self._schemas[schema_id] = validator or validate_traits_object

    def add_identity(
        self,
        *,
        id: str | None = None,  # noqa: A002 - the Kratos field name.
        traits: Any = None,
        schema_id: str = DEFAULT_SCHEMA_ID,
        state: str = "active",
        metadata_admin: Any = None,
        metadata_public: Any = None,
        created_at: datetime | str | None = None,
        external_id: str | None = None,
        credentials: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Insert an identity directly into the store, as an import would.

        The state is not validated, so tests can seed a state that a newer
        Kratos or Ory Network might send. An unknown *schema_id* is registered
        with the default validator.

        Args:
            id: A UUID; a fresh one from the seeded random source when ``None``.
            traits: The traits; ``{}`` when ``None``.
            created_at: An aware datetime or an RFC 3339 string (its offset is
                kept when rendered); the clock's now when ``None``.

        Returns:
            The identity exactly as ``GET /admin/identities/{id}`` returns it.

        Raises:
            ValueError: If *id* is not a UUID or already exists, or
                *created_at* is naive or not RFC 3339.
        """
        identity_id = self._new_uuid() if id is None else canonical_uuid(id)
        if identity_id is None:
            raise ValueError(f"identity id {id!r} is not a UUID; pass a UUID or None")
        if identity_id in self._identities:
            raise ValueError(f"identity {identity_id} already exists; pass another id")

        created = self._moment(created_at, "created_at")
        self._schemas.setdefault(schema_id, validate_traits_object)
        record = IdentityRecord(
            id=identity_id,
            schema_id=schema_id,
            state=state,
            traits={} if traits is None else _copy(traits),
            metadata_public=_copy(metadata_public),
            metadata_admin=_copy(metadata_admin),
            created_at=created,
            updated_at=created,
            state_changed_at=created,
            external_id=external_id,
            credentials=_copy(dict(credentials or {})),
        )
        self.store(record)
        return self.identity_json(identity_id)

    def load_identities(self, export: Iterable[Mapping[str, Any]]) -> int:
        """Insert identities from Kratos JSON, such as a saved ``GET /admin/identities``.

        Timestamps keep their UTC offset and fraction (to the microsecond),
        and fields the emulator does not model are ignored.

        Returns:
            How many identities were inserted.

        Raises:
            ValueError: If an entry has no UUID ``id``, repeats an existing id,
                or carries a timestamp that is not RFC 3339.
        """
        count = 0
        for entry in export:
            record = self._record_from_export(entry)
            if record.id in self._identities:
                raise ValueError(f"identity {record.id} already exists; remove the duplicate")
            self._schemas.setdefault(record.schema_id, validate_traits_object)
            self.store(record)
            count += 1
        return count

    def create_session(
        self,
        identity_id: str,
        *,
        authenticated_at: datetime | None = None,
        expires_at: datetime | None = None,
        methods: Iterable[str] = ("password",),
    ) -> EmulatedSession:
        """Create a session for an identity, as a completed login flow does.

        Args:
            identity_id: An identity that exists.
            authenticated_at: When the login happened; the clock's now when ``None``.
            expires_at: When the session expires; *authenticated_at* plus
                `DEFAULT_SESSION_LIFESPAN` (24 hours) when ``None``.
            methods: The authentication methods, such as ``"password"``.

        Raises:
            KeyError: If the identity does not exist.
            ValueError: If a datetime is naive.
        """
        key = canonical_uuid(identity_id)
        if key is None or key not in self._identities:
            raise KeyError(f"identity {identity_id} does not exist; add it first")

        authenticated = self._moment(authenticated_at, "authenticated_at")
        expires = (
            authenticated + DEFAULT_SESSION_LIFESPAN
            if expires_at is None
            else self._moment(expires_at, "expires_at")
        )
        session = SessionRecord(
            id=self._new_uuid(),
            token=f"ory_st_{self._random_text(32)}",
            cookie=self._random_text(120, alphabet=string.ascii_letters + string.digits + "-_"),
            identity_id=key,
            active=True,
            authenticated_at=authenticated,
            issued_at=authenticated,
            expires_at=expires,
            created_at=self._clock(),
            methods=tuple(methods),
            completed_at_nanoseconds=self._random.randrange(1, 1000),
        )
        self._sessions[session.id] = session
        self._sessions_by_identity.setdefault(key, []).append(session.id)
        self._session_ids_by_token[session.token] = session.id
        self._session_ids_by_cookie[session.cookie] = session.id
        return EmulatedSession(
            id=session.id,
            token=session.token,
            cookie=session.cookie,
            identity_id=key,
            expires_at=expires,
        )

    def identity_json(self, identity_id: str) -> dict[str, Any]:
        """Return the identity exactly as ``GET /admin/identities/{id}`` would.

        Raises:
            KeyError: If the identity does not exist.
        """
        record = self.get(identity_id)
        if record is None:
            raise KeyError(f"identity {identity_id} does not exist")
        return _copy(self.render_identity(record, credentials="without_config"))

    def session_ids(self, identity_id: str) -> list[str]:
        """Return the ids of the identity's stored sessions, newest first."""
        key = canonical_uuid(identity_id) or identity_id
        sessions = [self._sessions[s] for s in self._sessions_by_identity.get(key, [])]
        sessions.sort(key=lambda session: session.created_at, reverse=True)
        return [session.id for session in sessions]

    def __len__(self) -> int:
        return len(self._identities)

    # The methods below serve the routes; tests reach state through the ones above.

    @property
    def now(self) -> datetime:
        return self._clock()

    @property
    def public_url(self) -> str:
        return self._public_url()

    def get(self, identity_id: str) -> IdentityRecord | None:
        key = canonical_uuid(identity_id)
        return None if key is None else self._identities.get(key)

    def store(self, record: IdentityRecord) -> None:
        """Write the whole row, inserting it when new: the last writer wins."""
        if record.id not in self._identities:
            self._unsorted_ids.append(record.id)
        self._identities[record.id] = record

    def delete(self, identity_id: str) -> bool:
        """Delete the identity and cascade to its sessions; ``False`` if it did not exist."""
        if self._identities.pop(identity_id, None) is None:
            return False
        sorted_ids = self._ordered_ids()
        del sorted_ids[bisect.bisect_left(sorted_ids, identity_id)]
        self.delete_sessions(identity_id)
        return True

    def iter_ids_after(self, token: str) -> Iterator[str]:
        """Yield identity ids greater than *token* in ascending order."""
        sorted_ids = self._ordered_ids()
        for position in range(bisect.bisect_right(sorted_ids, token), len(sorted_ids)):
            yield sorted_ids[position]

    def ids_after(self, token: str, limit: int) -> list[str]:
        """Return up to *limit* identity ids greater than *token*, ascending."""
        sorted_ids = self._ordered_ids()
        start = bisect.bisect_right(sorted_ids, token)
        return sorted_ids[start : start + limit]

    def all_ids(self) -> list[str]:
        """Return every identity id in ascending order, as Kratos lists them."""
        return list(self._ordered_ids())

    def _ordered_ids(self) -> list[str]:
        if self._unsorted_ids:
            self._sorted_ids.extend(self._unsorted_ids)
            self._unsorted_ids.clear()
            self._sorted_ids.sort()
        return self._sorted_ids

    def has_schema(self, schema_id: str) -> bool:
        return schema_id in self._schemas

    def check_traits(self, schema_id: str, traits: Any) -> str | None:
        """Return the 400 reason for invalid traits or an unknown schema, else ``None``."""
        validator = self._schemas.get(schema_id)
        if validator is None:
            return f"Unable to find JSON Schema ID: {schema_id}"
        try:
            validator(traits)
        except ValueError as exc:
            return str(exc)
        return None

    def external_id_owner(self, external_id: str) -> str | None:
        for record in self._identities.values():
            if record.external_id == external_id:
                return record.id
        return None

    def sessions_of(self, identity_id: str) -> list[SessionRecord]:
        return [self._sessions[s] for s in self.session_ids(identity_id)]

    def delete_sessions(self, identity_id: str) -> int:
        """Hard-delete every session row of the identity; return how many existed."""
        session_ids = self._sessions_by_identity.pop(identity_id, [])
        for session_id in session_ids:
            session = self._sessions.pop(session_id)
            self._session_ids_by_token.pop(session.token, None)
            self._session_ids_by_cookie.pop(session.cookie, None)
        return len(session_ids)

    def session_by_token(self, token: str) -> SessionRecord | None:
        session_id = self._session_ids_by_token.get(token)
        return None if session_id is None else self._sessions.get(session_id)

    def session_by_cookie(self, cookie: str) -> SessionRecord | None:
        session_id = self._session_ids_by_cookie.get(cookie)
        return None if session_id is None else self._sessions.get(session_id)

    def is_session_active(self, session: SessionRecord) -> bool:
        """Compute ``active`` as Kratos renders it: row flag, expiry and identity state."""
        identity = self._identities.get(session.identity_id)
        return (
            session.active
            and session.expires_at > self._clock()
            and identity is not None
            and identity.state == "active"
        )

    def schema_url(self, schema_id: str) -> str:
        encoded = base64.urlsafe_b64encode(schema_id.encode()).rstrip(b"=").decode()
        return f"{self._public_url().rstrip('/')}/schemas/{encoded}"

    def render_identity(
        self,
        record: IdentityRecord,
        *,
        admin: bool = True,
        credentials: CredentialsView = "omit",
        state_changed_nanoseconds: int = 0,
    ) -> dict[str, Any]:
        """Render an identity with the fields, nulls and omissions of Kratos v26.

        The result shares its traits and metadata with the stored row, so
        serialise or copy it before anything can change either.

        Args:
            admin: Include ``metadata_admin`` (admin endpoints); whoami and
                session listings leave it out.
            credentials: Leave credentials out, include them without their
                ``config``, or include everything (the document PATCH edits).
            state_changed_nanoseconds: Extra digits for a ``state_changed_at``
                that a write just set in memory, which Go echoes to the nanosecond.
        """
        body: dict[str, Any] = {"id": record.id}
        if credentials != "omit" and record.credentials:
            body["credentials"] = _render_credentials(
                record.credentials, with_config=credentials == "with_config"
            )
        body["schema_id"] = record.schema_id
        body["schema_url"] = self.schema_url(record.schema_id)
        body["state"] = record.state
        if record.state_changed_at is not None:
            body["state_changed_at"] = format_go_time(
                record.state_changed_at, nanoseconds=state_changed_nanoseconds
            )
        body["traits"] = record.traits
        if record.verifiable_addresses:
            body["verifiable_addresses"] = record.verifiable_addresses
        if record.recovery_addresses:
            body["recovery_addresses"] = record.recovery_addresses
        body["metadata_public"] = record.metadata_public
        if admin:
            body["metadata_admin"] = record.metadata_admin
        body["created_at"] = format_go_time(record.created_at)
        body["updated_at"] = format_go_time(record.updated_at)
        body["organization_id"] = record.organization_id
        if record.external_id:
            body["external_id"] = record.external_id
        return body

    def render_session(self, session: SessionRecord) -> dict[str, Any]:
        """Render a session with its identity as whoami and the admin listing do."""
        identity = self._identities.get(session.identity_id)
        completed_at = format_go_time(
            session.authenticated_at, nanoseconds=session.completed_at_nanoseconds
        )
        return {
            "id": session.id,
            "active": self.is_session_active(session),
            "expires_at": format_go_time(session.expires_at),
            "authenticated_at": format_go_time(session.authenticated_at),
            "authenticator_assurance_level": "aal1",
            "authentication_methods": [
                {"method": method, "aal": "aal1", "completed_at": completed_at}
                for method in session.methods
            ],
            "issued_at": format_go_time(session.issued_at),
            "identity": None if identity is None else self.render_identity(identity, admin=False),
            "devices": [],
        }

    def _record_from_export(self, entry: Mapping[str, Any]) -> IdentityRecord:
        identity_id = canonical_uuid(str(entry.get("id", "")))
        if identity_id is None:
            raise ValueError(f"exported identity has no UUID id: {entry.get('id')!r}")
        now = self._clock()
        created = _optional_moment(entry.get("created_at")) or now
        changed = entry.get("state_changed_at")
        return IdentityRecord(
            id=identity_id,
            schema_id=str(entry.get("schema_id") or DEFAULT_SCHEMA_ID),
            state=str(entry.get("state") or "active"),
            traits=_copy(entry.get("traits", {})),
            metadata_public=_copy(entry.get("metadata_public")),
            metadata_admin=_copy(entry.get("metadata_admin")),
            created_at=created,
            updated_at=_optional_moment(entry.get("updated_at")) or created,
            state_changed_at=_optional_moment(changed),
            external_id=entry.get("external_id") or None,
            organization_id=entry.get("organization_id") or None,
            credentials=_copy(dict(entry.get("credentials") or {})),
            verifiable_addresses=_copy(list(entry.get("verifiable_addresses") or [])),
            recovery_addresses=_copy(list(entry.get("recovery_addresses") or [])),
        )

    def _moment(self, value: datetime | str | None, name: str) -> datetime:
        if value is None:
            return self._clock()
        if isinstance(value, str):
            return parse_keeping_offset(value)
        require_aware(value, name)
        return value

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def _random_text(
        self, length: int, alphabet: str = string.ascii_letters + string.digits
    ) -> str:
        return "".join(self._random.choices(alphabet, k=length))


def _copy(value: _T) -> _T:
    """Copy JSON data, several times faster than `copy.deepcopy` for bulk seeding."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [_copy(item) for item in value]  # type: ignore[return-value]
    return value


def _optional_moment(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"timestamp {value!r} is not an RFC 3339 string")
    return parse_keeping_offset(value)


def _render_credentials(credentials: Mapping[str, Any], *, with_config: bool) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for kind, credential in credentials.items():
        item = copy.deepcopy(dict(credential)) if isinstance(credential, Mapping) else {}
        item.setdefault("type", kind)
        item.setdefault("identifiers", None)
        item.setdefault("version", 0)
        if not with_config:
            item.pop("config", None)
        rendered[kind] = item
    return rendered


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
