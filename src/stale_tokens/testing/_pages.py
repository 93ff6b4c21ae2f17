"""Link headers and page tokens in the formats Kratos writes."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Protocol
from urllib.parse import quote_plus

__all__ = [
    "INVALID_PAGE_TOKEN",
    "decode_offset_token",
    "encode_offset_token",
    "encode_query",
    "link",
    "offset_links",
    "read_offset_page",
]

INVALID_PAGE_TOKEN = "The page token is invalid, do not craft your own page tokens"  # noqa: S105


def encode_query(items: Iterable[tuple[str, str]], overrides: Mapping[str, str]) -> str:
    """Encode a query like Go's ``url.Values.Encode``: keys sorted, values in order.

    Args:
        items: The request's query, repeated keys included.
        overrides: Keys whose values are replaced by one new value.
    """
    values: dict[str, list[str]] = {}
    for key, value in items:
        values.setdefault(key, []).append(value)
    for key, value in overrides.items():
        values[key] = [value]
    return "&".join(
        f"{quote_plus(key)}={quote_plus(value)}" for key in sorted(values) for value in values[key]
    )


def link(target: str, rel: str) -> str:
    """Format one Link header entry."""
    return f'<{target}>; rel="{rel}"'


def offset_links(
    path: str, items: Iterable[tuple[str, str]], *, total: int, page: int, per_page: int
) -> str:
    """Build ory/x's offset-mode links, quirks included.

    An empty result gets ``first``, ``next`` and ``prev``, so a client that
    follows ``next`` blindly never stops. A result that fits one page gets
    only ``first``.
    """
    query = list(items)

    def entry(target_page: int, rel: str) -> str:
        overrides = {"page": str(target_page), "per_page": str(per_page)}
        return link(f"{path}?{encode_query(query, overrides)}", rel)

    if total == 0:
        return ",".join([entry(0, "first"), entry(page + 1, "next"), entry(page - 1, "prev")])
    if total <= per_page:
        return entry(0, "first")
    last = (total - 1) // per_page
    links = [entry(0, "first")]
    if page < last:
        links.append(entry(page + 1, "next"))
    if page > 0:
        links.append(entry(page - 1, "prev"))
    links.append(entry(last, "last"))
    return ",".join(links)


def encode_offset_token(offset: int) -> str:
    """Encode the offset page token of Kratos < 1.1 and of session listings."""
    raw = json.dumps({"offset": str(offset), "v": 2}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_offset_token(token: str) -> int:
    """Decode an offset page token.

    Raises:
        ValueError: With Kratos's reason when the token is not one Kratos wrote.
    """
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = int(json.loads(base64.urlsafe_b64decode(padded))["offset"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ValueError(INVALID_PAGE_TOKEN) from None
    if offset < 0:
        raise ValueError(INVALID_PAGE_TOKEN)
    return offset


class _Query(Protocol):
    def get(self, key: str) -> str | None: ...


def read_offset_page(query: _Query, *, default_size: int, max_size: int) -> tuple[int, int]:
    """Read ``page``/``per_page`` or ``page_token``/``page_size`` as an offset and a size.

    A size of zero or less means *default_size*; a larger one than
    *max_size* is clamped.

    Raises:
        ValueError: With the 400 reason for a non-integer size or page, a
            negative page, or a page token Kratos did not write.
    """
    size_text = query.get("page_size") or query.get("per_page")
    size = _parse_int(size_text, "page_size") if size_text else default_size
    size = min(size if size > 0 else default_size, max_size)

    token = query.get("page_token")
    if token:
        return decode_offset_token(token), size
    page = _parse_int(query.get("page") or "0", "page")
    if page < 0:
        raise ValueError(f"The page query parameter must not be negative, got {page}")
    return page * size, size


def _parse_int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"The {name} query parameter must be an integer, got {text!r}") from None
