"""How `stale-tokens sweep` ends on SIGTERM and Ctrl-C, and what it prints."""

from __future__ import annotations

import io
import os
import signal

import httpx

from cli_helpers import BASE_URL, add_inactive_identity
from stale_tokens.cli import main
from stale_tokens.testing import OryEmulator


class _StopOnListing(httpx.AsyncBaseTransport):
    """Pass requests to the emulator, and stop the process on the second identity listing."""

    def __init__(self, emulator: OryEmulator, stop: BaseException | int) -> None:
        self._inner = emulator.transport()
        self._stop = stop
        self.listings = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/admin/identities":
            self.listings += 1
            if self.listings == 2:
                if isinstance(self._stop, int):
                    os.kill(os.getpid(), self._stop)
                else:
                    raise self._stop
        return await self._inner.handle_async_request(request)


def _sweep(transport: httpx.AsyncBaseTransport) -> tuple[int, str]:
    stderr = io.StringIO()
    code = main(
        ["sweep", "--kratos-url", BASE_URL, "--page-size", "1", "-q"],
        stdout=io.StringIO(),
        stderr=stderr,
        environ={},
        transport=transport,
    )
    return code, stderr.getvalue()


def _emulator_with_identities(count: int) -> OryEmulator:
    emulator = OryEmulator()
    for _ in range(count):
        add_inactive_identity(emulator, days_inactive=200)
    return emulator


def test_sweep_sigterm_exits_143() -> None:
    """SIGTERM during the listing ends the sweep with 143 and one line saying how far it got."""
    emulator = _emulator_with_identities(3)
    transport = _StopOnListing(emulator, signal.SIGTERM)
    handler_before = signal.getsignal(signal.SIGTERM)

    code, stderr = _sweep(transport)

    assert code == 143
    assert stderr == "stale-tokens: terminated by SIGTERM while listing identities (listed: 1)\n"
    assert transport.listings == 2
    assert emulator.requests["delete_sessions"] == 0
    assert signal.getsignal(signal.SIGTERM) is handler_before


def test_sweep_interrupt_exits_130() -> None:
    """Ctrl-C during the listing ends the sweep with 130 and the same progress note."""
    emulator = _emulator_with_identities(3)
    transport = _StopOnListing(emulator, KeyboardInterrupt())

    code, stderr = _sweep(transport)

    assert code == 130
    assert stderr == "stale-tokens: interrupted while listing identities (listed: 1)\n"
    assert emulator.requests["delete_sessions"] == 0
