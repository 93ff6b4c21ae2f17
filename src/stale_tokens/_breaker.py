"""The circuit breaker: refuse to act when too many identities look stale at once."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._errors import ConfigurationError

__all__ = ["CircuitBreaker"]

DEFAULT_MAX_DESTRUCTIVE_FRACTION = 0.10
DEFAULT_MAX_DESTRUCTIVE_COUNT = 10_000
DEFAULT_MIN_IDENTITIES_FOR_FRACTION = 100


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """Limits on how many identities one sweep may find due for a destructive step.

    Destructive steps are revoke, deactivate and delete. When the plan exceeds
    a limit, the sweep acts on nothing and raises `SweepAbortedError`. A
    tracker that stopped writing makes nearly every identity look stale, and
    this is what keeps such a failure from signing out the whole user base.

    Attributes:
        max_destructive_fraction: Largest share of the listed identities, from
            0 (exclusive) to 1, that may be due; ``None`` disables the check.
        max_destructive_count: Largest number of identities that may be due;
            ``None`` disables the check.
        min_identities_for_fraction: The fraction is checked only when at least
            this many identities were listed, because in a small project one
            stale account is already a large share.
    """

    max_destructive_fraction: float | None = DEFAULT_MAX_DESTRUCTIVE_FRACTION
    max_destructive_count: int | None = DEFAULT_MAX_DESTRUCTIVE_COUNT
    min_identities_for_fraction: int = DEFAULT_MIN_IDENTITIES_FOR_FRACTION

    def __post_init__(self) -> None:
        fraction = self.max_destructive_fraction
        if fraction is not None and not (math.isfinite(fraction) and 0 < fraction <= 1):
            raise ConfigurationError(
                f"max_destructive_fraction must be above 0 and at most 1, got {fraction!r}; "
                "pass 0.1 for 10 % or None to disable the check"
            )
        count = self.max_destructive_count
        if count is not None and (isinstance(count, bool) or count < 0):
            raise ConfigurationError(
                f"max_destructive_count must be a non-negative integer, got {count!r}; "
                "pass None to disable the check"
            )
        if self.min_identities_for_fraction < 0:
            raise ConfigurationError(
                "min_identities_for_fraction must be a non-negative integer, "
                f"got {self.min_identities_for_fraction!r}"
            )

    def check(self, *, destructive: int, identities: int) -> str | None:
        """Return why the sweep must stop, or ``None`` when the plan is within the limits.

        Args:
            destructive: Identities due for revoke, deactivate or delete.
            identities: Identities listed in the plan.
        """
        count = self.max_destructive_count
        if count is not None and destructive > count:
            return (
                f"{destructive} identities are due for a destructive step, more than "
                f"max_destructive_count={count}; check that activity tracking works, then "
                "raise the limit for one run if the number is right"
            )

        fraction = self.max_destructive_fraction
        if fraction is None or identities < self.min_identities_for_fraction or identities == 0:
            return None
        share = destructive / identities
        if share > fraction:
            return (
                f"{destructive} of {identities} identities ({share:.1%}) are due for a "
                f"destructive step, more than max_destructive_fraction={fraction:.1%}; check "
                "that activity tracking works, then raise the limit for one run if the "
                "number is right"
            )
        return None
