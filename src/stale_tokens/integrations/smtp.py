"""Email notifications over SMTP (extra ``smtp``): `SmtpNotifier`."""

from __future__ import annotations

import enum
import ipaddress
import logging
import math
import re
import ssl
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from importlib.util import find_spec
from urllib.parse import urlsplit

from .._errors import ConfigurationError
from .._extras import MissingExtraError
from .._notify import Notification
from .._notify_errors import MissingRecipientError, NotificationError
from .._traits import MISSING, lookup_path, split_path

if find_spec("aiosmtplib") is None:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(
        module="stale_tokens.integrations.smtp", extra="smtp", missing="aiosmtplib"
    )

import aiosmtplib

from ._email_templates import (
    DEFAULT_DATE_FORMAT,
    DEFAULT_TEMPLATES,
    TEMPLATE_FIELDS,
    EmailTemplate,
    RenderedEmail,
    render,
)

__all__ = [
    "DEFAULT_DATE_FORMAT",
    "DEFAULT_RECIPIENT_PATH",
    "DEFAULT_TEMPLATES",
    "DEFAULT_TIMEOUT_SECONDS",
    "TEMPLATE_FIELDS",
    "EmailTemplate",
    "RenderedEmail",
    "SmtpNotifier",
    "TlsMode",
    "render",
]

logger = logging.getLogger("stale_tokens.notify")

DEFAULT_HOST = "localhost"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_RECIPIENT_PATH = "traits.email"
# A mail server's reply may quote the recipient, which must not reach logs.
_EMAIL_ADDRESS = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+")


class TlsMode(enum.StrEnum):
    """The encryption of the connection to the mail server."""

    NONE = "none"
    """Plain SMTP, usually port 25; for a relay on the same host or network."""
    STARTTLS = "starttls"
    """Plain connection upgraded with STARTTLS, usually port 587; fails when the server lacks it."""
    IMPLICIT = "implicit"
    """TLS from the first byte, usually port 465."""


_DEFAULT_PORTS = {TlsMode.NONE: 25, TlsMode.STARTTLS: 587, TlsMode.IMPLICIT: 465}


