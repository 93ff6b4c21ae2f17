"""Revoke the sessions and tokens of inactive Ory Kratos identities."""

from ._audit import AuditEvent, AuditSink, LoggingAuditSink
from ._breaker import CircuitBreaker
from ._database_errors import DatabaseError
from ._decision import ActivitySource, CredentialKind, Decision, Finding, Step
from ._errors import (
    BadRequestError,
    ClientClosedError,
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
    UnknownRouteError,
)
from ._extra_activity import ExtraActivitySource
from ._extras import MissingExtraError
from ._hydra import HydraAdmin
from ._kratos import KratosAdmin
from ._lock import InProcessSweepLock, RedisSweepLock, SweepLock
from ._markers import (
    EpisodeMarkers,
    KindRevocation,
    PendingClaim,
    build_claim_markers,
    build_step_markers,
    read_markers,
)
from ._metrics import Metrics
from ._middleware import ActivityMiddleware
from ._models import Identity, Session
from ._notify import LoggingNotifier, Notification, Notifier
from ._notify_errors import MissingRecipientError, NotificationError
from ._policy import Policy
from ._ratelimit import RateLimits
from ._reactivate import reactivate
from ._report import (
    ActedIdentity,
    FailedIdentity,
    IdentityFinding,
    SkippedIdentity,
    SweepAbortedError,
    SweepReport,
)
from ._resolvers import IdentityResolver, TrustedHeaderResolver, mark_active
from ._revoke import PersonalAccessTokenRevoker
from ._suspend import (
    SessionSuspendedError,
    check_session_not_suspended,
    is_session_suspended,
)
from ._sweeper import sweep
from ._thresholds import CredentialKindThresholds, Ladder, RolePolicy
from ._timestamps import format_timestamp, parse_timestamp
from ._tracker import ActivityTracker, DeferredIdentityResolver, MetadataWriter, TrackerHealth
from ._whoami import KratosWhoamiResolver

__all__ = [
    "ActedIdentity",
    "ActivityMiddleware",
    "ActivitySource",
    "ActivityTracker",
    "AuditEvent",
    "AuditSink",
    "BadRequestError",
    "CircuitBreaker",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "CredentialKind",
    "CredentialKindThresholds",
    "DatabaseError",
    "Decision",
    "DeferredIdentityResolver",
    "EpisodeMarkers",
    "ExtraActivitySource",
    "FailedIdentity",
    "Finding",
    "HydraAdmin",
    "Identity",
    "IdentityFinding",
    "IdentityResolver",
    "InProcessSweepLock",
    "InvalidResponseError",
    "KindRevocation",
    "KratosAdmin",
    "KratosWhoamiResolver",
    "Ladder",
    "LoggingAuditSink",
    "LoggingNotifier",
    "MetadataWriter",
    "Metrics",
    "MissingExtraError",
    "MissingRecipientError",
    "NotFoundError",
    "Notification",
    "NotificationError",
    "Notifier",
    "OryAPIError",
    "OryConnectionError",
    "OryError",
    "PaginationError",
    "PendingClaim",
    "PersonalAccessTokenRevoker",
    "Policy",
    "RateLimitedError",
    "RateLimits",
    "RedisSweepLock",
    "RolePolicy",
    "ServerError",
    "Session",
    "SessionSuspendedError",
    "SkippedIdentity",
    "StaleTokensError",
    "Step",
    "SweepAbortedError",
    "SweepLock",
    "SweepReport",
    "TrackerHealth",
    "TrustedHeaderResolver",
    "UnauthorizedError",
    "UnknownRouteError",
    "build_claim_markers",
    "build_step_markers",
    "check_session_not_suspended",
    "format_timestamp",
    "is_session_suspended",
    "mark_active",
    "parse_timestamp",
    "reactivate",
    "read_markers",
    "sweep",
]
