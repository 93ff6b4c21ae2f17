"""Peak memory of streaming every identity through KratosAdmin.

Run: ``.venv/bin/python benchmarks/stream_identities.py``

An ``httpx.MockTransport`` builds each Kratos-shaped page only when it is
requested (keyset tokens, relative Link headers, the 500 clamp of Kratos
v25.4+), so the traced memory is what the client keeps alive: about one page,
whatever the number of identities. Each run prints the peak that tracemalloc
saw while the listing was consumed.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
import tracemalloc
from collections.abc import AsyncIterator

import httpx

from stale_tokens import KratosAdmin

BASE_URL = "http://127.0.0.1:4434"
KRATOS_MAX_PAGE_SIZE = 500
RUNS = ((10_000, 250), (100_000, 250), (10_000, 500), (100_000, 500))


def identity_id(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def identity_json(number: int) -> dict[str, object]:
    """Return one identity shaped like ``GET /admin/identities`` lists it."""
    return {
        "id": identity_id(number),
        "schema_id": "default",
        "schema_url": "http://127.0.0.1:4433/schemas/ZGVmYXVsdA",
        "state": "active",
        "state_changed_at": "2025-11-07T10:11:12.123456789Z",
        "traits": {"email": f"user{number}@example.org", "role": "user"},
        "metadata_public": None,
        "metadata_admin": {
            "last_activity_at": "2026-02-01T08:09:10.123456Z",
            "last_activity_by_kind": {"browser_session": "2026-02-01T08:09:10.123456Z"},
        },
        "organization_id": None,
        "created_at": "2025-11-07T10:11:12.123456Z",
        "updated_at": "2026-02-01T08:09:10.654321Z",
    }


def kratos_listing(total: int) -> httpx.MockTransport:
    """Serve *total* identities in keyset pages, generating each page on request."""

    def handle(request: httpx.Request) -> httpx.Response:
        size = min(int(request.url.params.get("page_size", "250")), KRATOS_MAX_PAGE_SIZE)
        token = request.url.params.get("page_token")
        start = 0 if token is None else int(token.rsplit("-", 1)[1], 16) + 1
        end = min(start + size, total)
        body = json.dumps([identity_json(number) for number in range(start, end)])

        links = [f'</admin/identities?page_size={size}&page_token={identity_id(0)}>; rel="first"']
        if end < total:
            links.append(
                f"</admin/identities?page_size={size}&page_token={identity_id(end - 1)}>; "
                'rel="next"'
            )
        headers = {"Content-Type": "application/json", "Link": ",".join(links)}
        return httpx.Response(200, stream=OneShotStream(body.encode()), headers=headers)

    return httpx.MockTransport(handle)


class OneShotStream(httpx.AsyncByteStream):
    """A body handed over once, as a network transport streams it.

    ``httpx.Response(content=...)`` would keep the bytes on the response
    object, which the mock transport returns to the client, so the benchmark
    would measure the mock rather than the client.
    """

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body, self._body = self._body, b""
        yield body


async def measure(total: int, page_size: int) -> tuple[int, int, float]:
    """Stream *total* identities; return the count seen, the peak traced bytes and the seconds."""
    async with KratosAdmin(
        BASE_URL, transport=kratos_listing(total), page_size=page_size
    ) as kratos:
        tracemalloc.start()
        started = time.perf_counter()
        count = 0
        async for _identity in kratos.iter_identities():
            count += 1
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return count, peak, elapsed


async def main() -> None:
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs (nproc)"
    )
    print(f"{'identities':>10}  {'page size':>9}  {'peak traced memory':>18}  {'seconds':>7}")
    for total, page_size in RUNS:
        count, peak, elapsed = await measure(total, page_size)
        if count != total:
            raise RuntimeError(f"streamed {count} identities, expected {total}")
        print(f"{total:>10,}  {page_size:>9}  {peak / 2**20:>15.2f} MiB  {elapsed:>7.1f}")


if __name__ == "__main__":
    asyncio.run(main())
