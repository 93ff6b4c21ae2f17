"""Response bodies in the shapes Kratos (herodot) and Hydra (OAuth2) write."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = [
    "BAD_REQUEST_MESSAGE",
    "NOT_FOUND_MESSAGE",
    "NO_CACHE",
    "UNAUTHORIZED_MESSAGE",
    "empty",
    "json_response",
    "kratos_error",
    "oauth2_error",
    "route_not_found",
]

BAD_REQUEST_MESSAGE = "The request was malformed or contained invalid parameters"
NOT_FOUND_MESSAGE = "Unable to locate the resource"
UNAUTHORIZED_MESSAGE = "The request could not be authorized"
CONFLICT_MESSAGE = "The resource could not be created due to a conflict"

# Kratos's admin router marks every response as uncacheable.
NO_CACHE = "private, no-cache, no-store, must-revalidate"

_DEFAULT_MESSAGES = {
    400: BAD_REQUEST_MESSAGE,
    401: UNAUTHORIZED_MESSAGE,
    404: NOT_FOUND_MESSAGE,
    409: CONFLICT_MESSAGE,
    429: "Too many requests were sent; slow down",
    500: "An internal server error occurred, please contact the system administrator",
    502: "The upstream server returned an invalid response",
    503: "The service is temporarily unavailable",
    504: "The upstream server did not answer in time",
}

_OAUTH2_INVALID_REQUEST = (
    "The request is missing a required parameter, includes an invalid parameter value, "
    "includes a parameter more than once, or is otherwise malformed."
)


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Serialise *body* compactly, as Go's encoder does, with Kratos's success headers."""
    merged = {"Cache-Control": NO_CACHE, **(headers or {})}
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers=merged,
        media_type="application/json; charset=utf-8",
    )


def empty(status: int = 204, *, headers: Mapping[str, str] | None = None) -> Response:
    """Return a body-less response such as Kratos's and Hydra's 204."""
    return Response(status_code=status, headers={"Cache-Control": NO_CACHE, **(headers or {})})


def kratos_error(
    request: Request | None,
    status: int,
    *,
    reason: str | None = None,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build a herodot error: ``{"error": {"code", "status", "request"?, "reason"?, "message"}}``.

    ``request`` echoes the ``X-Request-ID`` request header, and empty fields
    are omitted, as herodot does.
    """
    error: dict[str, Any] = {"code": status, "status": HTTPStatus(status).phrase}
    request_id = request.headers.get("x-request-id") if request is not None else None
    if request_id:
        error["request"] = request_id
    if reason:
        error["reason"] = reason
    error["message"] = message or _DEFAULT_MESSAGES.get(status, HTTPStatus(status).phrase)
    return Response(
        json.dumps({"error": error}, separators=(",", ":")),
        status_code=status,
        headers={"Cache-Control": NO_CACHE, **(headers or {})},
        media_type="application/json",
    )


def oauth2_error(
    status: int,
    *,
    error: str = "invalid_request",
    hint: str | None = None,
    description: str | None = None,
) -> Response:
    """Build Hydra's OAuth2 error body ``{"error", "error_description"}``.

    For ``invalid_request`` the description is RFC 6749's sentence followed by
    *hint*, which is how Hydra's error writer joins them.
    """
    if description is None:
        base = _OAUTH2_INVALID_REQUEST if error == "invalid_request" else HTTPStatus(status).phrase
        description = f"{base} {hint}" if hint else base
    body = {"error": error, "error_description": description}
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers={"Cache-Control": NO_CACHE},
        media_type="application/json",
    )


async def route_not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Respond to a path no route serves as Go's ``http.NotFound`` does: plain text, not JSON.

    Kratos and Hydra route with Go's router, whose response to an unknown
    path never passes through their JSON error writer.
    """
    response = Response(
        "404 page not found\n",
        status_code=404,
        headers={"X-Content-Type-Options": "nosniff"},
        media_type="text/plain; charset=utf-8",
    )
    await response(scope, receive, send)
