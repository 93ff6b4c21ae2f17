"""Email templates for the sweeper's notifications, filled from the `Notification`'s real values."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from string import Template

from .._decision import Step
from .._errors import ConfigurationError
from .._notify import Notification

__all__ = [
    "DEFAULT_DATE_FORMAT",
    "DEFAULT_TEMPLATES",
    "TEMPLATE_FIELDS",
    "EmailTemplate",
    "RenderedEmail",
    "render",
]

DEFAULT_DATE_FORMAT = "%d %B %Y"

TEMPLATE_FIELDS = frozenset(
    {
        "days_inactive",
        "last_activity_date",
        "next_step",
        "next_step_date",
        "days_until_next_step",
        "next_step_sentence",
        "revoke_date",
        "days_until_revoke",
        "revoke_sentence",
        "sign_in_url",
        "policy_name",
        "step",
    }
)

# The effect of each next step on the account, worded as the end of a sentence.
_CONSEQUENCES: Mapping[str, str] = {
    Step.WARN: "you will get a reminder",
    Step.SUSPEND: "your account will be suspended until you sign in again",
    Step.REVOKE: "you will be signed out on every device and app",
    Step.RE_ENGAGE: "you will get a reminder",
    Step.DEACTIVATE: (
        "your account will be deactivated, and only an administrator can reactivate it"
    ),
    Step.DELETE_NOTICE: "you will get a final notice before your account is deleted",
    Step.DELETE: "your account and its data will be deleted",
}


def _check_template(part: str, source: str) -> None:
    template = Template(source)
    if not template.is_valid():
        raise ConfigurationError(
            f"the {part} template {source!r} has a '$' that starts no field; "
            "write '$$' for a dollar sign"
        )
    unknown = sorted(set(template.get_identifiers()) - TEMPLATE_FIELDS)
    if unknown:
        raise ConfigurationError(
            f"the {part} template names unknown fields {unknown}; "
            f"the fields are {sorted(TEMPLATE_FIELDS)}"
        )


@dataclass(frozen=True, slots=True)
class EmailTemplate:
    """The subject, plain text and HTML of one kind of notification.

    Each part is a `string.Template`: ``$days_inactive`` or
    ``${next_step_date}`` is replaced by the value, ``$$`` is a dollar sign.
    The fields are:

    - ``days_inactive``: whole days since the last activity.
    - ``last_activity_date``: the date of the last activity.
    - ``next_step``: what happens next, such as "you will be signed out on
      every device and app"; empty when nothing follows.
    - ``next_step_date``: the date it happens; empty when nothing follows.
    - ``days_until_next_step``: whole days from sending until then; empty
      when nothing follows.
    - ``next_step_sentence``: "If you do not sign in before <date>, <next_step>.",
      or empty when nothing follows.
    - ``revoke_date``: the date every session and token is revoked; empty
      when the role is never revoked. With a ladder, the step after a
      warning is the suspension, so this is the date a warning must name.
    - ``days_until_revoke``: whole days from sending until then; empty when
      the role is never revoked.
    - ``revoke_sentence``: "If you do not sign in before <revoke_date>, you
      will be signed out on every device and app.", or empty.
    - ``sign_in_url``: the configured sign-in page.
    - ``policy_name`` and ``step``: the policy and the step being notified.

    Values are HTML-escaped in the HTML part, never in the others.

    Raises:
        ConfigurationError: If a part names an unknown field or has a stray ``$``.
    """

    subject: str
    text: str
    html: str

    def __post_init__(self) -> None:
        for part in ("subject", "text", "html"):
            _check_template(part, getattr(self, part))


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """A filled-in template, ready to send."""

    subject: str
    text: str
    html: str


DEFAULT_TEMPLATES: Mapping[str, EmailTemplate] = {
    Step.WARN: EmailTemplate(
        subject="Your account will be signed out on $revoke_date",
        text=(
            "Hello,\n\n"
            "Nobody has signed in to your account for $days_inactive days, since "
            "$last_activity_date. $revoke_sentence\n\n"
            "Signing in once keeps your account active:\n$sign_in_url\n"
        ),
        html=(
            "<p>Hello,</p>\n"
            "<p>Nobody has signed in to your account for $days_inactive days, since "
            "$last_activity_date. $revoke_sentence</p>\n"
            "<p>Signing in once keeps your account active: "
            '<a href="$sign_in_url">sign in</a>.</p>\n'
        ),
    ),
    Step.RE_ENGAGE: EmailTemplate(
        subject="We miss you",
        text=(
            "Hello,\n\n"
            "You last signed in $days_inactive days ago, on $last_activity_date, and have "
            "been signed out everywhere since. Your account is still here. "
            "$next_step_sentence\n\n"
            "Sign in again at any time:\n$sign_in_url\n"
        ),
        html=(
            "<p>Hello,</p>\n"
            "<p>You last signed in $days_inactive days ago, on $last_activity_date, and have "
            "been signed out everywhere since. Your account is still here. "
            "$next_step_sentence</p>\n"
            '<p><a href="$sign_in_url">Sign in again</a> at any time.</p>\n'
        ),
    ),
    Step.DELETE_NOTICE: EmailTemplate(
        subject="Your account will be deleted on $next_step_date",
        text=(
            "Hello,\n\n"
            "Nobody has signed in to your account for $days_inactive days, since "
            "$last_activity_date. $next_step_sentence Deletion cannot be undone.\n\n"
            "Sign in to keep your account:\n$sign_in_url\n"
        ),
        html=(
            "<p>Hello,</p>\n"
            "<p>Nobody has signed in to your account for $days_inactive days, since "
            "$last_activity_date. $next_step_sentence Deletion cannot be undone.</p>\n"
            '<p><a href="$sign_in_url">Sign in</a> to keep your account.</p>\n'
        ),
    ),
}


def render(
    template: EmailTemplate,
    notification: Notification,
    *,
    sign_in_url: str,
    now: datetime,
    date_format: str = DEFAULT_DATE_FORMAT,
) -> RenderedEmail:
    """Fill *template* with the values of *notification* as of *now*; dates are UTC."""
    values = _values(notification, sign_in_url=sign_in_url, now=now, date_format=date_format)
    escaped = {name: html.escape(value, quote=True) for name, value in values.items()}
    return RenderedEmail(
        subject=Template(template.subject).substitute(values),
        text=Template(template.text).substitute(values),
        html=Template(template.html).substitute(escaped),
    )


def _values(
    notification: Notification, *, sign_in_url: str, now: datetime, date_format: str
) -> dict[str, str]:
    def day(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime(date_format)

    values = {
        "days_inactive": str(notification.days_inactive),
        "last_activity_date": day(notification.last_activity_at),
        "next_step": "",
        "next_step_date": "",
        "days_until_next_step": "",
        "next_step_sentence": "",
        "revoke_date": "",
        "days_until_revoke": "",
        "revoke_sentence": "",
        "sign_in_url": sign_in_url,
        "policy_name": notification.policy_name,
        "step": notification.step,
    }
    revoke_at = notification.revoke_at
    if revoke_at is not None:
        revoke_date = day(revoke_at)
        values["revoke_date"] = revoke_date
        values["days_until_revoke"] = str(max(0, (revoke_at - now).days))
        values["revoke_sentence"] = (
            f"If you do not sign in before {revoke_date}, {_CONSEQUENCES[Step.REVOKE]}."
        )

    next_step, next_step_at = notification.next_step, notification.next_step_at
    if next_step is None or next_step_at is None:
        return values

    consequence = _CONSEQUENCES.get(next_step, "")
    date = day(next_step_at)
    values["next_step"] = consequence
    values["next_step_date"] = date
    values["days_until_next_step"] = str(max(0, (next_step_at - now).days))
    if consequence:
        values["next_step_sentence"] = f"If you do not sign in before {date}, {consequence}."
    return values
