"""Shared pieces of the emulator's endpoint tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import httpx

from stale_tokens.testing import OryEmulator


class MutableClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def open_client(emulator: OryEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """Open an httpx client that reaches *emulator* in-process at ``http://ory``."""
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ory") as client:
        yield client
