"""The HTTP layer shared by the Kratos and Hydra admin clients.

One ``httpx.AsyncClient`` per admin client, bearer auth, retries with
stamina, client-side rate limits, and translation of every failure into the
`StaleTokensError` tree so no httpx exception reaches the caller.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Self

import httpx
import stamina

from ._errors import (
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    OryAPIError,
    OryConnectionError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
    UnknownRouteError,
)
from ._ratelimit import EndpointClass, RateLimiter, RateLimits

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_RETRY_WAIT",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_WRITE_TIMEOUT",
    "AdminClient",
    "Reply",
    "is_non_empty_string",
    "is_positive_int",
    "retry_after_seconds",
]

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0
DEFAULT_WRITE_TIMEOUT = 15.0
DEFAULT_POOL_TIMEOUT = 5.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_RETRY_WAIT = 30.0

# First backoff is 0.5 s plus up to 1 s of jitter, then doubling up to max_retry_wait.
_BACKOFF_INITIAL = 0.5
_BACKOFF_JITTER = 1.0

# The request never left the client, so retrying cannot apply it twice.
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_ERROR_CLASSES: dict[int, type[OryAPIError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: UnauthorizedError,
    404: NotFoundError,
    409: ConflictError,
}


def _user_agent() -> str:
    try:
        return f"stale-tokens/{version('stale-tokens')}"
    except PackageNotFoundError:
        return "stale-tokens"


USER_AGENT = _user_agent()


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete response: status, headers and the decoded body."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    method: str
    path: str


class AdminClient:
    """Options, lifecycle and the retrying request method of an Ory admin client."""

    _service = "ory"
    _example_base_url = "http://127.0.0.1:4434"
    _logger = logging.getLogger("stale_tokens")

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
    ) -> None:
        name = type(self).__name__
        self._base_url = _parse_base_url(base_url, name)
        for option, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("write_timeout", write_timeout),
            ("pool_timeout", pool_timeout),
        ):
            _require_positive(name, option, value, unit="seconds")
        if not is_positive_int(max_attempts):
            raise ConfigurationError(
                f"{name}(max_attempts={max_attempts!r}) must be an integer of at least 1 "
                "(1 disables retries)."
            )
        if not max_retry_wait >= 0:
            raise ConfigurationError(
                f"{name}(max_retry_wait={max_retry_wait!r}) must be 0 or more seconds."
            )
        if client is not None and transport is not None:
            raise ConfigurationError(
                f"{name} takes either client= or transport=, not both; configure the "
                "transport on the client you pass."
            )

        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if api_key is not None:
            if not api_key:
                raise ConfigurationError(f"{name}(api_key='') is empty; pass None for no key.")
            self._headers["Authorization"] = f"Bearer {api_key}"

        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=write_timeout, pool=pool_timeout
            ),
        )
        self._max_attempts = max_attempts
        self._max_retry_wait = float(max_retry_wait)
        self._rate_limiter = RateLimiter(rate_limits) if rate_limits is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self._base_url)!r})"

    async def __aenter__(self) -> Self:
        self._require_open("start an async with block")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was passed in as ``client``."""
        if self._owns_client:
            await self._client.aclose()

    def _require_open(self, action: str) -> None:
        if not self._client.is_closed:
            return
        closed = (
            "it was closed: its async with block exited or aclose() was called"
            if self._owns_client
            else "the httpx.AsyncClient passed as client= was closed"
        )
        raise ClientClosedError(
            f"{self!r} cannot {action}: {closed}. Create the client per application start, "
            "for example in the app's lifespan, instead of once per process."
        )

    def _url(self, path: str) -> httpx.URL:
        prefix = self._base_url.raw_path.decode("ascii").partition("?")[0].rstrip("/")
        return self._base_url.copy_with(path=f"{prefix}{path}")

    async def _request(
        self,
        method: str,
        url: httpx.URL,
        *,
        operation: str,
        endpoint_class: EndpointClass,
        is_idempotent: bool,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        ok_statuses: frozenset[int] = frozenset({200}),
    ) -> Reply:
        """Send a request with retries and return a reply whose status is in *ok_statuses*.

        A 429 is retried for every request, as the server did not process it.
        5xx statuses and lost connections are retried only when
        *is_idempotent*; a connection that was never opened is retried always.
        """
        planned_wait: float | None = None

        def backoff(error: Exception) -> bool | float:
            nonlocal planned_wait
            planned_wait = None
            if isinstance(error, RateLimitedError):
                if error.retry_after is None:
                    return True
                planned_wait = min(error.retry_after, self._max_retry_wait)
                return planned_wait
            if isinstance(error, OryConnectionError) and isinstance(
                error.__cause__, _NOT_SENT_ERRORS
            ):
                return True
            return is_idempotent and isinstance(error, ServerError | OryConnectionError)

        last_error: Exception | None = None
        backoff_floor = 0.0
        async for attempt in stamina.retry_context(
            on=backoff,
            attempts=self._max_attempts,
            timeout=None,
            wait_initial=_BACKOFF_INITIAL,
            wait_max=self._max_retry_wait,
            wait_jitter=_BACKOFF_JITTER,
        ):
            if attempt.num > 1:
                self._logger.info(
                    "Retrying %s %s after %s (attempt %d of %d, waited %.2f s%s)",
                    method,
                    url.path,
                    _describe(last_error),
                    attempt.num,
                    self._max_attempts,
                    backoff_floor if planned_wait is None else planned_wait,
                    " plus jitter" if planned_wait is None else "",
                )
            backoff_floor = attempt.next_wait
            with attempt:
                try:
                    return await self._send_once(
                        method,
                        url,
                        operation=operation,
                        endpoint_class=endpoint_class,
                        params=params,
                        json_body=json_body,
                        ok_statuses=ok_statuses,
                    )
                except Exception as error:
                    last_error = error
                    raise
        raise AssertionError("stamina re-raises the last error once the attempts are used up")

    async def _send_once(
        self,
        method: str,
        url: httpx.URL,
        *,
        operation: str,
        endpoint_class: EndpointClass,
        params: Mapping[str, str] | None,
        json_body: Any,
        ok_statuses: frozenset[int],
    ) -> Reply:
        self._require_open(operation)
        if self._rate_limiter is not None:
            await self._rate_limiter.acquire(endpoint_class)

        try:
            request = self._client.build_request(
                method, url, params=params, json=json_body, headers=self._headers
            )
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"The JSON body of {operation} cannot be encoded: {exc}. Use strings, numbers, "
                "booleans, None, lists and dicts, and format datetimes with format_timestamp."
            ) from exc

        try:
            response = await self._client.send(request, stream=True)
            try:
                # Reading chunk by chunk leaves the body out of httpx.Response,
                # whose reference cycle would keep it alive until a garbage
                # collection, so a listing would hold several pages instead of one.
                content = b"".join([chunk async for chunk in response.aiter_bytes()])
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise self._transport_error(
                exc, f"{operation} ({method} {url.path})", operation
            ) from exc

        reply = Reply(
            status_code=response.status_code,
            headers=response.headers,
            content=content,
            method=method,
            path=url.path,
        )
        if reply.status_code == 404 and not _is_ory_error(_json_or_none(content)):
            raise self._unknown_route(reply, operation=operation)
        if reply.status_code not in ok_statuses:
            raise self._error_for(reply, operation=operation)
        return reply

    def _transport_error(
        self, exc: httpx.HTTPError, request: str, operation: str
    ) -> OryConnectionError | InvalidResponseError:
        """Translate an httpx exception raised before a complete response arrived."""
        name = type(exc).__name__
        if isinstance(exc, httpx.DecodingError):
            return InvalidResponseError(
                f"{self._service} sent an undecodable body for {request}: {exc}.",
                service=self._service,
                operation=operation,
            )
        if isinstance(exc, _NOT_SENT_ERRORS):
            message = (
                f"Could not reach {self._service} for {request}: {name}: {exc}. "
                "Check base_url and that the server is up."
            )
        elif isinstance(exc, httpx.TimeoutException):
            message = (
                f"{self._service} timed out during {request}: {name}. "
                "Raise the timeouts if the server is only slow."
            )
        else:
            message = f"The connection to {self._service} failed during {request}: {name}: {exc}."
        return OryConnectionError(message, service=self._service, operation=operation)

    def _error_for(self, reply: Reply, *, operation: str) -> OryAPIError:
        status = reply.status_code
        body = _json_or_none(reply.content)
        error_message, reason, request_id, error_id = _error_fields(body)
        if request_id is None:
            request_id = reply.headers.get("x-request-id")

        detail = "; ".join(part for part in (error_message, reason) if part) or (
            reply.content[:200].decode("utf-8", "replace").strip() or "no body"
        )
        message = (
            f"{self._service} {operation} failed: {reply.method} {reply.path} returned "
            f"{status} {httpx.codes.get_reason_phrase(status)}: {detail}"
        )
        fields: dict[str, Any] = {
            "service": self._service,
            "operation": operation,
            "status_code": status,
            "error_message": error_message,
            "reason": reason,
            "request_id": request_id,
            "error_id": error_id,
            "body": body,
        }
        if status == 429:
            return RateLimitedError(
                message, retry_after=retry_after_seconds(reply.headers), **fields
            )
        if status >= 500:
            return ServerError(message, **fields)
        return _ERROR_CLASSES.get(status, OryAPIError)(message, **fields)

    def _unknown_route(self, reply: Reply, *, operation: str) -> UnknownRouteError:
        # Go's router in Kratos and Hydra returns a plain-text "404 page not found"
        # for a path they do not serve, and JSON for a missing resource.
        excerpt = reply.content[:80].decode("utf-8", "replace").strip() or "no body"
        return UnknownRouteError(
            f"{self._service} {operation} failed: {reply.method} {reply.path} returned "
            f"404 Not Found with a body that is not an Ory JSON error ({excerpt!r}), so no "
            f"such route exists on this server. Check base_url {str(self._base_url)!r}: it must "
            f"be the admin API's root, such as {self._example_base_url!r}, without a path "
            "prefix the server does not serve.",
            service=self._service,
            operation=operation,
            status_code=404,
            request_id=reply.headers.get("x-request-id"),
        )

    def _decode_json(self, reply: Reply, *, operation: str) -> Any:
        """Return the JSON body of a successful response.

        Raises:
            InvalidResponseError: If the body is not JSON.
        """
        try:
            return json.loads(reply.content)
        except ValueError as exc:
            raise self._invalid_response(
                reply, operation=operation, detail=f"the body is not JSON ({exc})"
            ) from exc

    def _invalid_response(
        self, reply: Reply, *, operation: str, detail: str
    ) -> InvalidResponseError:
        return InvalidResponseError(
            f"{self._service} returned status {reply.status_code} for {operation} "
            f"({reply.method} {reply.path}), but {detail}.",
            service=self._service,
            operation=operation,
        )