class SmtpNotifier:
    """A `Notifier` that emails warnings, re-engagement messages and deletion notices.

    Each message has a plain-text and an HTML part, filled from the
    notification's real values (days inactive, the date of the next step)
    and the configured sign-in URL; see `EmailTemplate` for the fields.

    `notify` raises when the server did not accept the message, so the
    sweeper records no marker and the next run sends it again. An identity
    without an address raises `MissingRecipientError`. Credentials and
    addresses are never logged.

    Args:
        sender: The ``From`` address, such as ``"Example <security@example.com>"``.
        sign_in_url: The page where users sign in; ``http`` or ``https``.
        host: The mail server's host name or IP address.
        port: The server's port; ``None`` means 25, 587 or 465 by *tls*.
        tls: `TlsMode` or its value: ``"none"``, ``"starttls"`` (the default)
            or ``"implicit"``.
        username: The SMTP AUTH user, or ``None`` to send without AUTH.
        password: The SMTP AUTH password; required with *username*.
        timeout: Seconds for each network operation.
        tls_context: The TLS settings; ``None`` means the system's trusted
            certificates with host name checks.
        templates: Templates by step (``"warn"``, ``"re_engage"``,
            ``"delete_notice"``) that replace the defaults.
        recipient_path: Dotted path to the address in the identity's JSON.
        date_format: `datetime.strftime` format of the dates, in UTC.
        clock: Returns the current aware time, for the days until the next step.

    Raises:
        ConfigurationError: If an option is invalid, such as a password sent
            over ``tls="none"`` to a host other than loopback.
    """

    def __init__(
        self,
        *,
        sender: str,
        sign_in_url: str,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        tls: TlsMode | str = TlsMode.STARTTLS,
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        tls_context: ssl.SSLContext | None = None,
        templates: Mapping[str, EmailTemplate] | None = None,
        recipient_path: str = DEFAULT_RECIPIENT_PATH,
        date_format: str = DEFAULT_DATE_FORMAT,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._tls = _tls_mode(tls)
        self._sender = _address("sender", sender)
        self._sign_in_url = _sign_in_url(sign_in_url)
        self._host = host
        self._port = _port(port, self._tls)
        self._username, self._password = _credentials(username, password, self._tls, host)
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {timeout!r}"
            )
        self._timeout = timeout
        self._tls_context = tls_context
        self._templates = {**DEFAULT_TEMPLATES, **(templates or {})}
        self._recipient_path = recipient_path
        try:
            self._recipient_keys = split_path(recipient_path)
        except ValueError as exc:
            raise ConfigurationError(
                f"recipient_path must be a dotted path such as 'traits.email', got "
                f"{recipient_path!r}"
            ) from exc
        self._date_format = date_format
        self._clock = clock if clock is not None else _utc_now

    def __repr__(self) -> str:
        return f"SmtpNotifier(host={self._host!r}, port={self._port}, tls={self._tls.value!r})"

    def build_message(self, notification: Notification) -> EmailMessage:
        """Return the email `notify` would send for *notification*.

        Raises:
            MissingRecipientError: If the identity has no usable address.
            NotificationError: If no template exists for the step.
        """
        recipient = self._recipient(notification)
        template = self._templates.get(notification.step)
        if template is None:
            raise NotificationError(
                f"no email template for step {notification.step!r} of identity "
                f"{notification.identity_id}; pass one in templates={{{notification.step!r}: ...}}",
                identity_id=notification.identity_id,
                step=notification.step,
            )
        email = render(
            template,
            notification,
            sign_in_url=self._sign_in_url,
            now=self._clock(),
            date_format=self._date_format,
        )

        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = recipient
        message["Subject"] = email.subject
        message["Date"] = format_datetime(self._clock())
        message["Message-ID"] = make_msgid(domain=self._sender.domain or None)
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        return message

    async def notify(self, notification: Notification) -> None:
        """Send the email for *notification*.

        Raises:
            MissingRecipientError: If the identity has no usable address.
            NotificationError: If the server could not be reached, rejected
                the message, or closed the connection before accepting it.
        """
        message = self.build_message(notification)
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._tls is TlsMode.IMPLICIT,
                start_tls=self._tls is TlsMode.STARTTLS,
                tls_context=self._tls_context,
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise NotificationError(
                f"sending the {notification.step} email of identity {notification.identity_id} "
                f"through {self._host}:{self._port} failed: {_describe(exc)}",
                identity_id=notification.identity_id,
                step=notification.step,
            ) from exc
        logger.debug("Sent %s email of identity %s", notification.step, notification.identity_id)

    def _recipient(self, notification: Notification) -> Address:
        value = lookup_path(notification.identity.raw, self._recipient_keys)
        problem = None
        if value is MISSING or value is None:
            problem = "is missing"
        elif not isinstance(value, str):
            problem = f"is a {type(value).__name__}, not a string"
        else:
            try:
                return _parse_address(value)
            except ValueError:
                problem = "is not an email address"
        raise MissingRecipientError(
            f"identity {notification.identity_id} has no email address: {self._recipient_path} "
            f"{problem}; the {notification.step} email was not sent",
            identity_id=notification.identity_id,
            step=notification.step,
            path=self._recipient_path,
        )


def _tls_mode(tls: TlsMode | str) -> TlsMode:
    try:
        return TlsMode(tls)
    except ValueError:
        choices = ", ".join(repr(mode.value) for mode in TlsMode)
        raise ConfigurationError(f"tls must be one of {choices}, got {tls!r}") from None


def _address(option: str, value: str) -> Address:
    try:
        return _parse_address(value)
    except ValueError:
        raise ConfigurationError(
            f"{option} must be an email address such as 'Example <security@example.com>', "
            f"got {value!r}"
        ) from None


def _parse_address(value: str) -> Address:
    """Parse ``"user@example.com"`` or ``"Name <user@example.com>"``; raise ValueError otherwise."""
    message = EmailMessage()
    try:
        message["To"] = value
        addresses = message["To"].addresses
    except (ValueError, IndexError, TypeError) as exc:
        raise ValueError("invalid address") from exc
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise ValueError("invalid address")
    address: Address = addresses[0]
    return address


def _sign_in_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigurationError(f"sign_in_url must be an absolute http or https URL, got {url!r}")
    return url


def _port(port: int | None, tls: TlsMode) -> int:
    if port is None:
        return _DEFAULT_PORTS[tls]
    if not 0 < port < 65536:
        raise ConfigurationError(f"port must be between 1 and 65535, got {port!r}")
    return port


def _credentials(
    username: str | None, password: str | None, tls: TlsMode, host: str
) -> tuple[str | None, str | None]:
    if (username is None) != (password is None):
        raise ConfigurationError("username and password must be given together, or neither")
    if username is not None and tls is TlsMode.NONE and not _is_loopback(host):
        raise ConfigurationError(
            f"username and password would cross the network to {host!r} in clear text with "
            "tls='none'; use tls='starttls' or tls='implicit'"
        )
    return username, password


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _describe(exc: BaseException) -> str:
    detail = str(exc) or "no detail"
    return f"{type(exc).__name__}: {_EMAIL_ADDRESS.sub('<email address>', detail)}"


def _utc_now() -> datetime:
    return datetime.now(UTC)
