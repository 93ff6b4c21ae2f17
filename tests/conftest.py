"""Suite-wide guards: no test reaches a host other than loopback."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    # Unix domain sockets (a path or bytes) never leave the machine.
    return isinstance(address, str | bytes)


@pytest.fixture(autouse=True)
def _block_non_loopback_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a socket to a host other than loopback."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            raise RuntimeError(f"test tried to connect to {address!r}; only loopback is allowed")
        original_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            raise RuntimeError(f"test tried to connect to {address!r}; only loopback is allowed")
        return original_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
