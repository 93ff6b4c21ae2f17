"""The in-memory Hydra database: consent sessions, their tokens, login sessions."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

__all__ = ["DEFAULT_ACCESS_TOKEN_LIFESPAN", "EmulatedConsent", "EmulatedHydra"]

# Hydra's default ttl.access_token.
DEFAULT_ACCESS_TOKEN_LIFESPAN = timedelta(hours=1)
# Hydra's default ttl.refresh_token.
DEFAULT_REFRESH_TOKEN_LIFESPAN = timedelta(hours=720)


@dataclass(frozen=True, slots=True)
class EmulatedConsent:
    """A granted OAuth2 consent and the tokens issued under it.

    Attributes:
        consent_request_id: The consent challenge id, which Hydra uses as the
            request id of every token issued under the consent.
        subject: The subject (the Kratos identity id, usually).
        client_id: The OAuth2 client.
        access_token: An opaque access token (``ory_at_...``).
        refresh_token: An opaque refresh token (``ory_rt_...``).
    """

    consent_request_id: str
    subject: str
    client_id: str
    access_token: str
    refresh_token: str


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["access_token", "refresh_token"]
    consent_request_id: str
    subject: str
    client_id: str
    scope: str
    issued_at: datetime
    expires_at: datetime


class EmulatedHydra:
    """The Hydra half of `OryEmulator`: grant consents, open login sessions, check tokens.

    Reach it as ``emulator.hydra``; build it through `OryEmulator` only.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        random_source: random.Random,
        issuer: Callable[[], str],
    ) -> None:
        self._clock = clock
        self._random = random_source
        self._issuer = issuer
        self._consents: dict[str, EmulatedConsent] = {}
        self._tokens: dict[str, _Token] = {}
        self._login_sessions: dict[str, str] = {}

    def grant_consent(
        self, subject: str, *, client_id: str = "example-client", scope: str = "openid offline"
    ) -> EmulatedConsent:
        """Record a consent and issue an access and a refresh token under it.

        Args:
            subject: Whose consent it is.
            client_id: The OAuth2 client that received the tokens.
            scope: Space-separated granted scopes.
        """
        now = self._clock()
        consent = EmulatedConsent(
            consent_request_id=self._new_id(),
            subject=subject,
            client_id=client_id,
            access_token=f"ory_at_{self._random_text(43)}",
            refresh_token=f"ory_rt_{self._random_text(43)}",
        )
        self._consents[consent.consent_request_id] = consent
        self._tokens[consent.access_token] = _Token(
            kind="access_token",
            consent_request_id=consent.consent_request_id,
            subject=subject,
            client_id=client_id,
            scope=scope,
            issued_at=now,
            expires_at=now + DEFAULT_ACCESS_TOKEN_LIFESPAN,
        )
        self._tokens[consent.refresh_token] = replace(
            self._tokens[consent.access_token],
            kind="refresh_token",
            expires_at=now + DEFAULT_REFRESH_TOKEN_LIFESPAN,
        )
        return consent

    def create_login_session(self, subject: str) -> str:
        """Open a Hydra login (authentication) session and return its ``sid``."""
        sid = self._new_id()
        self._login_sessions[sid] = subject
        return sid

    def is_token_active(self, token: str) -> bool:
        """Tell whether introspection would report *token* as active."""
        found = self._tokens.get(token)
        return found is not None and found.expires_at > self._clock()

    def consents_of(self, subject: str) -> list[EmulatedConsent]:
        """Return the subject's consents that have not been revoked."""
        return [consent for consent in self._consents.values() if consent.subject == subject]

    def login_session_ids(self, subject: str) -> list[str]:
        """Return the ``sid`` of each login session the subject still has."""
        return [sid for sid, owner in self._login_sessions.items() if owner == subject]

    def revoke_consents(
        self,
        *,
        consent_request_id: str | None = None,
        subject: str | None = None,
        client_id: str | None = None,
    ) -> int:
        """Delete the matching consents and every token issued under them."""
        doomed = [
            consent.consent_request_id
            for consent in self._consents.values()
            if (consent_request_id is None or consent.consent_request_id == consent_request_id)
            and (subject is None or consent.subject == subject)
            and (client_id is None or consent.client_id == client_id)
        ]
        for request_id in doomed:
            del self._consents[request_id]
        revoked = set(doomed)
        for token in [
            t for t, found in self._tokens.items() if found.consent_request_id in revoked
        ]:
            del self._tokens[token]
        return len(doomed)

    def revoke_login_sessions(self, *, subject: str | None = None, sid: str | None = None) -> int:
        """Delete login sessions by ``sid`` (which wins) or by subject; tokens stay valid."""
        if sid is not None:
            return 1 if self._login_sessions.pop(sid, None) is not None else 0
        doomed = [s for s, owner in self._login_sessions.items() if owner == subject]
        for session_id in doomed:
            del self._login_sessions[session_id]
        return len(doomed)

    def introspect(self, token: str) -> dict[str, Any]:
        """Return the RFC 7662 introspection body Hydra sends for *token*."""
        found = self._tokens.get(token)
        if found is None or found.expires_at <= self._clock():
            return {"active": False}
        body: dict[str, Any] = {
            "active": True,
            "sub": found.subject,
            "client_id": found.client_id,
            "scope": found.scope,
            "iat": int(found.issued_at.timestamp()),
            "exp": int(found.expires_at.timestamp()),
            "iss": self._issuer(),
            "token_use": found.kind,
        }
        if found.kind == "access_token":
            body["token_type"] = "Bearer"  # noqa: S105 - a token type, not a secret.
        return body

    def _new_id(self) -> str:
        return uuid.UUID(int=self._random.getrandbits(128), version=4).hex

    def _random_text(self, length: int) -> str:
        alphabet = string.ascii_letters + string.digits + "-_"
        return "".join(self._random.choices(alphabet, k=length))
