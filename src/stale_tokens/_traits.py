"""Dotted-path lookup into identity traits and ``metadata_admin``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["MISSING", "describe_value", "lookup_path", "split_path", "type_name"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Returned by `lookup_path` when a segment of the path does not exist."""


# A policy has a handful of paths and decide() splits each of them per identity.
@lru_cache(maxsize=64)
def split_path(path: str) -> tuple[str, ...]:
    """Split a dotted path such as ``"profile.role"`` into its keys.

    Raises:
        ValueError: If *path* is empty or has an empty segment (``"a..b"``).
    """
    keys = tuple(path.split("."))
    if not path or any(not key for key in keys):
        raise ValueError(f"{path!r} is not a dotted path of non-empty keys")
    return keys


def lookup_path(value: object, keys: tuple[str, ...]) -> Any:
    """Follow *keys* through nested JSON objects.

    Returns:
        The value found, which may be ``None`` for a JSON ``null``, or
        `MISSING` when a key is absent or a value on the way is not an object.
    """
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    return value


# Words, numbers and timestamps; no '@', so an email address never matches.
_SHOWABLE = re.compile(r"[A-Za-z0-9_.:+\- ]{1,40}")


def describe_value(value: object) -> str:
    """Show *value* when it cannot be personal data, otherwise only its type and size."""
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        if _SHOWABLE.fullmatch(value):
            return repr(value)
        return f"a string of {len(value)} characters"
    if isinstance(value, Mapping | list | tuple):
        return f"{type_name(value)} of {len(value)} items"
    return type_name(value)


def type_name(value: object) -> str:
    """Name the type of *value* with its article, such as "an int" or "a list"."""
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}"
