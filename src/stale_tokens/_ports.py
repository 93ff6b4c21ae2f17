"""The parts of the Kratos and Hydra clients the sweeper calls.

`KratosAdmin` and `HydraAdmin` satisfy these protocols; tests and callers
with their own clients may pass anything else that does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal, Protocol

from ._models import Identity, Session

__all__ = ["HydraSessions", "KratosSweepClient"]


class KratosSweepClient(Protocol):
    """The Kratos admin calls a sweep makes."""

    def iter_identity_pages(
        self, *, page_size: int | None = None
    ) -> AsyncIterator[list[Identity]]: ...

    async def get_identity(self, identity_id: str) -> Identity: ...

    async def patch_identity(
        self,
        identity_id: str,
        operations: Sequence[Mapping[str, Any]],
        *,
        idempotent: bool = False,
    ) -> Identity: ...

    async def set_metadata_admin(
        self, identity_id: str, values: Mapping[str | tuple[str, ...], Any]
    ) -> Identity: ...

    async def list_sessions(
        self, identity_id: str, *, active: bool | None = None
    ) -> list[Session]: ...

    async def delete_sessions(self, identity_id: str) -> bool: ...

    async def set_state(
        self, identity_id: str, state: Literal["active", "inactive"]
    ) -> Identity: ...

    async def delete_identity(self, identity_id: str) -> bool: ...


class HydraSessions(Protocol):
    """The Hydra admin calls that revoke a subject's OAuth2 grants and login sessions."""

    async def revoke_consent_sessions(self, subject: str) -> None: ...

    async def revoke_login_sessions(self, subject: str) -> None: ...
