"""Build a `Policy` from TOML or plain mappings, rejecting unknown keys."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, date, datetime, time
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError
from ._thresholds import DEFAULT_ROLES, CredentialKindThresholds, Ladder, RolePolicy
from ._timestamps import parse_timestamp

if TYPE_CHECKING:
    from ._policy import Policy

__all__ = ["policy_from_mapping", "policy_from_toml"]

_NEVER = "never"


def policy_from_toml(cls: type[Policy], path: str | PathLike[str]) -> Policy:
    """Read and validate the policy in the TOML file at *path*."""
    try:
        with Path(path).open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the policy file {str(path)!r}: {exc.strerror or exc}"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"the policy file {str(path)!r} is not valid TOML: {exc}") from exc
    try:
        return policy_from_mapping(cls, document)
    except ConfigurationError as exc:
        raise ConfigurationError(f"in the policy file {str(path)!r}: {exc}") from None


def policy_from_mapping(cls: type[Policy], mapping: Mapping[str, Any]) -> Policy:
    """Validate *mapping* key by key and build the *cls* policy it describes."""
    valid_keys = tuple(field.name for field in fields(cls))
    _reject_unknown_keys(_require_table(mapping, "the policy"), valid_keys, "the policy")

    options: dict[str, Any] = {}
    for key, value in mapping.items():
        if key == "roles":
            options["roles"] = _roles(value)
        elif key == "credential_kinds":
            options["credential_kinds"] = _credential_kinds(value)
        elif key == "ladder":
            options["ladder"] = _ladder(value)
        elif key == "exempt_account_types":
            options["exempt_account_types"] = _string_list(value, key)
        elif key == "tracking_started_at":
            options["tracking_started_at"] = _moment(value, key)
        else:
            options[key] = value
    return cls(**options)


def _roles(value: object) -> dict[str, RolePolicy]:
    roles = {}
    for name, value_table in _require_table(value, "roles").items():
        prefix = f"roles.{name}"
        table = _require_table(value_table, prefix)
        _reject_unknown_keys(table, _ROLE_KEYS, prefix)
        options = {key: _days(option, f"{prefix}.{key}") for key, option in table.items()}
        with _prefixed(prefix):
            if name in DEFAULT_ROLES:
                # Keys left out keep the built-in values; Policy fills in the
                # built-in warning, as it does for a RolePolicy built in Python.
                options.setdefault("revoke_after_days", DEFAULT_ROLES[name].revoke_after_days)
                roles[name] = RolePolicy(**options)
            elif "revoke_after_days" not in options:
                raise ConfigurationError(
                    "revoke_after_days is missing; a role that is not built in must set it "
                    '(a number of days or "never")'
                )
            else:
                roles[name] = RolePolicy(**options)
    return roles


_ROLE_KEYS = tuple(field.name for field in fields(RolePolicy))


def _credential_kinds(value: object) -> CredentialKindThresholds:
    prefix = "credential_kinds"
    table = _require_table(value, prefix)
    _reject_unknown_keys(table, _KIND_KEYS, prefix)
    options = {key: _days(option, f"{prefix}.{key}") for key, option in table.items()}
    with _prefixed(prefix):
        return CredentialKindThresholds(**options)


_KIND_KEYS = tuple(field.name for field in fields(CredentialKindThresholds))


def _ladder(value: object) -> Ladder:
    prefix = "ladder"
    table = _require_table(value, prefix)
    _reject_unknown_keys(table, _LADDER_KEYS, prefix)
    # delete_enabled is a boolean, and delete_notice_days has no "never", so
    # both reach Ladder as written and its error shows the value in the file.
    options = {
        key: option if key in _LADDER_LITERAL_KEYS else _days(option, f"{prefix}.{key}")
        for key, option in table.items()
    }
    with _prefixed(prefix):
        return Ladder(**options)


_LADDER_KEYS = tuple(field.name for field in fields(Ladder))
_LADDER_LITERAL_KEYS = frozenset({"delete_enabled", "delete_notice_days"})


def _days(value: object, name: str) -> Any:
    # "never" is the TOML spelling of None, which TOML cannot express.
    if value == _NEVER:
        return None
    if value is None:
        raise ConfigurationError(f'{name} must be a positive number of days or "never", got None')
    return value


def _moment(value: object, name: str) -> datetime:
    # tomllib returns an aware datetime for an offset date-time, a naive one
    # for a local date-time and a date for a bare date. A bare date means
    # midnight UTC.
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            pass
    raise ConfigurationError(
        f"{name} must be an RFC 3339 date-time with an offset, such as "
        f"2026-01-01T00:00:00Z, or a date, got {value!r}"
    )


def _string_list(value: object, name: str) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ConfigurationError(f"{name} must be a list of strings, got {value!r}")
    return list(value)


def _require_table(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{name} must be a table (a mapping of keys to values), got {value!r}"
        )
    return value


def _reject_unknown_keys(table: Mapping[Any, Any], valid: tuple[str, ...], name: str) -> None:
    for key in table:
        if key not in valid:
            place = "at the top level" if name == "the policy" else f"in {name}"
            raise ConfigurationError(
                f"unknown key {key!r} {place}; valid keys are {', '.join(sorted(valid))}"
            )


@contextmanager
def _prefixed(prefix: str) -> Iterator[None]:
    """Put the table's dotted name in front of errors raised for one of its fields."""
    try:
        yield
    except ConfigurationError as exc:
        raise ConfigurationError(f"{prefix}.{exc}") from None
