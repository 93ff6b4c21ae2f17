"""Engines, identifiers and timestamp columns shared by the SQL integrations."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .._database_errors import DatabaseError
from .._errors import ConfigurationError
from .._extras import MissingExtraError

__all__ = ["EngineUser", "UtcDateTime", "check_identifier", "open_engine", "to_async_url"]

# Unquoted SQL identifiers that PostgreSQL (63 bytes) and SQLite both accept.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}
_DRIVER_EXTRAS = {"asyncpg": "postgres", "aiosqlite": "sql"}
_MODULE = "stale_tokens.integrations.sql"


def check_identifier(option: str, name: object) -> str:
    """Return *name* when it is a plain SQL identifier, else raise `ConfigurationError`.

    Table and column names are configurable, so they are checked here and
    then quoted by SQLAlchemy; no SQL is ever built by string formatting.
    """
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ConfigurationError(
            f"{option} must be an SQL identifier of letters, digits and underscores, "
            f"starting with a letter or underscore, at most 63 characters; got {name!r}"
        )
    return name


def to_async_url(url: str) -> str:
    """Return *url* with the async driver SQLAlchemy needs, such as ``postgresql+asyncpg``.

    ``postgresql://``, ``postgres://`` and ``sqlite://`` URLs get the asyncpg
    or aiosqlite driver; a URL that already names a driver is kept.

    Raises:
        ConfigurationError: If *url* is not a database URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"{url!r} is not a database URL; pass one such as "
            "'sqlite+aiosqlite:///audit.db' or 'postgresql+asyncpg://user@127.0.0.1/db'"
        ) from exc
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        return url
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def open_engine(
    url_or_engine: str | AsyncEngine, *, module: str = _MODULE
) -> tuple[AsyncEngine, bool]:
    """Return the engine to use and whether the caller owns it (and so disposes of it).

    Raises:
        ConfigurationError: If the URL is invalid.
        MissingExtraError: If the URL's async driver is not installed.
    """
    if isinstance(url_or_engine, AsyncEngine):
        return url_or_engine, False
    url = to_async_url(url_or_engine)
    try:
        return create_async_engine(url), True
    except ArgumentError as exc:
        raise ConfigurationError(
            f"the database URL names an unknown SQLAlchemy dialect ({exc}); use one such as "
            "'sqlite+aiosqlite:///audit.db' or 'postgresql+asyncpg://user@127.0.0.1/db'"
        ) from exc
    except ImportError as exc:
        missing = exc.name or make_url(url).get_driver_name()
        extra = _DRIVER_EXTRAS.get(missing, "sql")
        raise MissingExtraError(module=module, extra=extra, missing=missing) from exc


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp column that takes and returns aware UTC datetimes on every dialect.

    SQLite has no time zone type, so values are stored there as naive UTC
    and read back with UTC attached. On PostgreSQL the column is
    ``timestamp with time zone``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamps must be timezone-aware, got naive {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"expected a timestamp from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EngineUser:
    """Base of the SQL integrations: keeps the engine and disposes of it when it owns it."""

    def __init__(self, url_or_engine: str | AsyncEngine, *, table_name: str) -> None:
        self._engine, self._owns_engine = open_engine(url_or_engine, module=_MODULE)
        self._table_name = table_name

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Dispose of the engine when it was created from a URL; an engine passed in stays open."""
        if self._owns_engine:
            await self._engine.dispose()

    @asynccontextmanager
    async def _connection(
        self, operation: str, *, transaction: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """Yield a connection, in a committed transaction if asked, raising `DatabaseError`."""
        try:
            if transaction:
                async with self._engine.begin() as connection:
                    yield connection
            else:
                async with self._engine.connect() as connection:
                    yield connection
        except (SQLAlchemyError, OSError) as exc:
            cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
            raise DatabaseError(
                f"{operation} failed (table {self._table_name!r}): {type(cause).__name__}: {cause}",
                table=self._table_name,
            ) from exc