def retry_after_seconds(headers: httpx.Headers, *, now: datetime | None = None) -> float | None:
    """Return the wait a 429 requests, in seconds, or ``None`` without a usable hint.

    Ory Network sends ``x-ratelimit-reset`` (seconds), which wins; other
    proxies send ``Retry-After`` as seconds or as an HTTP date. A date in the
    past gives 0.
    """
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        seconds = _non_negative_float(reset)
        if seconds is not None:
            return seconds

    retry_after = headers.get("retry-after")
    if retry_after is None:
        return None
    seconds = _non_negative_float(retry_after)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _non_negative_float(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _is_ory_error(body: Any) -> bool:
    """Tell whether *body* is Kratos's ``{"error": {...}}`` or Hydra's ``{"error": "..."}``."""
    return isinstance(body, Mapping) and isinstance(body.get("error"), Mapping | str)


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """Read message, reason, request id and error id from a Kratos or Hydra error body."""
    if not isinstance(body, Mapping):
        return None, None, None, None
    error = body.get("error")
    if isinstance(error, Mapping):
        return (
            _string(error.get("message")),
            _string(error.get("reason")),
            _string(error.get("request")),
            _string(error.get("id")),
        )
    # Hydra writes OAuth2 errors: {"error": "invalid_request", "error_description": ...}
    return _string(error), _string(body.get("error_description")), None, None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _describe(error: Exception | None) -> str:
    if isinstance(error, OryAPIError):
        return f"status {error.status_code}"
    if error is not None and error.__cause__ is not None:
        return type(error.__cause__).__name__
    return type(error).__name__


def _parse_base_url(base_url: str, name: str) -> httpx.URL:
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"{name}(base_url={base_url!r}) is not a URL: {exc}.") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"{name}(base_url={base_url!r}) must be an absolute http:// or https:// URL, "
            "such as 'http://127.0.0.1:4434' for Kratos's admin port."
        )
    if url.query or url.fragment:
        raise ConfigurationError(
            f"{name}(base_url={base_url!r}) must not carry a query or fragment."
        )
    return url


def is_positive_int(value: object) -> bool:
    """Tell whether *value* is an ``int`` of at least 1; ``True`` and ``False`` are not."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_non_empty_string(value: object) -> bool:
    """Tell whether *value* is a ``str`` with at least one character."""
    return isinstance(value, str) and len(value) > 0


def _require_positive(name: str, option: str, value: object, *, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name}({option}={value!r}) must be a positive number of {unit}.")
