"""Throughput of `Policy.decide` on a mixed population of identities.

Run: ``.venv/bin/python benchmarks/policy_decide.py`` (200,000 decisions) or
``.venv/bin/python benchmarks/policy_decide.py --identities 1000000 --ladder``.

The population cycles through the shapes a sweep meets: recent and stale
users, admins, service accounts, opted-out identities, per-kind records,
episode markers, and bad data (unparseable or future timestamps, a
``metadata_admin`` that is not an object). Identities are built once, before
the clock starts, so only `decide` is timed. Wall and CPU seconds are both
printed, because on a shared machine the wall time also counts other jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from stale_tokens import Identity, Ladder, Policy, format_timestamp

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def identity(number: int) -> Identity:
    """Build identity *number* of the population, one of twelve shapes."""
    last = NOW - timedelta(days=number % 800, seconds=number % 86_400)
    shape = number % 12
    metadata: Any = {"last_activity_at": format_timestamp(last)}
    role = "admin" if shape == 1 else "user"
    if shape == 2:
        role = "service"
    elif shape == 3:
        metadata["skip_stale_revocation"] = True
    elif shape == 4:
        metadata["last_activity_by_kind"] = {
            "browser_session": format_timestamp(last - timedelta(days=100)),
            "personal_access_token": format_timestamp(last),
        }
    elif shape == 5:
        metadata["stale_tokens"] = {
            "episode": format_timestamp(last),
            "steps": {"warn": format_timestamp(NOW - timedelta(days=1))},
        }
    elif shape == 6:
        metadata["last_activity_at"] = "yesterday"
    elif shape == 7:
        metadata["last_activity_at"] = format_timestamp(NOW + timedelta(days=3))
    elif shape == 8:
        metadata = "not an object"
    elif shape == 9:
        metadata = None
    return Identity.from_json(
        {
            "id": f"{number:08x}-0000-4000-8000-{number:012x}",
            "state": "inactive" if shape == 10 else "active",
            "schema_id": "default",
            "traits": {"email": f"user{number}@example.org", "role": role},
            "metadata_admin": metadata,
            "created_at": "2024-01-01T00:00:00Z",
        }
    )


def main() -> None:
    """Time decide() over the population and print one JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=200_000, help="population size")
    parser.add_argument("--ladder", action="store_true", help="enable the ladder with deletion")
    options = parser.parse_args()

    policy = Policy(ladder=Ladder(delete_enabled=True)) if options.ladder else Policy()
    population = [identity(number) for number in range(options.identities)]

    started, started_cpu = time.perf_counter(), time.process_time()
    steps = Counter(str(policy.decide(item, NOW).step) for item in population)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu

    print(
        json.dumps(
            {
                "identities": options.identities,
                "ladder": options.ladder,
                "seconds": round(elapsed, 3),
                "cpu_seconds": round(cpu, 3),
                "decisions_per_second": round(options.identities / elapsed),
                "decisions_per_cpu_second": round(options.identities / cpu),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "steps": dict(sorted(steps.items())),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "processor": platform.processor() or "unknown",
            }
        )
    )


if __name__ == "__main__":
    main()
