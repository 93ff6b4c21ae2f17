"""KratosWhoamiResolver: identity ids of Kratos session cookies and tokens, looked up in a flush."""

from __future__ import annotations

import hashlib
import logging
from types import TracebackType
from typing import Self

import anyio
import httpx
from starlette.types import Scope

from ._decision import CredentialKind
from ._errors import ConfigurationError
from ._resolvers import Identification
from ._tracker import RecordCallback, WarningLimiter, require_counts

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_COOKIE_NAME",
    "DEFAULT_MAX_CACHE_SIZE",
    "DEFAULT_MAX_LOOKUPS_PER_FLUSH",
    "KratosWhoamiResolver",
]

logger = logging.getLogger("stale_tokens.tracking")

DEFAULT_COOKIE_NAME = "ory_kratos_session"
DEFAULT_CACHE_TTL = 60.0
DEFAULT_MAX_CACHE_SIZE = 10_000
DEFAULT_MAX_LOOKUPS_PER_FLUSH = 500
DEFAULT_LOOKUP_CONCURRENCY = 8
DEFAULT_TIMEOUT = 5.0

_SESSION_TOKEN_HEADER = b"x-session-token"


class _Credential:
    """A credential seen on a request and not yet looked up."""

    __slots__ = ("at", "header", "value")

    def __init__(self, header: str, value: str, at: float) -> None:
        self.header = header
        self.value = value
        self.at = at


class _Lookup:
    """The client, limiter, callback and failure list shared by one `resolve_pending` call."""

    __slots__ = ("client", "failures", "limiter", "record")

    def __init__(
        self, client: httpx.AsyncClient, limiter: anyio.CapacityLimiter, record: RecordCallback
    ) -> None:
        self.client = client
        self.limiter = limiter
        self.record = record
        self.failures: list[str] = []


