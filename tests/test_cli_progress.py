"""Progress of `stale-tokens sweep`: the terminal line, the log lines and the estimate."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from cli_helpers import BASE_URL, FakeTerminal, add_inactive_identity, run_cli
from stale_tokens import Identity, Policy
from stale_tokens.cli._logging import StatusLine
from stale_tokens.cli._progress import SweepProgress
from stale_tokens.testing import OryEmulator

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """Monotonic seconds that advance only when a test sets them."""

    def __init__(self) -> None:
        self.seconds = 100.0

    def __call__(self) -> float:
        return self.seconds


def _identity(number: int, *, days_inactive: int) -> Identity:
    return Identity.from_json(
        {
            "id": f"00000000-0000-4000-8000-{number:012d}",
            "metadata_admin": {
                "last_activity_at": (NOW - timedelta(days=days_inactive)).isoformat()
            },
            "created_at": "2020-01-01T00:00:00Z",
        }
    )


def test_progress_terminal_line_shows_counts_and_estimate() -> None:
    """On a terminal the line shows the count, the rate, the missing total and the time left."""
    terminal = FakeTerminal()
    clock = FakeClock()
    progress = SweepProgress(
        policy=Policy(), now=NOW, status_line=StatusLine(terminal), clock=clock, sample_every=1
    )
    page = [_identity(number, days_inactive=200 if number < 4 else 1) for number in range(10)]

    clock.seconds += 2
    progress.add_page(page)
    listing = terminal.getvalue()
    progress.end_listing()
    clock.seconds += 1
    progress.reach(page[0].id)
    clock.seconds += 1
    progress.reach(page[1].id)
    progress.reach(page[1].id)
    acting = terminal.getvalue()[len(listing) :]
    progress.finish()

    assert listing == (
        "\rlisting: 10 identities (5/s), about 4 due; total unknown: Kratos sends no "
        "identity count in keyset pagination\x1b[K"
    )
    assert "\racting: 1 of about 4 due identities (1.0/s), about 3 s left (estimate)" in acting
    assert "\racting: 2 of about 4 due identities (1.0/s), about 2 s left (estimate)" in acting
    assert progress.reached == 2
    assert terminal.getvalue().endswith("\r\x1b[K")


def test_progress_estimate_extrapolates_sample() -> None:
    """With one identity in 16 decided, pages of any size give the due share of the sample."""
    progress = SweepProgress(policy=Policy(), now=NOW, status_line=None, clock=FakeClock())
    identities = [
        _identity(number, days_inactive=200 if number < 16 else 1) for number in range(32)
    ]

    progress.add_page(identities[:10])
    after_first_page = progress.estimated_due
    progress.add_page(identities[10:20])
    progress.add_page(identities[20:])

    assert after_first_page == 10
    assert progress.listed == 32
    assert progress.estimated_due == 16


def test_progress_terminal_refresh_is_throttled() -> None:
    """Within 0.2 s of the last drawing, a new page does not redraw the line."""
    terminal = FakeTerminal()
    clock = FakeClock()
    progress = SweepProgress(
        policy=Policy(), now=NOW, status_line=StatusLine(terminal), clock=clock
    )

    progress.add_page([_identity(1, days_inactive=1)])
    clock.seconds += 0.1
    progress.add_page([_identity(2, days_inactive=1)])
    drawn_before = terminal.getvalue()
    clock.seconds += 0.2
    progress.add_page([_identity(3, days_inactive=1)])

    assert drawn_before.count("\r") == 1
    assert "listing: 1 identities" in drawn_before
    assert "listing: 3 identities" in terminal.getvalue()


def test_progress_log_lines_every_interval(caplog: pytest.LogCaptureFixture) -> None:
    """Off a terminal, a log line appears once per interval and at the end of the listing."""
    caplog.set_level(logging.INFO, logger="stale_tokens.cli")
    clock = FakeClock()
    progress = SweepProgress(
        policy=Policy(), now=NOW, status_line=None, clock=clock, log_interval=10, sample_every=1
    )

    progress.add_page([_identity(1, days_inactive=200)])
    clock.seconds += 5
    progress.add_page([_identity(2, days_inactive=1)])
    lines_before_interval = len(caplog.records)
    clock.seconds += 6
    progress.add_page([_identity(3, days_inactive=1)])
    progress.end_listing()
    progress.finish()

    messages = [record.getMessage() for record in caplog.records]
    assert lines_before_interval == 0
    assert messages[0].startswith("listing: 3 identities (0/s), about 1 due; total unknown")
    assert messages[1].startswith("listing: 3 identities")
    assert messages[2] == "acting: 0 of about 1 due identities (0.0/s)"
    assert len(messages) == 3


def test_sweep_on_terminal_draws_and_clears_line() -> None:
    """A sweep with stderr on a terminal draws the progress line and erases it before the end."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)
    terminal = FakeTerminal()

    result = run_cli("sweep", "-q", "--kratos-url", BASE_URL, stderr=terminal, emulator=emulator)

    assert result.code == 0
    assert "\rlisting: 1 identities" in result.stderr
    assert "\racting: 1 of about 1 due identities" in result.stderr
    assert result.stderr.endswith("\r\x1b[K")
    assert emulator.requests["delete_sessions"] == 1


def test_sweep_on_terminal_clears_line_before_log_record() -> None:
    """A log record on a terminal starts on a cleared line, not after the progress text."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)
    terminal = FakeTerminal()

    result = run_cli("sweep", "--kratos-url", BASE_URL, stderr=terminal, emulator=emulator)

    assert result.code == 0
    log_lines = [line for line in result.stderr.split("\n") if " INFO " in line]
    assert len(log_lines) >= 3
    for line in log_lines:
        assert re.match(r"(.*\r\x1b\[K)?\d{4}-\d{2}-\d{2} ", line, flags=re.DOTALL), line


def test_sweep_no_progress_draws_nothing() -> None:
    """--no-progress leaves stderr free of the progress line on a terminal."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)
    terminal = FakeTerminal()

    result = run_cli(
        "sweep", "-q", "--no-progress", "--kratos-url", BASE_URL, stderr=terminal, emulator=emulator
    )

    assert result.code == 0
    assert result.stderr == ""


def test_progress_describe_names_phase_and_counts() -> None:
    """describe() names the phase the sweep was in and its counts, for the line on SIGTERM."""
    progress = SweepProgress(
        policy=Policy(), now=NOW, status_line=None, clock=FakeClock(), sample_every=1
    )
    page = [_identity(number, days_inactive=200 if number < 4 else 1) for number in range(10)]

    progress.add_page(page)
    listing = progress.describe()
    progress.end_listing()
    progress.reach(page[0].id)

    assert listing == "while listing identities (listed: 10)"
    assert progress.describe() == (
        "while acting (listed: 10, due identities reached: 1 of about 4)"
    )
