"""`SmtpNotifier` against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from stale_tokens import (
    ConfigurationError,
    Identity,
    Ladder,
    MissingRecipientError,
    Notification,
    NotificationError,
    Policy,
    read_markers,
    sweep,
)
from stale_tokens.integrations.smtp import EmailTemplate, SmtpNotifier
from stale_tokens.testing import OryEmulator
from sweeping import NOW, RecordingAuditSink, add_identity, clients

pytestmark = pytest.mark.anyio

SENDER = "Security <security@example.com>"
SIGN_IN_URL = "https://app.example.com/login?return_to=/home&source=email"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class MailHandler:
    """An aiosmtpd handler that stores, rejects or drops each message, by its mode."""

    messages: list[Envelope] = field(default_factory=list)
    mode: str = "accept"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.mode == "reject":
            # Real servers often quote the recipient back.
            return f"554 5.7.1 Message to <{envelope.rcpt_tos[0]}> rejected by policy"
        if self.mode == "drop":
            assert server.transport is not None
            server.transport.close()
            return "421 closing"
        self.messages.append(envelope)
        return "250 OK"

    def received(self) -> list[EmailMessage]:
        parsed = []
        for envelope in self.messages:
            assert isinstance(envelope.content, bytes)
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def mail() -> Iterator[tuple[MailHandler, int]]:
    handler = MailHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def notifier(port: int | None, **options: Any) -> SmtpNotifier:
    settings: dict[str, Any] = {
        "sender": SENDER,
        "sign_in_url": SIGN_IN_URL,
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "timeout": 5.0,
        "clock": lambda: NOW,
    }
    settings.update(options)
    return SmtpNotifier(**settings)


def notification(
    traits: Any,
    *,
    step: str = "warn",
    next_step: str | None = "revoke",
    revoke_in: timedelta | None = timedelta(days=6),
) -> Notification:
    identity = Identity.from_json({"id": "4f1c7a2e", "state": "active", "traits": traits})
    return Notification(
        step=step,
        identity=identity,
        days_inactive=84,
        last_activity_at=NOW - timedelta(days=84),
        next_step=next_step,
        next_step_at=NOW + timedelta(days=6) if next_step else None,
        policy_name="default",
        episode="2026-03-09T12:00:00Z",
        revoke_at=NOW + revoke_in if revoke_in is not None else None,
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


async def test_smtp_notifier_sends_warning(mail: tuple[MailHandler, int]) -> None:
    """The warning reaches the server with the real days, date and sign-in URL in both parts."""
    handler, port = mail

    await notifier(port).notify(notification({"email": "person@example.org"}))

    assert [envelope.rcpt_tos for envelope in handler.messages] == [["person@example.org"]]
    assert handler.messages[0].mail_from == "security@example.com"
    (message,) = handler.received()
    assert message["Subject"] == "Your account will be signed out on 07 June 2026"
    assert message["To"] == "person@example.org"
    text, html = parts(message)
    assert "for 84 days, since 09 March 2026" in text
    assert "If you do not sign in before 07 June 2026, you will be signed out" in text
    assert SIGN_IN_URL in text
    assert "for 84 days, since 09 March 2026" in html


async def test_smtp_notifier_escapes_html(mail: tuple[MailHandler, int]) -> None:
    """Values are HTML-escaped in the HTML part and kept as they are in the text part."""
    handler, port = mail
    template = EmailTemplate(
        subject="Policy $policy_name",
        text="Policy $policy_name: $sign_in_url",
        html='<p>Policy $policy_name: <a href="$sign_in_url">sign in</a></p>',
    )
    sent = notification({"email": "person@example.org"})
    sent = replace(sent, policy_name="<b>x</b>")

    await notifier(port, templates={"warn": template}).notify(sent)

    (message,) = handler.received()
    text, html = parts(message)
    assert text.strip() == f"Policy <b>x</b>: {SIGN_IN_URL}"
    assert "Policy &lt;b&gt;x&lt;/b&gt;" in html
    assert 'href="https://app.example.com/login?return_to=/home&amp;source=email"' in html
    assert message["Subject"] == "Policy <b>x</b>"


async def test_smtp_notifier_without_next_step(mail: tuple[MailHandler, int]) -> None:
    """A re-engagement message with nothing after it leaves the next-step sentence out."""
    handler, port = mail

    await notifier(port).notify(
        notification({"email": "person@example.org"}, step="re_engage", next_step=None)
    )

    (message,) = handler.received()
    text, _ = parts(message)
    assert message["Subject"] == "We miss you"
    assert "84 days ago, on 09 March 2026" in text
    assert "If you do not sign in" not in text


async def test_smtp_notifier_recipient_path(mail: tuple[MailHandler, int]) -> None:
    """The address is read from the configured dotted path."""
    handler, port = mail
    traits = {"email": "old@example.org", "contact": {"work": "work@example.org"}}

    await notifier(port, recipient_path="traits.contact.work").notify(notification(traits))

    assert [envelope.rcpt_tos for envelope in handler.messages] == [["work@example.org"]]


@pytest.mark.parametrize(
    ("traits", "problem"),
    [
        ({}, "is missing"),
        ({"email": None}, "is missing"),
        ({"email": ["a@example.org"]}, "is a list, not a string"),
        ({"email": "not an address"}, "is not an email address"),
        ("not an object", "is missing"),
    ],
)
async def test_smtp_notifier_missing_recipient(
    mail: tuple[MailHandler, int], traits: Any, problem: str
) -> None:
    """An identity without a usable address raises `MissingRecipientError` and nothing is sent."""
    handler, port = mail

    with pytest.raises(MissingRecipientError, match=f"traits.email {problem}") as caught:
        await notifier(port).notify(notification(traits))

    assert caught.value.identity_id == "4f1c7a2e"
    assert caught.value.path == "traits.email"
    assert handler.messages == []


async def test_smtp_notifier_server_rejects(mail: tuple[MailHandler, int]) -> None:
    """A 5xx reply raises `NotificationError` whose message hides the quoted address."""
    handler, port = mail
    handler.mode = "reject"

    with pytest.raises(NotificationError, match="554") as caught:
        await notifier(port).notify(notification({"email": "person@example.org"}))

    assert "person@example.org" not in str(caught.value)
    assert "<email address>" in str(caught.value)
    assert handler.messages == []


async def test_smtp_notifier_server_drops(mail: tuple[MailHandler, int]) -> None:
    """A connection closed before the reply raises `NotificationError`."""
    handler, port = mail
    handler.mode = "drop"

    with pytest.raises(NotificationError, match="SMTPServerDisconnected"):
        await notifier(port).notify(notification({"email": "person@example.org"}))

    assert handler.messages == []


async def test_smtp_notifier_requires_starttls(mail: tuple[MailHandler, int]) -> None:
    """With tls='starttls' a server that offers no STARTTLS gets nothing in clear text."""
    handler, port = mail

    with pytest.raises(NotificationError, match="STARTTLS"):
        await notifier(port, tls="starttls").notify(notification({"email": "person@example.org"}))

    assert handler.messages == []


async def test_smtp_notifier_connection_refused() -> None:
    """No server listening raises `NotificationError`."""
    with pytest.raises(NotificationError, match=r"127\.0\.0\.1"):
        await notifier(free_port()).notify(notification({"email": "person@example.org"}))


@pytest.mark.parametrize("mode", ["reject", "drop"])
async def test_sweep_with_smtp_retries_failed_warning(
    mail: tuple[MailHandler, int], mode: str
) -> None:
    """A rejected or dropped warning is a failure with no marker; the next run sends it once."""
    handler, port = mail
    emulator = OryEmulator()
    identity_id = add_identity(emulator, days_inactive=84, email="person@example.org")
    smtp = notifier(port)

    async with clients(emulator) as (kratos, hydra):
        handler.mode = mode
        first = await sweep(kratos=kratos, hydra=hydra, policy=Policy(), notifier=smtp, now=NOW)
        rejected = await kratos.get_identity(identity_id)
        handler.mode = "accept"
        second = await sweep(kratos=kratos, hydra=hydra, policy=Policy(), notifier=smtp, now=NOW)
        third = await sweep(kratos=kratos, hydra=hydra, policy=Policy(), notifier=smtp, now=NOW)

    assert [failure.identity_id for failure in first.failures] == [identity_id]
    assert "NotificationError" in first.failures[0].error
    assert "person@example.org" not in first.failures[0].error
    assert first.done == {}
    assert dict(read_markers(rejected).steps) == {}
    assert second.done == {"warn": 1}
    assert third.done == {}
    assert [envelope.rcpt_tos for envelope in handler.messages] == [["person@example.org"]]


async def test_sweep_with_smtp_skips_missing_address(mail: tuple[MailHandler, int]) -> None:
    """An identity without an address is skipped with the reason, unmarked, and retried later."""
    handler, port = mail
    emulator = OryEmulator()
    add_identity(emulator, days_inactive=84, email="person@example.org")
    without = emulator.kratos.add_identity(
        traits={},
        metadata_admin={"last_activity_at": (NOW - timedelta(days=84)).isoformat()},
        created_at=NOW - timedelta(days=1000),
    )["id"]

    audit = RecordingAuditSink()

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            notifier=notifier(port),
            audit=audit,
            now=NOW,
        )
        add_email = {"op": "add", "path": "/traits/email", "value": "added@example.org"}
        await kratos.patch_identity(without, [add_email])
        later = await sweep(
            kratos=kratos, hydra=hydra, policy=Policy(), notifier=notifier(port), now=NOW
        )

    assert report.done == {"warn": 1}
    assert report.failures == ()
    assert [skipped.identity_id for skipped in report.skipped] == [without]
    assert "traits.email is missing" in report.skipped[0].reason
    (event,) = audit.of_type("sweep_skipped_no_recipient")
    assert event.identity_id == without
    assert later.done == {"warn": 1}
    assert [envelope.rcpt_tos for envelope in handler.messages] == [
        ["person@example.org"],
        ["added@example.org"],
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tls": "ssl"}, "tls must be one of 'none', 'starttls', 'implicit'"),
        ({"sender": "nobody"}, "sender must be an email address"),
        ({"sign_in_url": "javascript:alert(1)"}, "sign_in_url must be an absolute http"),
        ({"sign_in_url": "/login"}, "sign_in_url must be an absolute http"),
        ({"port": 0}, "port must be between 1 and 65535"),
        ({"timeout": 0.0}, "timeout must be a positive number of seconds"),
        ({"username": "mailer"}, "username and password must be given together"),
        ({"recipient_path": "traits..email"}, "recipient_path must be a dotted path"),
        (
            {"host": "smtp.example.com", "username": "mailer", "password": "secret"},
            "in clear text with tls='none'",
        ),
    ],
)
def test_smtp_notifier_rejects_invalid_options(options: dict[str, Any], message: str) -> None:
    """Each invalid option raises `ConfigurationError` naming it."""
    with pytest.raises(ConfigurationError, match=message) as caught:
        notifier(**{"port": 25, **options})

    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"subject": "$days"}, r"unknown fields \['days'\]"),
        ({"text": "costs $5"}, "write '\\$\\$' for a dollar sign"),
    ],
)
def test_email_template_rejects_unknown_fields(template: dict[str, str], message: str) -> None:
    """A template naming an unknown field, or with a stray '$', raises `ConfigurationError`."""
    parts = {"subject": "s", "text": "t", "html": "h", **template}

    with pytest.raises(ConfigurationError, match=message):
        EmailTemplate(**parts)


def test_smtp_notifier_repr_hides_credentials() -> None:
    """The repr names the server but never the username or password."""
    smtp = notifier(2525, host="smtp.example.com", tls="implicit", username="u", password="p4ss")

    assert repr(smtp) == "SmtpNotifier(host='smtp.example.com', port=2525, tls='implicit')"


def test_smtp_notifier_default_ports() -> None:
    """Each TLS mode has its usual port when none is given."""
    ports = {
        mode: repr(notifier(None, tls=mode)).split("port=")[1].split(",")[0]
        for mode in ("none", "starttls", "implicit")
    }

    assert ports == {"none": "25", "starttls": "587", "implicit": "465"}


def test_smtp_notifier_missing_template() -> None:
    """A step with no template raises `NotificationError` naming the templates option."""
    with pytest.raises(NotificationError, match="no email template for step 'delete'"):
        notifier(25).build_message(notification({"email": "a@example.org"}, step="delete"))


def test_smtp_notifier_message_headers() -> None:
    """The message has a Date in UTC and a Message-ID in the sender's domain."""
    message = notifier(25).build_message(notification({"email": "a@example.org"}))

    assert message["Date"] == "Mon, 01 Jun 2026 12:00:00 +0000"
    assert message["Message-ID"].endswith("@example.com>")


