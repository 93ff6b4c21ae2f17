"""Throughput, peak memory and latency-bound wall time of `sweep()`.

Run: ``.venv/bin/python benchmarks/sweep.py`` (100,000 identities) or
``.venv/bin/python benchmarks/sweep.py --identities 1000000 --passes 1,3``.

A generated Kratos and Hydra sit behind an in-process httpx transport. Each
listing page is built only when it is requested, from the identity's number,
so the process keeps no population in memory and the traced memory is what the sweep
keeps: the pages in flight, the due entries and the report. Identities that
the sweep writes to are kept in a small overlay.

Three passes run on the same population:

1. throughput, without tracing: identities per second;
2. memory, under tracemalloc: the peak traced bytes, and an estimate of the
   part that is the generated server's record of the identities written to;
3. latency: every request waits ``--latency`` seconds before it is answered,
   and the wall time is compared with the network limit, the time the
   requests would take if only the waiting counted: pages x latency for the
   listing, plus the due identities' sequential requests x latency divided by
   the concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import sys
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from stale_tokens import HydraAdmin, KratosAdmin, Policy, SweepReport, format_timestamp, sweep

BASE_URL = "http://127.0.0.1:4434"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FIRST_PAGE_TOKEN = "00000000-0000-0000-0000-000000000000"  # noqa: S105 - a Kratos page token.
# One identity in STALE_EVERY is past the 90-day revocation and one more is in
# the 7-day warning window, so 1 % is due for revocation: under the breaker.
STALE_EVERY = 100
# get, list sessions, claim, re-read, delete sessions, 2 Hydra calls, marker.
REQUESTS_PER_REVOCATION = 8
# get, claim, re-read, marker (the notification itself is local).
REQUESTS_PER_WARNING = 4
WARM_UP_IDENTITIES = 1000


def identity_id(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def identity_number(value: str) -> int:
    return int(value.rsplit("-", 1)[1], 16)


def days_inactive(number: int) -> int:
    position = number % STALE_EVERY
    if position == 0:
        return 120
    if position == 1:
        return 85
    return position % 60


LAST_ACTIVITY = {
    days: format_timestamp(NOW - timedelta(days=days, hours=1)) for days in (*range(60), 85, 120)
}


class GeneratedOry(httpx.AsyncBaseTransport):
    """Kratos admin and Hydra admin responses computed from the identity number.

    Args:
        total: Identities in the listing.
        latency: Seconds every request waits before its response.
    """

    def __init__(self, total: int, *, latency: float = 0.0) -> None:
        self.total = total
        self.latency = latency
        self.requests: Counter[str] = Counter()
        self.written: dict[int, dict[str, Any]] = {}
        """Identity number -> the fields the sweep wrote to it."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        path = request.url.path
        if path == "/admin/identities":
            self.requests["list_identities"] += 1
            return self._list(request)
        if path.startswith("/admin/oauth2/"):
            self.requests["hydra"] += 1
            return httpx.Response(204)

        parts = path.split("/")
        number = identity_number(parts[3])
        if len(parts) == 5 and parts[4] == "sessions":
            self.requests[f"{request.method.lower()}_sessions"] += 1
            if request.method == "DELETE":
                return httpx.Response(404, json={"error": {"code": 404, "message": "Not Found"}})
            return httpx.Response(200, json=[])
        if request.method == "PATCH":
            self.requests["patch_identity"] += 1
            self._patch(number, json.loads(request.content))
        else:
            self.requests["get_identity"] += 1
        return httpx.Response(200, json=self._identity(number))

    def _list(self, request: httpx.Request) -> httpx.Response:
        size = int(request.url.params.get("page_size", "250"))
        token = request.url.params.get("page_token", FIRST_PAGE_TOKEN)
        start = 0 if token == FIRST_PAGE_TOKEN else identity_number(token) + 1
        end = min(start + size, self.total)

        links = [f'</admin/identities?page_size={size}&page_token={FIRST_PAGE_TOKEN}>; rel="first"']
        if end < self.total:
            next_token = identity_id(end - 1)
            links.append(
                f'</admin/identities?page_size={size}&page_token={next_token}>; rel="next"'
            )
        body = [self._identity(number) for number in range(start, end)]
        return httpx.Response(200, json=body, headers={"Link": ",".join(links)})

    def _identity(self, number: int) -> dict[str, Any]:
        written = self.written.get(number, {})
        metadata_admin = {"last_activity_at": LAST_ACTIVITY[days_inactive(number)]}
        metadata_admin.update(written.get("metadata_admin", {}))
        return {
            "id": identity_id(number),
            "schema_id": "default",
            "schema_url": "http://127.0.0.1:4433/schemas/ZGVmYXVsdA",
            "state": "active",
            "traits": {"email": f"user{number}@example.org", "role": "user"},
            "metadata_public": written.get("metadata_public"),
            "metadata_admin": metadata_admin,
            "organization_id": None,
            "created_at": "2024-01-02T03:04:05.123456Z",
            "updated_at": "2024-01-02T03:04:05.123456Z",
        }

    def _patch(self, number: int, operations: list[dict[str, Any]]) -> None:
        """Apply the ``add`` operations the sweeper sends under ``metadata_admin``."""
        written = self.written.setdefault(number, {})
        for operation in operations:
            _, field, *keys = operation["path"].split("/")
            if not keys:
                written[field] = operation["value"]
                continue
            target = written.setdefault(field, {})
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = operation["value"]


