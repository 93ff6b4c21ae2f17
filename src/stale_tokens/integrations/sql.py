"""SQL integrations (extra ``sql``; ``postgres`` adds asyncpg): audit sink, activity, tokens.

Every class takes a database URL or a SQLAlchemy `AsyncEngine`. URLs
without an async driver get one: ``sqlite://`` becomes ``sqlite+aiosqlite://``
and ``postgresql://`` becomes ``postgresql+asyncpg://``.
"""

from __future__ import annotations

from importlib.util import find_spec

from .._extras import MissingExtraError

if find_spec("sqlalchemy") is None:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(
        module="stale_tokens.integrations.sql", extra="sql", missing="sqlalchemy"
    )

from ._sql_activity import DEFAULT_ACTIVITY_EVENT_TYPES, SqlActivitySource
from ._sql_audit import DEFAULT_AUDIT_TABLE, MonthlyCount, SqlAuditSink
from ._sql_engine import to_async_url
from ._sql_tokens import (
    DEFAULT_TOKEN_TABLE,
    EVENT_TOKEN_REVOKED_UNUSED,
    SqlPersonalAccessTokenRevoker,
)

__all__ = [
    "DEFAULT_ACTIVITY_EVENT_TYPES",
    "DEFAULT_AUDIT_TABLE",
    "DEFAULT_TOKEN_TABLE",
    "EVENT_TOKEN_REVOKED_UNUSED",
    "MonthlyCount",
    "SqlActivitySource",
    "SqlAuditSink",
    "SqlPersonalAccessTokenRevoker",
    "to_async_url",
]
