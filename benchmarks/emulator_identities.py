"""Seeding and listing 100,000 identities in the Kratos emulator.

Run: ``.venv/bin/python benchmarks/emulator_identities.py [--identities N]``

Loads N identities with ``load_identities`` (one sort, however many ids),
then lists all of them in keyset pages of 500 through ``emulator.transport()``,
and last reads one page deep inside the collection repeatedly. The deep page
should cost about what the first page costs, because a page is a bisect into
the sorted ids, not a scan.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
import uuid

import httpx

from stale_tokens.testing import OryEmulator

PAGE_SIZE = 500
DEEP_PAGE_READS = 50


def exported(count: int) -> list[dict[str, object]]:
    """Build *count* identities as a Kratos export has them, with random UUIDs."""
    return [
        {
            "id": str(uuid.uuid4()),
            "schema_id": "default",
            "state": "active",
            "traits": {"email": f"user{number}@example.org"},
            "metadata_admin": {"last_activity_at": "2026-02-01T08:09:10.123456Z"},
            "created_at": "2025-11-07T10:11:12.123456Z",
        }
        for number in range(count)
    ]


async def list_everything(client: httpx.AsyncClient) -> int:
    """Follow rel="next" links from the first page; return how many identities were listed."""
    url: str | None = f"/admin/identities?page_size={PAGE_SIZE}"
    count = 0
    while url is not None:
        response = await client.get(url)
        count += len(response.json())
        url = None
        for part in response.headers["link"].split(","):
            if part.endswith('rel="next"'):
                url = part.split(";")[0].strip()[1:-1]
    return count


async def main(identities: int) -> None:
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs (nproc)"
    )
    emulator = OryEmulator()
    entries = exported(identities)

    started = time.perf_counter()
    emulator.kratos.load_identities(entries)
    emulator.kratos.all_ids()
    print(f"load {identities:,} identities and sort ids: {time.perf_counter() - started:.2f} s")

    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ory") as client:
        started = time.perf_counter()
        listed = await list_everything(client)
        elapsed = time.perf_counter() - started
        if listed != identities:
            raise RuntimeError(f"listed {listed} identities, expected {identities}")
        pages = -(-identities // PAGE_SIZE)
        print(f"list all in {pages} pages of {PAGE_SIZE}: {elapsed:.2f} s")

        for label, token in (("first", None), ("deep", emulator.kratos.all_ids()[-PAGE_SIZE - 2])):
            params = {"page_size": str(PAGE_SIZE)} | ({"page_token": token} if token else {})
            started = time.perf_counter()
            for _ in range(DEEP_PAGE_READS):
                await client.get("/admin/identities", params=params)
            per_page = (time.perf_counter() - started) / DEEP_PAGE_READS
            print(f"{label} page of {PAGE_SIZE}: {per_page * 1000:.1f} ms per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=100_000, help="identities to load")
    asyncio.run(main(parser.parse_args().identities))
