"""Revoke the sessions and tokens of inactive Ory Kratos identities."""

from ._errors import (
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    OryAPIError,
    OryConnectionError,
    OryError,
    PaginationError,
    RateLimitedError,
    ServerError,
    StaleTokensError,
    UnauthorizedError,
)
from ._models import Identity, Session
from ._timestamps import format_timestamp, parse_timestamp

__all__ = [
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "Identity",
    "InvalidResponseError",
    "NotFoundError",
    "OryAPIError",
    "OryConnectionError",
    "OryError",
    "PaginationError",
    "RateLimitedError",
    "ServerError",
    "Session",
    "StaleTokensError",
    "UnauthorizedError",
    "format_timestamp",
    "parse_timestamp",
]
