"""Time `SqlActivitySource.last_activity` per page of identities, against one query per identity.

Run: ``.venv/bin/python benchmarks/sql_activity.py`` (SQLite in a temporary
file) or ``.venv/bin/python benchmarks/sql_activity.py --url
postgresql://postgres@127.0.0.1:5432/test`` (a temporary table, dropped at the end).

The table is `SqlAuditSink`'s, with its index on ``(identity_id,
created_at)``. It contains ``--identities`` identities with ``--events``
events each, half of them login-like. Each measured page is ``--page-size`` random identity ids,
as a sweep's listing page would be.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from stale_tokens.integrations.sql import SqlActivitySource, SqlAuditSink, to_async_url

EVENT_TYPES = ("login", "password_changed", "whoami", "settings_viewed")
BATCH = 20_000


async def populate(sink: SqlAuditSink, identities: int, events: int, seed: int) -> list[str]:
    """Fill the table and return the identity ids."""
    rng = random.Random(seed)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(identities)]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    await sink.create_table()
    async with sink.engine.begin() as connection:
        rows = []
        for identity_id in ids:
            for _ in range(events):
                rows.append(
                    {
                        "event_type": rng.choice(EVENT_TYPES),
                        "identity_id": identity_id,
                        "created_at": start + timedelta(minutes=rng.randrange(525_600)),
                    }
                )
                if len(rows) == BATCH:
                    await connection.execute(insert(sink.table), rows)
                    rows = []
        if rows:
            await connection.execute(insert(sink.table), rows)
    # Production tables have planner statistics (PostgreSQL's autovacuum
    # gathers them); a freshly loaded one has none until ANALYZE.
    async with sink.engine.begin() as connection:
        await connection.execute(text(f"ANALYZE {sink.table.name}"))
    return ids


async def time_pages(
    source: SqlActivitySource, pages: list[list[str]], *, per_identity: bool
) -> list[float]:
    seconds = []
    for page in pages:
        started = time.perf_counter()
        if per_identity:
            for identity_id in page:
                await source.last_activity([identity_id])
        else:
            await source.last_activity(page)
        seconds.append(time.perf_counter() - started)
    return seconds


async def run(arguments: argparse.Namespace, engine: AsyncEngine) -> dict[str, object]:
    table = f"bench_activity_{uuid.uuid4().hex[:8]}"
    sink = SqlAuditSink(engine, table_name=table)
    try:
        started = time.perf_counter()
        ids = await populate(sink, arguments.identities, arguments.events, arguments.seed)
        populated = time.perf_counter() - started
        rng = random.Random(arguments.seed + 1)
        pages = [rng.sample(ids, arguments.page_size) for _ in range(arguments.pages)]
        source = SqlActivitySource(engine, table_name=table)
        batched = await time_pages(source, pages, per_identity=False)
        one_by_one = await time_pages(source, pages[:3], per_identity=True)
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(sink.table.drop, checkfirst=True)

    def milliseconds(values: list[float]) -> float:
        return round(statistics.median(values) * 1000, 1)

    return {
        "dialect": engine.dialect.name,
        "rows": arguments.identities * arguments.events,
        "populate_seconds": round(populated, 1),
        "page_size": arguments.page_size,
        "pages": arguments.pages,
        "median_page_ms": milliseconds(batched),
        "max_page_ms": round(max(batched) * 1000, 1),
        "median_page_ms_one_query_per_identity": milliseconds(one_by_one),
        "identities_per_second": round(arguments.page_size / statistics.median(batched)),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL; a temporary SQLite file by default")
    parser.add_argument("--identities", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=4, help="events per identity")
    parser.add_argument("--page-size", type=int, default=250)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        url = arguments.url or f"sqlite:///{Path(directory) / 'bench.sqlite'}"
        engine = create_async_engine(to_async_url(url))
        try:
            result = await run(arguments, engine)
        finally:
            await engine.dispose()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
