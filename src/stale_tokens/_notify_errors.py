"""Errors a notifier raises when a message was not handed over."""

from __future__ import annotations

from ._errors import StaleTokensError

__all__ = ["MissingRecipientError", "NotificationError"]


class NotificationError(StaleTokensError):
    """Raised when a notification could not be handed over, such as a mail server's rejection.

    The sweeper then records no marker for the step, so the next run sends
    it again. Messages never contain an email address.

    Attributes:
        identity_id: The identity the notification was for.
        step: The step of the notification, such as ``"warn"``.
    """

    def __init__(self, message: str, *, identity_id: str, step: str) -> None:
        super().__init__(message)
        self.identity_id = identity_id
        self.step = step


class MissingRecipientError(NotificationError):
    """Raised when an identity has no usable address at the configured path (``traits.email``).

    Nothing was sent. `sweep` reports the identity as skipped rather than
    failed and records no marker, so a later run sends the message once an
    address is added.

    Attributes:
        path: The dotted path the address was looked up at.
    """

    def __init__(self, message: str, *, identity_id: str, step: str, path: str) -> None:
        super().__init__(message, identity_id=identity_id, step=step)
        self.path = path
