"""RFC 3339 timestamps as Kratos and Hydra write them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["format_timestamp", "parse_timestamp", "require_aware"]

# Go's time.RFC3339Nano drops trailing zeros of the fraction, so Kratos emits
# anywhere from 0 to 9 fraction digits, and offsets other than Z when the
# database session runs in another zone.
_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})\Z"
)


def parse_timestamp(value: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime.

    Fractions beyond microseconds are truncated, as Python cannot hold them.

    Raises:
        ValueError: If *value* is not an RFC 3339 date-time with a ``Z`` or a
            numeric offset.
    """
    match = _RFC3339.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp")

    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    offset = match["offset"]
    tzinfo = UTC if offset in ("Z", "z") else _parse_offset(offset)
    parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}")
    try:
        return parsed.replace(tzinfo=tzinfo).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is outside the range of representable dates") from None


def _parse_offset(offset: str) -> timezone:
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(f"{offset!r} is not a valid UTC offset")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with microseconds and a ``Z``.

    Raises:
        ValueError: If *moment* is naive.
    """
    require_aware(moment, "moment")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def require_aware(moment: datetime, name: str) -> None:
    """Raise `ValueError` when *moment* has no time zone.

    A naive datetime is ambiguous: the same value means different instants on
    machines in different zones, so the library never guesses.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware datetime, got the naive {moment.isoformat()}; "
            "pass datetime.now(UTC) or attach a tzinfo"
        )
