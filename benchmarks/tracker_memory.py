"""Buffer memory per pending identity, measured with tracemalloc.

Run: .venv/bin/python benchmarks/tracker_memory.py [--identities N]

Counts what ActivityTracker allocates to hold N identities in its buffer:
first without the identity id strings (the application allocates those for
the request anyway), then with them, and then with one credential kind each.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from stale_tokens import ActivityTracker, CredentialKind


class NullWriter:
    async def set_metadata_admin(
        self, identity_id: str, values: Mapping[str | tuple[str, ...], Any]
    ) -> object:
        return None


def measure(identities: int, fill: Callable[[ActivityTracker, list[str]], None]) -> float:
    """Return bytes allocated per identity while *fill* buffers *identities* ids."""
    ids = [str(uuid.UUID(int=number)) for number in range(identities)]
    tracker = ActivityTracker(NullWriter(), max_pending=identities)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fill(tracker, ids)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert tracker.health().pending == identities
    return (after - before) / identities


START = 1_700_000_000.0


def fill_plain(tracker: ActivityTracker, ids: list[str]) -> None:
    for number, identity_id in enumerate(ids):
        tracker._add(identity_id, START + number, None)


def fill_fresh_ids(tracker: ActivityTracker, ids: list[str]) -> None:
    for number, identity_id in enumerate(ids):
        # A fresh copy, as decoding a request header or a JWT claim makes.
        fresh = identity_id.encode().decode()
        tracker._add(fresh, START + number, None)


def fill_with_kind(tracker: ActivityTracker, ids: list[str]) -> None:
    for number, identity_id in enumerate(ids):
        tracker._add(identity_id, START + number, CredentialKind.BROWSER_SESSION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=100_000)
    options = parser.parse_args()

    count = options.identities
    print(f"{count:,} pending identities (tracemalloc, bytes per identity):")
    print(f"  buffer only, ids owned by the app:   {measure(count, fill_plain):6.1f}")
    print(f"  buffer plus a fresh 36-char id:      {measure(count, fill_fresh_ids):6.1f}")
    print(f"  buffer with one credential kind:     {measure(count, fill_with_kind):6.1f}")


if __name__ == "__main__":
    main()
