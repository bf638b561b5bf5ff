"""A PostgreSQL engine keeps every connection it opens: a burst of concurrent work past what
was open before reuses them afterwards instead of opening PostgreSQL backends anew (each one a
fork and a login), and past ``pool_size`` it waits for one rather than opening more."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.persistence.db import create_engine

BURST = 15  # the old default kept 10 and closed the 5 more it opened (its overflow)


async def backends(engine: AsyncEngine, bursts: int) -> tuple[set[int], int]:
    """The PostgreSQL backends (their pids) that ``bursts`` bursts of ``BURST`` concurrent
    holders saw, and the most connections checked out at once."""
    seen: set[int] = set()
    out = most = 0

    async def hold() -> None:
        nonlocal out, most
        async with engine.connect() as conn:
            out += 1
            most = max(most, out)
            seen.add(int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
            await asyncio.sleep(0.05)
            out -= 1

    try:
        for _ in range(bursts):
            await asyncio.gather(*(hold() for _ in range(BURST)))
    finally:
        await engine.dispose()
    return seen, most


async def test_connections_opened_for_a_burst_are_kept_for_the_next(postgres_url: str) -> None:
    seen, most = await backends(create_engine(postgres_url), bursts=3)

    assert most == BURST
    assert len(seen) == BURST  # three bursts, the same fifteen backends


async def test_past_its_size_the_pool_waits_instead_of_opening_more(postgres_url: str) -> None:
    seen, most = await backends(create_engine(postgres_url, pool_size=5), bursts=2)

    assert most == 5
    assert len(seen) == 5
