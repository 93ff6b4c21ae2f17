"""The example app's configuration, read from environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stale_tokens import ConfigurationError

__all__ = ["EMULATOR_URL", "Settings"]

# The address `python -m stale_tokens.testing` listens on by default. Like Ory Network,
# the emulator serves the Kratos public and admin APIs and the Hydra admin API
# on one base URL, so every URL setting defaults to it.
EMULATOR_URL = "http://127.0.0.1:4434"

DEFAULT_FLUSH_INTERVAL = 60.0
DEFAULT_MIN_WRITE_INTERVAL = 30 * 60.0
DEFAULT_MAX_WRITES_PER_MINUTE = 100
DEFAULT_SWEEP_INTERVAL = 24 * 60 * 60.0
DEFAULT_SESSION_COOKIE = "ory_kratos_session"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the example app reads from its environment.

    Attributes:
        kratos_public_url: Kratos public API, asked for ``/sessions/whoami``.
        kratos_admin_url: Kratos admin API, where activity is written.
        hydra_admin_url: Hydra admin API, or ``None`` when the app issues no
            OAuth2 tokens.
        api_key: Ory Network project API key for the admin APIs, or ``None``
            for a self-hosted Kratos and Hydra behind a private network.
        policy_file: A policy TOML file, or ``None`` for the default policy.
        session_cookie: The Kratos session cookie name; on Ory Network it is
            ``ory_session_<project slug>``.
        flush_interval: Seconds between two flushes of the activity tracker.
        min_write_interval: Seconds between two activity writes of one identity.
        max_writes_per_minute: Activity writes this process may start per
            minute; divide the project's budget by the number of processes.
        sweep_interval: Seconds between two scheduled sweeps; 0 turns the
            scheduled sweep off, for replicas that leave it to another one.
        sweep_dry_run: Whether the scheduled sweep only reports.
    """

    kratos_public_url: str = EMULATOR_URL
    kratos_admin_url: str = EMULATOR_URL
    hydra_admin_url: str | None = EMULATOR_URL
    api_key: str | None = None
    policy_file: Path | None = None
    session_cookie: str = DEFAULT_SESSION_COOKIE
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    min_write_interval: float = DEFAULT_MIN_WRITE_INTERVAL
    max_writes_per_minute: int = DEFAULT_MAX_WRITES_PER_MINUTE
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL
    sweep_dry_run: bool = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from *environ*, ``os.environ`` by default.

        Unset and empty variables take the defaults. ``HYDRA_ADMIN_URL=none``
        turns OAuth2 revocation off.

        Raises:
            ConfigurationError: If a number or boolean cannot be parsed, or a
                number is out of range.
        """
        env = os.environ if environ is None else environ

        def text(name: str, default: str) -> str:
            return env.get(name) or default

        hydra_url: str | None = text("HYDRA_ADMIN_URL", EMULATOR_URL)
        if hydra_url is not None and hydra_url.lower() == "none":
            hydra_url = None
        policy_file = env.get("STALE_TOKENS_POLICY_FILE")

        settings = cls(
            kratos_public_url=text("KRATOS_PUBLIC_URL", EMULATOR_URL),
            kratos_admin_url=text("KRATOS_ADMIN_URL", EMULATOR_URL),
            hydra_admin_url=hydra_url,
            api_key=env.get("ORY_API_KEY") or None,
            policy_file=Path(policy_file) if policy_file else None,
            session_cookie=text("KRATOS_SESSION_COOKIE", DEFAULT_SESSION_COOKIE),
            flush_interval=_number(env, "STALE_TOKENS_FLUSH_INTERVAL", DEFAULT_FLUSH_INTERVAL),
            min_write_interval=_number(
                env, "STALE_TOKENS_MIN_WRITE_INTERVAL", DEFAULT_MIN_WRITE_INTERVAL
            ),
            max_writes_per_minute=_count(
                env, "STALE_TOKENS_MAX_WRITES_PER_MINUTE", DEFAULT_MAX_WRITES_PER_MINUTE
            ),
            sweep_interval=_number(env, "STALE_TOKENS_SWEEP_INTERVAL", DEFAULT_SWEEP_INTERVAL),
            sweep_dry_run=_boolean(env, "STALE_TOKENS_SWEEP_DRY_RUN"),
        )
        if settings.sweep_interval < 0:
            raise ConfigurationError(
                f"STALE_TOKENS_SWEEP_INTERVAL must be 0 (off) or a number of seconds, "
                f"got {settings.sweep_interval!r}"
            )
        return settings


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be a number of seconds, got {value!r}; "
            f"unset it for the default {default:g}"
        ) from None


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be a whole number, got {value!r}; unset it for the default {default}"
        ) from None


def _boolean(env: Mapping[str, str], name: str) -> bool:
    value = (env.get(name) or "false").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {value!r}")