async def run_sweep(
    total: int, *, page_size: int, concurrency: int, latency: float
) -> tuple[SweepReport, GeneratedOry, float]:
    transport = GeneratedOry(total, latency=latency)
    async with (
        KratosAdmin(BASE_URL, transport=transport, page_size=page_size) as kratos,
        HydraAdmin(BASE_URL, transport=transport) as hydra,
    ):
        started = time.perf_counter()
        report = await sweep(
            kratos=kratos,
            hydra=hydra,
            policy=Policy(),
            now=NOW,
            concurrency=concurrency,
            audit=NullAuditSink(),
        )
        return report, transport, time.perf_counter() - started


class NullAuditSink:
    """Drops events, so the benchmark measures the sweep and not log formatting."""

    async def emit(self, event: object) -> None:
        return None


def network_limit(report: SweepReport, *, pages: int, latency: float, concurrency: int) -> float:
    """Seconds the requests take when only the injected latency counts."""
    revocations = report.done.get("revoke", 0)
    warnings = report.done.get("warn", 0)
    act_requests = revocations * REQUESTS_PER_REVOCATION + warnings * REQUESTS_PER_WARNING
    return pages * latency + act_requests * latency / concurrency


def measure_throughput(total: int, *, page_size: int, concurrency: int) -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_before = time.process_time()
    report, transport, seconds = asyncio.run(
        run_sweep(total, page_size=page_size, concurrency=concurrency, latency=0)
    )
    cpu_seconds = time.process_time() - cpu_before
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"pass 1: {total / seconds:,.0f} identities/s ({seconds:.1f} s wall), "
        f"{total / cpu_seconds:,.0f} identities per CPU second ({cpu_seconds:.1f} s CPU), "
        f"done {dict(report.done)}, requests {dict(transport.requests)}"
    )
    print(f"pass 1: max RSS {rss_after / 1024:,.0f} MiB ({(rss_after - rss_before) / 1024:+,.0f})")


def measure_memory(total: int, *, page_size: int, concurrency: int) -> None:
    # A small untraced sweep first, so that imports and module-level caches
    # filled on first use are not counted.
    asyncio.run(
        run_sweep(WARM_UP_IDENTITIES, page_size=page_size, concurrency=concurrency, latency=0)
    )
    tracemalloc.start()
    report, transport, _ = asyncio.run(
        run_sweep(total, page_size=page_size, concurrency=concurrency, latency=0)
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    overlay = deep_size(transport.written)
    due = sum(report.due.values())
    print(
        f"pass 2: peak traced {peak / 2**20:,.1f} MiB with {due:,} due entries, of which the "
        f"generated server's record of writes is about {overlay / 2**20:,.1f} MiB"
    )


def measure_latency(total: int, *, page_size: int, concurrency: int, latency: float) -> None:
    report, _, seconds = asyncio.run(
        run_sweep(total, page_size=page_size, concurrency=concurrency, latency=latency)
    )
    pages = math.ceil(total / page_size)
    limit = network_limit(report, pages=pages, latency=latency, concurrency=concurrency)
    print(
        f"pass 3: {total:,} identities at {latency * 1000:.0f} ms per request: "
        f"wall {seconds:.1f} s, network limit {limit:.1f} s, ratio {seconds / limit:.2f}"
    )


def deep_size(value: object) -> int:
    """Estimate the bytes of a JSON-like value: containers, their items and strings."""
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(key) + deep_size(item) for key, item in value.items())
    elif isinstance(value, list):
        size += sum(deep_size(item) for item in value)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=100_000, help="identities listed")
    parser.add_argument("--page-size", type=int, default=250, help="identities per page")
    parser.add_argument("--concurrency", type=int, default=8, help="identities acted on at once")
    parser.add_argument(
        "--latency", type=float, default=0.1, help="seconds each request waits in pass 3"
    )
    parser.add_argument(
        "--latency-identities",
        type=int,
        default=20_000,
        help="identities in pass 3, which waits for every request (at most --identities)",
    )
    parser.add_argument(
        "--passes",
        default="1,2,3",
        help="comma-separated passes to run; pass 2 (tracemalloc) is the slowest",
    )
    options = parser.parse_args()
    total, page_size, concurrency = options.identities, options.page_size, options.concurrency
    passes = {part.strip() for part in options.passes.split(",")}

    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"{total:,} identities, page size {page_size}, concurrency {concurrency}")
    if "1" in passes:
        measure_throughput(total, page_size=page_size, concurrency=concurrency)
    if "2" in passes:
        measure_memory(total, page_size=page_size, concurrency=concurrency)
    if "3" in passes:
        measure_latency(
            min(options.latency_identities, total),
            page_size=page_size,
            concurrency=concurrency,
            latency=options.latency,
        )


if __name__ == "__main__":
    main()
