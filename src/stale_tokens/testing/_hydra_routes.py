"""Hydra admin routes: consent and login session revocation, token introspection."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._hydra_state import EmulatedHydra
from ._responses import empty, json_response, oauth2_error

__all__ = ["HydraAdminRoutes"]


class HydraAdminRoutes:
    """The parts of Hydra's admin API that revoke and inspect OAuth2 grants."""

    def __init__(self, hydra: EmulatedHydra) -> None:
        self._hydra = hydra

    def routes(self) -> list[Route]:
        sessions = "/admin/oauth2/auth/sessions"
        return [
            Route(
                f"{sessions}/consent",
                self.revoke_consent_sessions,
                methods=["DELETE"],
                name="revoke_consent_sessions",
            ),
            Route(
                f"{sessions}/login",
                self.revoke_login_sessions,
                methods=["DELETE"],
                name="revoke_login_sessions",
            ),
            Route("/admin/oauth2/introspect", self.introspect, methods=["POST"], name="introspect"),
        ]

    async def revoke_consent_sessions(self, request: Request) -> Response:
        """Revoke consents and their tokens; 204 even when nothing matched.

        Hydra v25.4 and newer accept exactly three combinations:
        ``consent_request_id`` alone, ``subject`` with ``client`` (``all`` not
        ``true``), or ``subject`` with ``all=true`` and no ``client``.
        """
        query = request.query_params
        consent_request_id = _first(query, "consent_request_id")
        subject = _first(query, "subject")
        client_id = _first(query, "client")
        revoke_all = _first(query, "all") == "true"

        if consent_request_id and not subject and not client_id:
            self._hydra.revoke_consents(consent_request_id=consent_request_id)
        elif not consent_request_id and subject and not client_id and revoke_all:
            self._hydra.revoke_consents(subject=subject)
        elif not consent_request_id and subject and client_id and not revoke_all:
            self._hydra.revoke_consents(subject=subject, client_id=client_id)
        else:
            return oauth2_error(400, hint="Invalid combination of query parameters.")
        return empty()

    async def revoke_login_sessions(self, request: Request) -> Response:
        """Delete login sessions by ``sid`` or ``subject``; 204 even when none existed."""
        sid = _first(request.query_params, "sid")
        subject = _first(request.query_params, "subject")
        if sid:
            self._hydra.revoke_login_sessions(sid=sid)
        elif subject:
            self._hydra.revoke_login_sessions(subject=subject)
        else:
            return oauth2_error(
                400, hint="Either 'subject' or 'sid' query parameters need to be defined."
            )
        return empty()

    async def introspect(self, request: Request) -> Response:
        """RFC 7662 introspection of the form field ``token``."""
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        if not token:
            return oauth2_error(400, hint="The POST body can not be empty.")
        return json_response(self._hydra.introspect(token))


def _first(query: QueryParams, name: str) -> str:
    # Go's url.Values.Get returns the first value, and "" when absent.
    values = query.getlist(name)
    return values[0] if values else ""