# The test server takes AUTH without TLS, which aiosmtpd warns about; it only
# listens on loopback.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_smtp_notifier_authenticates() -> None:
    """Username and password reach the server through SMTP AUTH before the message."""
    handler = MailHandler()
    logins: list[tuple[str, str]] = []

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"s3cret")

    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        await notifier(port, username="mailer", password="s3cret").notify(
            notification({"email": "person@example.org"})
        )
    finally:
        controller.stop()

    assert logins == [("mailer", "s3cret")]
    assert [envelope.rcpt_tos for envelope in handler.messages] == [["person@example.org"]]


def test_smtp_ladder_warning_names_the_revocation_date() -> None:
    """With a ladder the next step is the suspension, and the warning still names revocation."""
    sent = notification(
        {"email": "a@example.org"}, next_step="suspend", revoke_in=timedelta(days=36)
    )

    message = notifier(25).build_message(sent)

    assert message["Subject"] == "Your account will be signed out on 07 July 2026"
    text, html = parts(message)
    assert "If you do not sign in before 07 July 2026, you will be signed out" in text
    assert "If you do not sign in before 07 July 2026, you will be signed out" in html
    assert "07 June 2026" not in text


def test_smtp_revoke_fields_empty_without_revocation() -> None:
    """A notification without revoke_at leaves the revocation fields empty."""
    template = EmailTemplate(
        subject="[$revoke_date][$days_until_revoke]", text="$revoke_sentence", html="x"
    )
    sent = notification({"email": "a@example.org"}, revoke_in=None)

    message = notifier(25, templates={"warn": template}).build_message(sent)

    assert message["Subject"] == "[][]"


async def test_sweep_with_ladder_warning_email_names_revocation(
    mail: tuple[MailHandler, int],
) -> None:
    """A ladder warning, followed by a suspension, emails the revocation date at day 90."""
    handler, port = mail
    emulator = OryEmulator()
    add_identity(emulator, days_inactive=31, email="person@example.org")
    revoke_date = (NOW + timedelta(days=59)).strftime("%d %B %Y")

    async with clients(emulator) as (kratos, hydra):
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(ladder=Ladder()),
            notifier=notifier(port),
            now=NOW,
        )

    assert report.done == {"warn": 1}
    (message,) = handler.received()
    assert message["Subject"] == f"Your account will be signed out on {revoke_date}"
    text, _ = parts(message)
    assert f"If you do not sign in before {revoke_date}, you will be signed out" in text
