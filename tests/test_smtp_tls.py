"""`SmtpNotifier`'s STARTTLS and implicit TLS against aiosmtpd with a self-signed certificate."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from stale_tokens import NotificationError
from test_smtp import MailHandler, free_port, notification, notifier

OPENSSL = shutil.which("openssl")

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    assert OPENSSL is not None
    command = [
        OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - no shell
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def serve(handler: MailHandler, **options: Any) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return controller, port


async def test_smtp_notifier_starttls_delivers(certificate: tuple[Path, Path]) -> None:
    """With tls='starttls' the message goes through a server that requires STARTTLS."""
    handler = MailHandler()
    controller, port = serve(
        handler, tls_context=server_context(certificate), require_starttls=True
    )
    try:
        smtp = notifier(port, tls="starttls", tls_context=client_context(certificate))
        await smtp.notify(notification({"email": "person@example.org"}))
    finally:
        controller.stop()

    assert [envelope.rcpt_tos for envelope in handler.messages] == [["person@example.org"]]


async def test_smtp_notifier_implicit_tls_delivers(certificate: tuple[Path, Path]) -> None:
    """With tls='implicit' the message goes through a TLS-only port."""
    handler = MailHandler()
    controller, port = serve(handler, ssl_context=server_context(certificate))
    try:
        smtp = notifier(port, tls="implicit", tls_context=client_context(certificate))
        await smtp.notify(notification({"email": "person@example.org"}))
    finally:
        controller.stop()

    assert [envelope.rcpt_tos for envelope in handler.messages] == [["person@example.org"]]


async def test_smtp_notifier_rejects_untrusted_certificate(
    certificate: tuple[Path, Path],
) -> None:
    """Without the certificate in the trust store, STARTTLS fails and nothing is sent."""
    handler = MailHandler()
    controller, port = serve(
        handler, tls_context=server_context(certificate), require_starttls=True
    )
    try:
        with pytest.raises(NotificationError, match=r"(?i)certificate verify failed"):
            await notifier(port, tls="starttls").notify(
                notification({"email": "person@example.org"})
            )
    finally:
        controller.stop()

    assert handler.messages == []
