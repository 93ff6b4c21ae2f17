"""The Kratos release an emulator imitates, and the behaviours that depend on it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._patch import PatchRules

__all__ = ["DEFAULT_KRATOS_VERSION", "KratosVersion"]

DEFAULT_KRATOS_VERSION = "v26.2.0"
_VERSION = re.compile(r"\Av?(\d+)\.(\d+)\.(\d+)\Z")
# PATCH appeared in Kratos v0.11 but wiped metadata_admin until v0.13.
_OLDEST_SUPPORTED = (0, 13, 0)


@dataclass(frozen=True, slots=True)
class KratosVersion:
    """A Kratos release number, such as ``v26.2.0``."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> KratosVersion:
        """Parse ``vMAJOR.MINOR.PATCH``.

        Raises:
            ValueError: If *text* is not a release number, or names a release
                older than v0.13.0.
        """
        match = _VERSION.match(text)
        if match is None:
            raise ValueError(
                f"kratos_version {text!r} is not a release number; pass one like 'v26.2.0'"
            )
        version = cls(int(match[1]), int(match[2]), int(match[3]))
        if version.as_tuple() < _OLDEST_SUPPORTED:
            raise ValueError(
                f"kratos_version {text!r} is older than v0.13.0, the oldest release "
                "the emulator imitates; pass 'v0.13.0' or newer"
            )
        return version

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def patch_rules(self) -> PatchRules:
        """JSON Patch behaviour: lenient since v1.0.0, glob deny list since v25.4.0."""
        return PatchRules(lenient=self.as_tuple() >= (1, 0, 0), glob_deny=self.is_v25_or_newer)

    @property
    def max_page_size(self) -> int | None:
        """The silent ``page_size`` clamp: 500 since v25.4.0, none before."""
        return 500 if self.is_v25_or_newer else None

    @property
    def can_patch_credentials(self) -> bool:
        """Since v25.4.0 non-OIDC credentials are patchable; older releases restore them."""
        return self.is_v25_or_newer

    @property
    def rewrites_unprefixed_paths(self) -> bool:
        """Serve ``/identities`` as ``/admin/identities``: before v1.0 and since v26.2.0.

        Kratos v1.0 to v25.4 redirect un-prefixed admin paths with a 307 instead.
        """
        return self.as_tuple() < (1, 0, 0) or self.as_tuple() >= (26, 2, 0)

    @property
    def has_keyset_pagination(self) -> bool:
        """Since v1.1.0 identities are listed by keyset; before, by offset."""
        return self.as_tuple() >= (1, 1, 0)

    @property
    def is_v25_or_newer(self) -> bool:
        return self.as_tuple() >= (25, 4, 0)

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"
