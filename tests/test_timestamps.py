"""RFC 3339 parsing and formatting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stale_tokens import format_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T12:00:00Z", datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("2024-03-01T12:00:00.5Z", datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2022-02-24T13:38:05.27892Z", datetime(2022, 2, 24, 13, 38, 5, 278920, tzinfo=UTC)),
        (
            "2023-02-03T15:41:22.898346346Z",
            datetime(2023, 2, 3, 15, 41, 22, 898346, tzinfo=UTC),
        ),
        ("2024-03-01T14:30:00+02:30", datetime(2024, 3, 1, 12, 0, tzinfo=UTC)),
        ("2024-03-01T07:00:00.123456789-05:00", datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-03-01t12:00:00z", datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_accepts_rfc3339(text: str, expected: datetime) -> None:
    """Zero to nine fraction digits, Z and numeric offsets all parse to aware UTC."""
    parsed = parse_timestamp(text)

    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "2024-03-01",
        "2024-03-01T12:00:00",
        "2024-03-01T12:00:00.1234567890Z",
        "2024-13-01T12:00:00Z",
        "2024-03-01T12:00:00+24:00",
        "2024-03-01T12:00:00+0200",
        "0001-01-01T00:00:00+01:00",
        " 2024-03-01T12:00:00Z",
    ],
)
def test_parse_timestamp_rejects_non_rfc3339(text: str) -> None:
    """Anything but a full RFC 3339 date-time raises ValueError."""
    with pytest.raises(ValueError, match=r"RFC 3339|offset|range|month"):
        parse_timestamp(text)


def test_format_timestamp_writes_utc_with_z() -> None:
    """Formatting converts to UTC and always writes six fraction digits."""
    moment = datetime(2024, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    assert format_timestamp(moment) == "2024-03-01T12:00:00.000000Z"


def test_format_timestamp_round_trips() -> None:
    """A formatted timestamp parses back to the same instant."""
    moment = datetime(2025, 7, 9, 1, 2, 3, 456789, tzinfo=UTC)

    assert parse_timestamp(format_timestamp(moment)) == moment


def test_format_timestamp_rejects_naive() -> None:
    """A naive datetime is ambiguous and is rejected with the fix."""
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2024, 3, 1, 12))  # noqa: DTZ001
