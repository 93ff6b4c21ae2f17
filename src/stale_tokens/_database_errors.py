"""The error the SQL integrations raise when the database fails."""

from __future__ import annotations

from ._errors import StaleTokensError

__all__ = ["DatabaseError"]


class DatabaseError(StaleTokensError):
    """Raised when an SQL integration's query failed, such as on a missing table or lost connection.

    The message names the operation, the table and the driver's error; the
    original SQLAlchemy or driver exception is its ``__cause__``.

    Attributes:
        table: The table the operation used.
    """

    def __init__(self, message: str, *, table: str) -> None:
        super().__init__(message)
        self.table = table
