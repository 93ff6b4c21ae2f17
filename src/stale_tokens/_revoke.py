"""Revocation of one identity's credentials, kind by kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ._decision import CredentialKind
from ._models import Identity
from ._ports import HydraSessions, KratosSweepClient

__all__ = ["PersonalAccessTokenRevoker", "default_hydra_subject"]


@runtime_checkable
class PersonalAccessTokenRevoker(Protocol):
    """Revokes the personal access tokens an application issued to one identity."""

    async def revoke_personal_access_tokens(self, identity_id: str) -> int:
        """Revoke every still-valid token of *identity_id*; return how many were revoked.

        It must be idempotent: revoking again when nothing is left returns 0.
        """


def default_hydra_subject(identity: Identity) -> str:
    """Return the identity id, the subject Kratos-backed Hydra login apps usually set."""
    return identity.id


@dataclass(frozen=True, slots=True)
class Revoker:
    """Revokes the credential kinds a decision names, with the clients configured."""

    kratos: KratosSweepClient
    hydra: HydraSessions | None
    personal_access_tokens: PersonalAccessTokenRevoker | None
    hydra_subject: Callable[[Identity], str]

    @property
    def supported_kinds(self) -> frozenset[CredentialKind]:
        """Kinds this revoker can act on: browser sessions always, the others when configured."""
        kinds = {CredentialKind.BROWSER_SESSION}
        if self.hydra is not None:
            kinds.add(CredentialKind.OAUTH2)
        if self.personal_access_tokens is not None:
            kinds.add(CredentialKind.PERSONAL_ACCESS_TOKEN)
        return frozenset(kinds)

    async def revoke(self, identity: Identity, kinds: frozenset[CredentialKind]) -> dict[str, Any]:
        """Revoke *kinds* of *identity* and return what was found, for the audit details.

        Every call is idempotent, so a retried or repeated revocation is safe.
        """
        details: dict[str, Any] = {"kinds": sorted(kinds)}
        if CredentialKind.BROWSER_SESSION in kinds:
            details["had_kratos_sessions"] = await self.kratos.delete_sessions(identity.id)

        if CredentialKind.OAUTH2 in kinds and self.hydra is not None:
            subject = self.hydra_subject(identity)
            # Revoking the consent sessions invalidates the access and refresh
            # tokens issued under them. The login sessions are separate, and
            # they would let the next authorization request skip the sign-in.
            await self.hydra.revoke_consent_sessions(subject)
            await self.hydra.revoke_login_sessions(subject)

        if (
            CredentialKind.PERSONAL_ACCESS_TOKEN in kinds
            and self.personal_access_tokens is not None
        ):
            revoked = await self.personal_access_tokens.revoke_personal_access_tokens(identity.id)
            details["personal_access_tokens_revoked"] = revoked
        return details
