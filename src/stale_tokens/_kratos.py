"""The async client for the Kratos admin API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import httpx

from ._errors import BadRequestError, ConfigurationError
from ._http import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_POOL_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_WRITE_TIMEOUT,
    AdminClient,
    Reply,
    is_non_empty_string,
    is_positive_int,
)
from ._jsonpatch import (
    add_operations,
    existing_paths,
    fallback_add_operations,
    key_paths,
    pointer,
    validate_operations,
)
from ._models import Identity, Session
from ._pagination import NextLinkFollower
from ._ratelimit import EndpointClass, RateLimits

__all__ = ["DEFAULT_PAGE_SIZE", "KratosAdmin"]

DEFAULT_PAGE_SIZE = 250
"""Identities per page; Kratos's own default. Kratos >= 25.4 clamps anything above 500."""

# A key can vanish between the read and the PATCH, and Kratos returns 400 to a
# remove of a missing path, so the removal re-reads and tries again.
_REMOVE_ATTEMPTS = 3

_STATES = ("active", "inactive")


class KratosAdmin(AdminClient):
    """An async client for the Kratos admin API (``/admin/...``).

    Use it as an async context manager, or call `aclose` when done::

        async with KratosAdmin("http://127.0.0.1:4434") as kratos:
            async for identity in kratos.iter_identities():
                ...

    Every method translates failures into the `StaleTokensError` tree. Reads
    and writes that set fixed values are retried on 5xx and lost connections;
    every request is retried on 429. Every method raises `UnknownRouteError`
    when Kratos returns 404 without its JSON error body, which means
    *base_url* points at a path Kratos does not serve, and `ClientClosedError`
    once the client is closed.

    Args:
        base_url: The Kratos admin URL, such as ``http://127.0.0.1:4434``, or
            an Ory Network project URL. A path prefix is kept.
        api_key: An Ory Network project API key, sent as
            ``Authorization: Bearer ...``. Never logged.
        headers: Extra headers sent with every request.
        client: An ``httpx.AsyncClient`` to use instead of creating one. Its
            own timeouts apply and `aclose` leaves it open.
        transport: The transport of the client this object creates, such as
            an in-process ASGI transport in tests.
        connect_timeout: Seconds to open a connection.
        read_timeout: Seconds to wait for each chunk of a response.
        write_timeout: Seconds to send each chunk of a request.
        pool_timeout: Seconds to wait for a free connection from the pool.
        max_attempts: Attempts per request, the first one included; 1
            disables retries.
        max_retry_wait: The maximum wait between attempts, in seconds, also
            when a 429 requests a longer one.
        rate_limits: Client-side requests-per-minute limits, ``None`` for none.
        page_size: Identities per listed page.

    Attributes:
        skipped_identities: Listed entries skipped because they had no string
            ``id``, since this client was created.
        skipped_sessions: Listed sessions skipped for the same reason.

    Raises:
        ConfigurationError: If an option is invalid.
    """

    _service = "kratos"
    _logger = logging.getLogger("stale_tokens.kratos")

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        rate_limits: RateLimits | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self._page_size = _validate_page_size(page_size)
        super().__init__(
            base_url,
            api_key=api_key,
            headers=headers,
            client=client,
            transport=transport,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            pool_timeout=pool_timeout,
            max_attempts=max_attempts,
            max_retry_wait=max_retry_wait,
            rate_limits=rate_limits,
        )
        self.skipped_identities = 0
        self.skipped_sessions = 0

    async def iter_identities(self, *, page_size: int | None = None) -> AsyncIterator[Identity]:
        """Yield every identity, following the ``Link`` header page by page.

        Memory stays bounded by one page. Entries without a string ``id`` are
        logged, counted in `skipped_identities` and skipped.

        Args:
            page_size: Identities per page; defaults to the client's ``page_size``.

        Raises:
            PaginationError: If a ``next`` link repeats or points at another host.
            OryError: If a page cannot be read after the retries.
        """
        async for page in self.iter_identity_pages(page_size=page_size):
            for identity in page:
                yield identity

    async def iter_identity_pages(
        self, *, page_size: int | None = None
    ) -> AsyncIterator[list[Identity]]:
        """Yield the identities page by page, as `iter_identities` does one by one.

        The listing ends when a page has no ``rel="next"`` link, however full
        it is, or when a page is empty (Kratos < 1.1 sends a ``next`` link even
        on an empty collection). Pages whose entries were all skipped are not
        yielded.

        Raises:
            PaginationError: If a ``next`` link repeats or points at another host.
            OryError: If a page cannot be read after the retries.
        """
        size = self._page_size if page_size is None else _validate_page_size(page_size)
        first_url = self._url("/admin/identities").copy_merge_params({"page_size": str(size)})
        follower = NextLinkFollower(self._base_url, service="kratos", operation="list identities")
        follower.start(first_url)
        url: httpx.URL | None = first_url
        while url is not None:
            page, url = await self._read_identity_page(url, follower)
            if page:
                yield page

    async def _read_identity_page(
        self, url: httpx.URL, follower: NextLinkFollower
    ) -> tuple[list[Identity], httpx.URL | None]:
        entries, reply = await self._read_listing(url, operation="list identities")

        page: list[Identity] = []
        for position, entry in enumerate(entries):
            try:
                page.append(Identity.from_json(entry))
            except ValueError:
                self.skipped_identities += 1
                self._logger.warning(
                    "Skipped entry %d of an identity page from %s: not an object with a string id",
                    position,
                    url.path,
                )
        self._logger.debug("Read %d identities from %s", len(entries), url.path)

        next_url = follower.next_url(reply.headers) if entries else None
        return page, next_url

    async def get_identity(self, identity_id: str) -> Identity:
        """Return one identity, with ``metadata_admin``.

        Raises:
            NotFoundError: If no identity has this id (also for a malformed id).
            OryError: If the request fails after the retries.
        """
        operation = "get identity"
        reply = await self._request(
            "GET",
            self._identity_url(identity_id),
            operation=operation,
            endpoint_class=EndpointClass.IDENTITY_READS,
            is_idempotent=True,
        )
        return self._decode_identity(reply, operation=operation)

    async def patch_identity(
        self,
        identity_id: str,
        operations: Sequence[Mapping[str, Any]],
        *,
        idempotent: bool = False,
    ) -> Identity:
        """Apply JSON Patch operations to an identity and return the result.

        Kratos applies the operations in order and all or none. It accepts only
        ``add``, ``remove`` and ``replace``; this method rejects the others
        before sending.

        Args:
            identity_id: The identity's id.
            operations: RFC 6902 operations, such as
                ``[{"op": "replace", "path": "/state", "value": "inactive"}]``.
            idempotent: Whether applying the patch twice has the effect of
                applying it once. Only then is it retried on 5xx and lost
                connections.

        Raises:
            ConfigurationError: If an operation is malformed or not supported.
            BadRequestError: If Kratos rejects the patch, for example a
                ``remove`` of a missing key or traits that fail their schema.
            NotFoundError: If no identity has this id.
            OryError: If the request fails after the retries.
        """
        checked = validate_operations(operations)
        return await self._patch(identity_id, checked, is_idempotent=idempotent)

    async def set_metadata_admin(
        self, identity_id: str, values: Mapping[str | tuple[str, ...], Any]
    ) -> Identity:
        """Set keys of the identity's ``metadata_admin`` and keep every other key.

        Works when ``metadata_admin`` is ``null`` or lacks the parent objects.
        Kratos >= 1.0 creates them itself; Kratos < 1.0 returns 400, and then
        this method reads the identity and adds the missing parents as whole
        objects. Between that read and the write another writer's new parent
        object could be replaced, as Kratos offers no conditional update.

        Args:
            identity_id: The identity's id.
            values: Values by key: a top-level key of ``metadata_admin``, or a
                tuple path into nested objects such as ``("stale_tokens", "warn")``.

        Raises:
            ConfigurationError: If *values* is empty or its keys are invalid or overlap.
            BadRequestError: If Kratos rejects the write, for example because a
                parent on a key's path is a string or a list.
            NotFoundError: If no identity has this id.
            OryError: If the request fails after the retries.
        """
        paths = key_paths(values, argument="set_metadata_admin")
        if not paths:
            raise ConfigurationError("set_metadata_admin needs at least one key in values.")
        by_path = dict(zip(paths, values.values(), strict=True))

        try:
            return await self._patch(identity_id, add_operations(by_path), is_idempotent=True)
        except BadRequestError as error:
            current = await self.get_identity(identity_id)
            operations = fallback_add_operations(current.metadata_admin, by_path)
            if operations is None:
                raise
            self._logger.debug(
                "Kratos rejected an add under /metadata_admin (%s); adding the missing parents",
                error.reason or error.error_message,
            )
        return await self._patch(identity_id, operations, is_idempotent=True)

    async def remove_metadata_admin(
        self, identity_id: str, keys: Iterable[str | tuple[str, ...]]
    ) -> Identity:
        """Remove keys from the identity's ``metadata_admin``; missing keys are skipped.

        Kratos returns 400 to a ``remove`` of a missing path, so this method
        reads the identity first and removes only the keys it has. When none
        is present, nothing is written.

        Args:
            identity_id: The identity's id.
            keys: Top-level keys, or tuple paths into nested objects.

        Raises:
            ConfigurationError: If a key is invalid or two keys overlap.
            NotFoundError: If no identity has this id.
            OryError: If the request fails after the retries.
        """
        paths = key_paths(keys, argument="remove_metadata_admin")
        for attempt in range(1, _REMOVE_ATTEMPTS + 1):
            current = await self.get_identity(identity_id)
            present = existing_paths(current.metadata_admin, paths)
            if not present:
                return current
            operations = [
                {"op": "remove", "path": pointer("metadata_admin", *path)} for path in present
            ]
            try:
                return await self._patch(identity_id, operations, is_idempotent=True)
            except BadRequestError:
                if attempt == _REMOVE_ATTEMPTS:
                    raise
        raise AssertionError("the last attempt returns or raises")

    async def list_sessions(self, identity_id: str, *, active: bool | None = None) -> list[Session]:
        """Return the identity's sessions, following every ``next`` link.

        Kratos returns an empty list for an unknown identity. Entries without
        a string ``id`` are logged, counted in `skipped_sessions` and skipped.

        Args:
            identity_id: The identity's id.
            active: ``True`` for active sessions only, ``False`` for inactive
                ones only, ``None`` for all.

        Raises:
            BadRequestError: If the id is not a UUID.
            PaginationError: If a ``next`` link repeats or points at another host.
            OryError: If the request fails after the retries.
        """
        operation = "list sessions"
        first_url = self._identity_url(identity_id, "sessions")
        if active is not None:
            first_url = first_url.copy_merge_params({"active": "true" if active else "false"})
        follower = NextLinkFollower(self._base_url, service="kratos", operation=operation)
        follower.start(first_url)

        url: httpx.URL | None = first_url
        sessions: list[Session] = []
        while url is not None:
            entries, reply = await self._read_listing(url, operation=operation)
            for entry in entries:
                try:
                    sessions.append(Session.from_json(entry))
                except ValueError:
                    self.skipped_sessions += 1
                    self._logger.warning(
                        "Skipped a session of %s: not an object with a string id", url.path
                    )
            url = follower.next_url(reply.headers) if entries else None
        return sessions

    async def delete_sessions(self, identity_id: str) -> bool:
        """Delete every session of the identity, which signs it out everywhere.

        Returns:
            ``True`` if sessions were deleted, ``False`` if Kratos found none.
            Kratos returns 404 both for an identity without sessions and for
            an unknown identity.

        Raises:
            BadRequestError: If the id is not a UUID.
            UnknownRouteError: If the 404 is not Kratos's JSON error, so
                *base_url* is wrong; never read as "no sessions".
            OryError: If the request fails after the retries.
        """
        reply = await self._request(
            "DELETE",
            self._identity_url(identity_id, "sessions"),
            operation="delete sessions",
            endpoint_class=EndpointClass.IDENTITY_WRITES,
            is_idempotent=True,
            ok_statuses=frozenset({204, 404}),
        )
        return reply.status_code == 204

    async def set_state(self, identity_id: str, state: Literal["active", "inactive"]) -> Identity:
        """Activate or deactivate an identity.

        Deactivating does not delete sessions: Kratos rejects them while the
        identity is inactive and accepts them again after reactivation. Call
        `delete_sessions` as well for a real sign-out.

        Raises:
            ConfigurationError: If *state* is not ``"active"`` or ``"inactive"``.
            NotFoundError: If no identity has this id.
            OryError: If the request fails after the retries.
        """
        if state not in _STATES:
            raise ConfigurationError(
                f"set_state(state={state!r}) must be 'active' or 'inactive', the two states "
                "Kratos accepts."
            )
        operations = [{"op": "replace", "path": "/state", "value": state}]
        return await self._patch(identity_id, operations, is_idempotent=True)

    async def delete_identity(self, identity_id: str) -> bool:
        """Delete an identity and, through Kratos's cascade, its sessions. Irreversible.

        Returns:
            ``True`` if it was deleted, ``False`` if no identity had this id
            (also when a retried request had already deleted it).

        Raises:
            UnknownRouteError: If the 404 is not Kratos's JSON error, so
                *base_url* is wrong; never read as "no such identity".
            OryError: If the request fails after the retries.
        """
        reply = await self._request(
            "DELETE",
            self._identity_url(identity_id),
            operation="delete identity",
            endpoint_class=EndpointClass.IDENTITY_WRITES,
            is_idempotent=True,
            ok_statuses=frozenset({204, 404}),
        )
        return reply.status_code == 204

    async def _patch(
        self, identity_id: str, operations: list[dict[str, Any]], *, is_idempotent: bool
    ) -> Identity:
        operation = "patch identity"
        reply = await self._request(
            "PATCH",
            self._identity_url(identity_id),
            operation=operation,
            endpoint_class=EndpointClass.IDENTITY_WRITES,
            is_idempotent=is_idempotent,
            json_body=operations,
        )
        return self._decode_identity(reply, operation=operation)

    def _identity_url(self, identity_id: str, *suffix: str) -> httpx.URL:
        if not is_non_empty_string(identity_id):
            raise ConfigurationError(
                f"identity_id must be a non-empty string such as a Kratos UUID, got "
                f"{identity_id!r}."
            )
        return self._url("/".join(("/admin/identities", quote(identity_id, safe=""), *suffix)))

    def _decode_identity(self, reply: Reply, *, operation: str) -> Identity:
        data = self._decode_json(reply, operation=operation)
        try:
            return Identity.from_json(data)
        except ValueError as exc:
            raise self._invalid_response(
                reply, operation=operation, detail=f"the body is not an identity ({exc})"
            ) from exc

    async def _read_listing(self, url: httpx.URL, *, operation: str) -> tuple[list[Any], Reply]:
        """Read one page of a listing and return its entries with the reply they came in."""
        reply = await self._request(
            "GET",
            url,
            operation=operation,
            endpoint_class=EndpointClass.IDENTITY_LISTINGS,
            is_idempotent=True,
        )
        data = self._decode_json(reply, operation=operation)
        if not isinstance(data, list):
            raise self._invalid_response(
                reply,
                operation=operation,
                detail=f"the body is a JSON {_json_type(data)}, not an array",
            )
        return data, reply


def _validate_page_size(page_size: int) -> int:
    if not is_positive_int(page_size):
        raise ConfigurationError(
            f"page_size={page_size!r} must be a positive integer; Kratos >= 25.4 serves at "
            "most 500 per page and follows the Link header for the rest."
        )
    return page_size


def _json_type(value: object) -> str:
    """Name the JSON type of a decoded value, as a message for the API's user reads it."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__
