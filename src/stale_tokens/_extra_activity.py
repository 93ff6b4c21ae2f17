"""The protocol for activity kept outside Kratos, such as an application's audit table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["ExtraActivitySource"]


@runtime_checkable
class ExtraActivitySource(Protocol):
    """Looks up the last activity of identities in a store other than Kratos.

    `sweep` calls it once per page of listed identities, and again for each
    identity it is about to act on. The newer of its time and the
    ``metadata_admin`` timestamp counts as the identity's last activity.
    """

    async def last_activity(self, identity_ids: Sequence[str]) -> Mapping[str, datetime]:
        """Return the last activity (aware UTC) of each identity in *identity_ids*.

        Identities without any recorded activity are left out of the result,
        so the policy falls back to their ``created_at``, as for an
        identity that was never active.
        """
