"""Kratos writes per identity per hour: ActivityTracker against a write-per-request middleware.

Run: .venv/bin/python benchmarks/tracker_writes.py [--identities N] [--rate R] [--hours H]

A simulated clock drives the tracker: R requests per second, each from a
random one of N identities, with a flush every flush_interval seconds, as the
tracker's loop would run it. Nothing sleeps, so an hour runs in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
from collections import Counter
from collections.abc import Mapping
from typing import Any

from stale_tokens import ActivityTracker
from stale_tokens._tracker import DEFAULT_FLUSH_INTERVAL


class CountingWriter:
    def __init__(self) -> None:
        self.writes: Counter[str] = Counter()

    async def set_metadata_admin(
        self, identity_id: str, values: Mapping[str | tuple[str, ...], Any]
    ) -> object:
        self.writes[identity_id] += 1
        return None


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def simulate(identities: int, rate: int, hours: float, seed: int) -> CountingWriter:
    clock, writer = SimulatedClock(), CountingWriter()
    tracker = ActivityTracker(writer, clock=clock)
    names = [f"identity-{number}" for number in range(identities)]
    chooser = random.Random(seed)
    flush_interval = DEFAULT_FLUSH_INTERVAL

    seconds = int(hours * 3600)
    next_flush = clock.now + flush_interval
    for _second in range(seconds):
        for _request in range(rate):
            clock.now += 1 / rate
            tracker._add(chooser.choice(names), clock.now, None)
        if clock.now >= next_flush:
            await tracker.flush()
            next_flush += flush_interval
    await tracker.flush()
    return writer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=100, help="requests per second, all identities")
    parser.add_argument("--hours", type=float, default=3.0, help="simulated hours")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()

    writer = asyncio.run(simulate(options.identities, options.rate, options.hours, options.seed))
    per_hour = [writer.writes[f"identity-{n}"] / options.hours for n in range(options.identities)]
    naive = options.rate * 3600 / options.identities
    total = sum(writer.writes.values())

    print(
        f"{options.identities:,} identities, {options.rate} requests/s, "
        f"{options.hours:g} simulated hours, default ActivityTracker options"
    )
    print(
        f"  ActivityTracker:      {statistics.mean(per_hour):.2f} writes per identity per hour "
        f"(max {max(per_hour):.2f}), {total / options.hours / 60:.1f} writes per minute in all"
    )
    print(
        f"  write per request:    {naive:.2f} writes per identity per hour, "
        f"{options.rate * 60:,} writes per minute in all"
    )
    print(f"  reduction:            {naive / statistics.mean(per_hour):,.0f}x")


if __name__ == "__main__":
    main()
