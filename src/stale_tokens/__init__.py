"""Revoke the sessions and tokens of inactive Ory Kratos identities."""

from ._audit import AuditEvent, AuditSink, LoggingAuditSink
from ._breaker import CircuitBreaker
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
from ._hydra import HydraAdmin
from ._kratos import KratosAdmin
from ._lock import InProcessSweepLock, SweepLock
from ._models import Identity, Session
from ._notify import LoggingNotifier, Notification, Notifier
from ._ratelimit import RateLimits
from ._report import (
    FailedIdentity,
    IdentityFinding,
    SkippedIdentity,
    SweepAbortedError,
    SweepReport,
)
from ._suspend import (
    SessionSuspendedError,
    check_session_not_suspended,
    is_session_suspended,
)
from ._timestamps import format_timestamp, parse_timestamp

__all__ = [
    "AuditEvent",
    "AuditSink",
    "BadRequestError",
    "CircuitBreaker",
    "ConfigurationError",
    "ConflictError",
    "FailedIdentity",
    "HydraAdmin",
    "Identity",
    "IdentityFinding",
    "InProcessSweepLock",
    "InvalidResponseError",
    "KratosAdmin",
    "LoggingAuditSink",
    "LoggingNotifier",
    "NotFoundError",
    "Notification",
    "Notifier",
    "OryAPIError",
    "OryConnectionError",
    "OryError",
    "PaginationError",
    "RateLimitedError",
    "RateLimits",
    "ServerError",
    "Session",
    "SessionSuspendedError",
    "SkippedIdentity",
    "StaleTokensError",
    "SweepAbortedError",
    "SweepLock",
    "SweepReport",
    "UnauthorizedError",
    "check_session_not_suspended",
    "format_timestamp",
    "is_session_suspended",
    "parse_timestamp",
]
