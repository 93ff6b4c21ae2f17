"""The exception tree of stale-tokens.

Every error the library raises derives from `StaleTokensError`, so callers
never need to import httpx (or anything else) to catch it::

    StaleTokensError
    ├── ConfigurationError          (also a ValueError)
    ├── ClientClosedError           a client used after it was closed (also a RuntimeError)
    ├── OryError
    │   ├── OryAPIError             status, reason, message, request id
    │   │   ├── BadRequestError     400
    │   │   ├── UnauthorizedError   401, 403
    │   │   ├── NotFoundError       404
    │   │   ├── UnknownRouteError   404 without an Ory error body: a wrong base_url
    │   │   ├── ConflictError       409
    │   │   ├── RateLimitedError    429, with the server's wait hint
    │   │   └── ServerError         5xx
    │   ├── OryConnectionError      connect failure, timeout, dropped connection
    │   ├── InvalidResponseError    a 2xx body that is not what the API documents
    │   └── PaginationError         a Link header that would loop or cannot be followed
    ├── SweepAbortedError           the circuit breaker tripped or the sweep lock was taken
    ├── SessionSuspendedError       a session older than its suspension (also a 401)
    ├── NotificationError           a message was not handed over
    │   └── MissingRecipientError   the identity has no address to write to
    ├── DatabaseError               an SQL audit, activity or token table failed
    └── MissingExtraError           an optional part's extra is not installed (also an ImportError)

The classes outside this module are defined next to the code that raises them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "InvalidResponseError",
    "NotFoundError",
    "OryAPIError",
    "OryConnectionError",
    "OryError",
    "PaginationError",
    "RateLimitedError",
    "ServerError",
    "StaleTokensError",
    "UnauthorizedError",
    "UnknownRouteError",
]


class StaleTokensError(Exception):
    """Root of every exception raised by stale-tokens."""


class ConfigurationError(StaleTokensError, ValueError):
    """Raised when an option, a policy value or a URL is invalid.

    The message names the option, the rejected value and the fix.
    """


class ClientClosedError(StaleTokensError, RuntimeError):
    """Raised when a `KratosAdmin` or `HydraAdmin` is used after it was closed.

    Its ``async with`` block exited, `aclose` was called, or the
    ``httpx.AsyncClient`` passed as ``client`` was closed. Create the client
    once per application start, for example in the lifespan, not once per
    process.
    """


class OryError(StaleTokensError):
    """Raised when a call to the Kratos or Hydra API failed.

    Attributes:
        service: ``"kratos"`` or ``"hydra"``.
        operation: What the client was doing, for example ``"list identities"``.
    """

    def __init__(self, message: str, *, service: str, operation: str) -> None:
        super().__init__(message)
        self.service = service
        self.operation = operation


class OryAPIError(OryError):
    """Raised when Kratos or Hydra returned an error status.

    Kratos errors carry ``{"error": {"code", "status", "reason", "message",
    "request", "id"}}``. Hydra uses the OAuth2 shape ``{"error",
    "error_description"}``. Both are mapped onto the same attributes.

    Attributes:
        status_code: The HTTP status.
        error_message: ``error.message`` (Kratos) or ``error`` (Hydra).
        reason: ``error.reason`` (Kratos) or ``error_description`` (Hydra), if any.
        request_id: ``error.request`` (Kratos echoes ``X-Request-ID``), if any.
        error_id: ``error.id`` (Kratos), if any.
        body: The decoded JSON body, or ``None`` when it was not JSON.
    """

    def __init__(
        self,
        message: str,
        *,
        service: str,
        operation: str,
        status_code: int,
        error_message: str | None = None,
        reason: str | None = None,
        request_id: str | None = None,
        error_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message, service=service, operation=operation)
        self.status_code = status_code
        self.error_message = error_message
        self.reason = reason
        self.request_id = request_id
        self.error_id = error_id
        self.body = body


class BadRequestError(OryAPIError):
    """Raised on 400, for example a JSON Patch Kratos rejects or traits that fail their schema."""


class UnauthorizedError(OryAPIError):
    """Raised on 401 or 403: the API key is missing, wrong, or lacks the permission."""


class NotFoundError(OryAPIError):
    """Raised on 404 where the API does not define it as a normal outcome."""


class UnknownRouteError(OryAPIError):
    """Raised on a 404 whose body is not a Kratos or Hydra JSON error.

    Kratos and Hydra return a plain-text 404 for a path they do not serve,
    and a JSON error for a missing identity, so this 404 means the URL is
    wrong, usually a path prefix in ``base_url``. Unlike `NotFoundError`, it
    is never read as "the identity does not exist".
    """


class ConflictError(OryAPIError):
    """Raised on 409, for example a unique trait that another identity already uses."""


class RateLimitedError(OryAPIError):
    """Raised on 429 once the retries are used up.

    Attributes:
        retry_after: Seconds the server asked to wait (``x-ratelimit-reset``
            or ``Retry-After``), or ``None`` when it sent no hint.
    """

    def __init__(self, message: str, *, retry_after: float | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(OryAPIError):
    """Raised on a 5xx status once the retries are used up."""


class OryConnectionError(OryError):
    """Raised when no response arrived: connection refused or dropped, or a timeout."""


class InvalidResponseError(OryError):
    """Raised when a successful response is not what the API documents, such as malformed JSON."""


class PaginationError(OryError):
    """Raised when a ``Link`` header cannot be followed safely, such as a page token seen twice."""
