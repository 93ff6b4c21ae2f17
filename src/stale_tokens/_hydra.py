"""The async client for the Hydra admin API."""

from __future__ import annotations

import logging

from ._errors import ConfigurationError
from ._http import AdminClient, is_non_empty_string
from ._ratelimit import EndpointClass

__all__ = ["HydraAdmin"]

_NO_CONTENT = frozenset({204})


class HydraAdmin(AdminClient):
    """An async client for the Hydra admin API (``/admin/oauth2/...``).

    It calls the ``/admin`` paths of Hydra v2 and newer; Hydra v1.x serves
    the same endpoints without the ``/admin`` prefix and is not supported. On
    Ory Network, Hydra's admin API shares the project URL and API key with
    Kratos. Both revocations are idempotent, so they are retried on 5xx and
    lost connections as well as on 429. A 404 without Hydra's OAuth2 JSON
    error raises `UnknownRouteError` (*base_url* points at a path Hydra does
    not serve), and a closed client raises `ClientClosedError`.

    Args:
        base_url: The Hydra admin URL, such as ``http://127.0.0.1:4445``, or
            an Ory Network project URL. A path prefix is kept.
        api_key: Sent as ``Authorization: Bearer ...``; never logged.
        headers: Extra headers sent with every request.
        client: An ``httpx.AsyncClient`` to use; its own timeouts apply and
            `aclose` leaves it open.
        transport: The transport of the client this object creates.
        connect_timeout: Seconds to open a connection.
        read_timeout: Seconds to wait for each chunk of a response.
        write_timeout: Seconds to send each chunk of a request.
        pool_timeout: Seconds to wait for a free connection from the pool.
        max_attempts: Attempts per request, the first one included.
        max_retry_wait: The maximum wait between attempts, in seconds.
        rate_limits: Client-side requests-per-minute limits, ``None`` for none.

    Raises:
        ConfigurationError: If an option is invalid.
    """

    _service = "hydra"
    _example_base_url = "http://127.0.0.1:4445"
    _logger = logging.getLogger("stale_tokens.hydra")

    async def revoke_consent_sessions(self, subject: str) -> None:
        """Revoke every consent session of *subject*, for every OAuth2 client.

        Hydra deletes the consents and the access and refresh tokens issued
        under them, so introspection reports them inactive and refreshing
        fails. JWT access tokens that resource servers verify locally stay
        valid until they expire. Hydra returns 204 also when nothing matched.

        Raises:
            ConfigurationError: If *subject* is empty.
            BadRequestError: If Hydra rejects the request.
            OryError: If the request fails after the retries.
        """
        # Hydra v25.4+ returns 400 to subject alone; all=true selects every client.
        await self._revoke("consent", "revoke consent sessions", subject, {"all": "true"})

    async def revoke_login_sessions(self, subject: str) -> None:
        """Revoke every Hydra login session of *subject*, so the next authorization needs a login.

        This revokes no token. Hydra returns 204 also when nothing matched.

        Raises:
            ConfigurationError: If *subject* is empty.
            BadRequestError: If Hydra rejects the request.
            OryError: If the request fails after the retries.
        """
        await self._revoke("login", "revoke login sessions", subject, {})

    async def _revoke(
        self, kind: str, operation: str, subject: str, extra_params: dict[str, str]
    ) -> None:
        if not is_non_empty_string(subject):
            raise ConfigurationError(
                f"{operation} needs a non-empty subject (the Kratos identity id), got {subject!r}."
            )
        await self._request(
            "DELETE",
            self._url(f"/admin/oauth2/auth/sessions/{kind}"),
            operation=operation,
            endpoint_class=EndpointClass.HYDRA_WRITES,
            is_idempotent=True,
            params={"subject": subject, **extra_params},
            ok_statuses=_NO_CONTENT,
        )
