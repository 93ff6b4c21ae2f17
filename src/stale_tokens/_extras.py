"""The error raised when an optional integration's dependency is not installed."""

from __future__ import annotations

from ._errors import StaleTokensError

__all__ = ["MissingExtraError"]


class MissingExtraError(StaleTokensError, ImportError):
    """Raised when an integration module is imported without its optional dependency.

    The message names the extra that installs it, for example
    ``pip install 'stale-tokens[sql]'``.

    Attributes:
        extra: The name of the extra, such as ``"sql"`` or ``"smtp"``.
    """

    def __init__(self, *, module: str, extra: str, missing: str) -> None:
        super().__init__(
            f"{module} needs the {missing!r} package, which is not installed; "
            f"install it with: pip install 'stale-tokens[{extra}]'",
            name=missing,
        )
        self.extra = extra
