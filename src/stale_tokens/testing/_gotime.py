"""Timestamps written the way Go's ``time.RFC3339Nano`` layout writes them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from .._timestamps import parse_timestamp

__all__ = ["format_go_time", "parse_keeping_offset"]

_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})\Z")


def format_go_time(moment: datetime, *, nanoseconds: int = 0) -> str:
    """Format *moment* like Go's ``RFC3339Nano``: trailing fraction zeros dropped.

    Args:
        moment: An aware datetime; its own offset is kept (``Z`` for UTC).
        nanoseconds: Sub-microsecond digits (0-999) that Python cannot hold but
            Go writes for values that never went through the database.
    """
    whole = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    fraction = f"{moment.microsecond * 1000 + nanoseconds:09d}".rstrip("0")
    offset = moment.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        zone = "Z"
    else:
        sign = "-" if offset < timedelta(0) else "+"
        minutes = abs(int(offset.total_seconds())) // 60
        zone = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{whole}.{fraction}{zone}" if fraction else f"{whole}{zone}"


def parse_keeping_offset(value: str) -> datetime:
    """Parse an RFC 3339 timestamp and keep its UTC offset, so it renders back the same.

    Raises:
        ValueError: If *value* is not an RFC 3339 timestamp.
    """
    moment = parse_timestamp(value)
    match = _OFFSET.search(value)
    if match is None:
        return moment
    sign = -1 if match[1] == "-" else 1
    offset = timedelta(hours=int(match[2]), minutes=int(match[3]))
    return moment.astimezone(timezone(sign * offset))
