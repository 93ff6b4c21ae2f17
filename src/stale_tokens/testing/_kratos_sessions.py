"""Kratos session routes: the admin session endpoints of an identity and whoami."""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._kratos_state import EmulatedKratos, SessionRecord, canonical_uuid
from ._pages import encode_offset_token, encode_query, link, read_offset_page
from ._responses import NO_CACHE, empty, json_response, kratos_error

__all__ = ["SESSION_COOKIE", "KratosSessionRoutes"]

SESSION_COOKIE = "ory_kratos_session"
DEFAULT_PER_PAGE = 250
MAX_PER_PAGE = 1000
_WHOAMI_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# strconv.ParseBool's spellings.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class KratosSessionRoutes:
    """``/admin/identities/{id}/sessions`` and ``/sessions/whoami``."""

    def __init__(self, kratos: EmulatedKratos, *, writes: Counter[str]) -> None:
        self._kratos = kratos
        self._writes = writes

    def routes(self) -> list[Route]:
        path = "/admin/identities/{id}/sessions"
        return [
            Route(path, self.list_sessions, methods=["GET"], name="list_sessions"),
            Route(path, self.delete_sessions, methods=["DELETE"], name="delete_sessions"),
            Route("/sessions/whoami", self.whoami, methods=_WHOAMI_METHODS, name="whoami"),
        ]

    async def list_sessions(self, request: Request) -> Response:
        """List an identity's sessions, newest first; ``[]`` for an unknown identity."""
        identity_id = canonical_uuid(request.path_params["id"])
        if identity_id is None:
            return _invalid_uuid(request)
        active_text = request.query_params.get("active")
        if active_text is not None and active_text not in _TRUE | _FALSE:
            return kratos_error(
                request, 400, reason=f"Could not parse the active parameter: {active_text!r}"
            )
        try:
            offset, per_page = read_offset_page(
                request.query_params, default_size=DEFAULT_PER_PAGE, max_size=MAX_PER_PAGE
            )
        except ValueError as exc:
            return kratos_error(request, 400, reason=str(exc))

        sessions = self._kratos.sessions_of(identity_id)
        if active_text is not None:
            # The filter reads the stored flag; identity state and expiry are
            # only folded into the rendered "active".
            requested_active = active_text in _TRUE
            sessions = [session for session in sessions if session.active is requested_active]
        page = sessions[offset : offset + per_page]
        headers = {"X-Total-Count": str(len(sessions))}
        if offset + per_page < len(sessions):
            headers["Link"] = _next_link(request, offset + per_page, per_page)
        return json_response([self._kratos.render_session(s) for s in page], headers=headers)

    async def delete_sessions(self, request: Request) -> Response:
        """Hard-delete an identity's sessions: 204, or 404 when there were none."""
        identity_id = canonical_uuid(request.path_params["id"])
        if identity_id is None:
            return _invalid_uuid(request)
        if self._kratos.delete_sessions(identity_id) == 0:
            return kratos_error(request, 404)
        self._writes[identity_id] += 1
        return empty()

    async def whoami(self, request: Request) -> Response:
        """Return the active session of the request's token, cookie or bearer token."""
        session = self._find_session(request)
        if session is None or not self._kratos.is_session_active(session):
            return kratos_error(
                request, 401, reason="No valid session credentials found in the request."
            )
        headers = {"X-Kratos-Authenticated-Identity-Id": session.identity_id}
        return json_response(
            self._kratos.render_session(session), headers={"Cache-Control": NO_CACHE, **headers}
        )

    def _find_session(self, request: Request) -> SessionRecord | None:
        # Kratos looks at the first of these that the request carries and
        # does not fall back to the next one when it is invalid.
        token = request.headers.get("x-session-token")
        if token:
            return self._kratos.session_by_token(token)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return self._kratos.session_by_cookie(cookie)
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return self._kratos.session_by_token(credentials.strip())
        return None


def _next_link(request: Request, offset: int, per_page: int) -> str:
    overrides = {"page_size": str(per_page), "page_token": encode_offset_token(offset)}
    query = encode_query(request.query_params.multi_items(), overrides)
    return link(f"{request.url.path}?{query}", "next")


def _invalid_uuid(request: Request) -> Response:
    return kratos_error(
        request, 400, reason=f"The identity id {request.path_params['id']!r} is not a UUID."
    )