class KratosWhoamiResolver:
    """Finds the identity of a request by asking Kratos ``/sessions/whoami`` in the tracker's flush.

    On the request path the resolver only reads the ``X-Session-Token`` header
    or the session cookie (Kratos checks them in that order), hashes it with
    SHA-256 and looks the hash up in a small cache. A cache hit is recorded at
    once. A miss keeps the credential in memory, keyed by its hash, until the
    next flush of the `ActivityTracker` calls whoami and records the identity
    with the time of the request. The trade-off: the first request of a
    session reaches Kratos up to one flush interval later than the others,
    and the raw credential stays in process memory until then. It is never
    logged and never used as a cache key.

    A cached result is reused for *cache_ttl* seconds, so a session revoked
    in Kratos can still be recorded as active for that long. A credential
    for which Kratos returned 401 or 403 is cached as unknown for the same
    time, so a client with a stale cookie costs one lookup per TTL.

    Both credentials are recorded as `CredentialKind.BROWSER_SESSION`: an
    ``X-Session-Token`` is a Kratos session too.

    Args:
        public_url: The Kratos public API base URL, such as
            ``"http://127.0.0.1:4433"``, or the Ory Network project URL.
        cookie_name: The session cookie; on Ory Network it is
            ``ory_session_<project slug>``.
        cache_ttl: Seconds a lookup result is reused.
        max_cache_size: Cached credentials at most; the oldest go first.
        max_pending: Credentials waiting for a lookup at most; new ones
            beyond it are dropped until a flush made room.
        max_lookups_per_flush: Whoami calls per flush at most; the rest wait
            for the next flush. Ory Network rate-limits whoami (1,400 per
            minute on a Production project).
        concurrency: Whoami calls in flight at once.
        timeout: Seconds for each whoami call.
        client: An ``httpx.AsyncClient`` to use; it is not closed by `aclose`.
        transport: An httpx transport for the client the resolver creates.

    Raises:
        ConfigurationError: If an option is out of range.
    """

    def __init__(
        self,
        public_url: str,
        *,
        cookie_name: str = DEFAULT_COOKIE_NAME,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        max_cache_size: int = DEFAULT_MAX_CACHE_SIZE,
        max_pending: int = DEFAULT_MAX_CACHE_SIZE,
        max_lookups_per_flush: int = DEFAULT_MAX_LOOKUPS_PER_FLUSH,
        concurrency: int = DEFAULT_LOOKUP_CONCURRENCY,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not public_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"public_url must be an http:// or https:// URL of the Kratos public API, "
                f"got {public_url!r}"
            )
        if not cookie_name:
            raise ConfigurationError(
                "cookie_name must be a cookie name, such as 'ory_kratos_session'"
            )
        if not cache_ttl >= 0 or not timeout > 0:
            raise ConfigurationError(
                f"cache_ttl must be 0 or more seconds and timeout more than 0 seconds, "
                f"got cache_ttl={cache_ttl!r}, timeout={timeout!r}"
            )
        require_counts(
            max_cache_size=max_cache_size,
            max_pending=max_pending,
            max_lookups_per_flush=max_lookups_per_flush,
            concurrency=concurrency,
        )

        self._whoami_url = public_url.rstrip("/") + "/sessions/whoami"
        self._cookie_name = cookie_name
        self._cookie_marker = cookie_name.encode("latin-1") + b"="
        self._cache_ttl = cache_ttl
        self._max_cache_size = max_cache_size
        self._max_pending = max_pending
        self._max_lookups = max_lookups_per_flush
        self._concurrency = concurrency
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._transport = transport

        # hash -> (identity id or None for a rejected credential, expiry in POSIX seconds)
        self._cache: dict[bytes, tuple[str | None, float]] = {}
        self._pending: dict[bytes, _Credential] = {}
        self.dropped = 0
        self.failed = 0
        self._warn = WarningLimiter(logger).warning

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
        """Close the HTTP client the resolver created; an injected client stays open."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def identify(self, scope: Scope, at: float, /) -> Identification | None:
        """Return the cached identity of the request's credential, or keep it for the next flush."""
        credential = self._find_credential(scope)
        if credential is None:
            return None
        header, value = credential

        digest = hashlib.sha256(value.encode()).digest()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > at:
            identity_id = cached[0]
            return None if identity_id is None else (identity_id, CredentialKind.BROWSER_SESSION)

        waiting = self._pending.get(digest)
        if waiting is not None:
            waiting.at = max(waiting.at, at)
        elif len(self._pending) < self._max_pending:
            self._pending[digest] = _Credential(header, value, at)
        else:
            self.dropped += 1
        return None

    def count_pending(self) -> int:
        """Return how many credentials wait for a whoami lookup."""
        return len(self._pending)

    async def resolve_pending(self, record: RecordCallback, /) -> int:
        """Call whoami for the credentials kept since the last call and *record* each identity.

        Credentials whose lookup failed (connection failure, a status other
        than 200, 401 or 403) stay for the next call. httpx errors are caught
        and logged, at most once a minute, and any other exception propagates
        to the caller (the tracker's flush loop logs it).

        Returns:
            How many lookups failed in this call.
        """
        if not self._pending:
            return 0
        batch = list(self._pending.items())[: self._max_lookups]
        for digest, _ in batch:
            del self._pending[digest]

        lookup = _Lookup(self._get_client(), anyio.CapacityLimiter(self._concurrency), record)
        async with anyio.create_task_group() as task_group:
            for digest, credential in batch:
                task_group.start_soon(self._look_up, lookup, digest, credential)

        failed = len(lookup.failures)
        self.failed += failed
        if failed:
            reasons = sorted(set(lookup.failures))
            # Kratos returns 401 from whoami when there is no session, so a 404
            # means the URL does not lead to the public API.
            hint = ""
            if "status 404" in reasons:
                hint = "; check that public_url is the Kratos public API"
            self._warn(
                "Kratos whoami failed for %d of %d credentials (%s); "
                "retrying them on the next flush%s",
                failed,
                len(batch),
                ", ".join(reasons),
                hint,
            )
        return failed

    async def _look_up(self, lookup: _Lookup, digest: bytes, credential: _Credential) -> None:
        if credential.header == "cookie":
            headers = {"Cookie": f"{self._cookie_name}={credential.value}"}
        else:
            headers = {"X-Session-Token": credential.value}
        try:
            async with lookup.limiter:
                response = await lookup.client.get(self._whoami_url, headers=headers)
        except anyio.get_cancelled_exc_class():
            self._keep(digest, credential)
            raise
        except httpx.HTTPError as exc:
            self._keep(digest, credential)
            lookup.failures.append(type(exc).__name__)
            return

        expires = credential.at + self._cache_ttl
        if response.status_code in (401, 403):
            self._remember(digest, None, expires)
            return
        identity_id = _identity_id(response) if response.status_code == 200 else None
        if identity_id is None:
            self._keep(digest, credential)
            lookup.failures.append(f"status {response.status_code}")
            return

        self._remember(digest, identity_id, expires)
        # Requests that arrived during the lookup missed the cache and waited here.
        waiting = self._pending.pop(digest, None)
        at = credential.at if waiting is None else max(credential.at, waiting.at)
        lookup.record(identity_id, at, CredentialKind.BROWSER_SESSION)

    def _find_credential(self, scope: Scope) -> tuple[str, str] | None:
        cookie_header: bytes | None = None
        for name, value in scope["headers"]:
            if name == _SESSION_TOKEN_HEADER and value:
                return "x-session-token", value.decode("latin-1")
            if name == b"cookie" and self._cookie_marker in value:
                cookie_header = value
        if cookie_header is None:
            return None

        # A plain split, because http.cookies.SimpleCookie is slow on the
        # request path and drops every cookie after one it cannot parse.
        for pair in cookie_header.decode("latin-1").split(";"):
            name, _, value = pair.strip().partition("=")
            if name == self._cookie_name and value:
                return "cookie", value
        return None

    def _keep(self, digest: bytes, credential: _Credential) -> None:
        waiting = self._pending.get(digest)
        if waiting is not None:
            waiting.at = max(waiting.at, credential.at)
        elif len(self._pending) < self._max_pending:
            self._pending[digest] = credential
        else:
            self.dropped += 1

    def _remember(self, digest: bytes, identity_id: str | None, expires: float) -> None:
        self._cache.pop(digest, None)
        self._cache[digest] = (identity_id, expires)
        while len(self._cache) > self._max_cache_size:
            del self._cache[next(iter(self._cache))]

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout)
        return self._client


def _identity_id(response: httpx.Response) -> str | None:
    header: str | None = response.headers.get("x-kratos-authenticated-identity-id")
    if header:
        return header
    try:
        identity = response.json().get("identity") or {}
        identity_id: object = identity.get("id")
    except (ValueError, AttributeError):
        return None
    return identity_id if isinstance(identity_id, str) and identity_id else None
