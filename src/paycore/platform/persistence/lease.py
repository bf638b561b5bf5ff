"""A lease: one holder at a time across processes, for as long as the holder lives.

On PostgreSQL the lease is a session advisory lock taken on a connection of its own: the
server releases it when that connection ends, so a holder that is SIGKILLed (or whose host
goes away) loses it within moments and the next waiting process takes it. The holder checks
its connection every ``every`` seconds; if the connection is gone the lease may be someone
else's, so the work it guards is cancelled (``LeaseLost``). On SQLite one process owns the
database, and the lease is held at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)
T = TypeVar("T")


class LeaseLost(RuntimeError):
    """The connection that held the lease failed: another process may hold it now."""


def lease_key(name: str) -> int:
    """The advisory lock key of a lease name: a signed 64-bit hash of it."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


@dataclass
class Lease:
    name: str
    conn: AsyncConnection | None  # None: nothing to lose (SQLite)
    every: float

    async def guard(self, work: Awaitable[T]) -> T:
        """Run ``work`` while the lease is held; cancel it and raise ``LeaseLost`` if the
        lease's connection fails."""
        if self.conn is None:
            return await work
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.every)
                if done:
                    return task.result()
                try:
                    await self.conn.execute(text("SELECT 1"))
                except Exception as exc:
                    raise LeaseLost(f"lease {self.name!r} lost: {exc}") from exc
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


@contextlib.asynccontextmanager
async def held(engine: AsyncEngine, name: str, *, every: float = 1.0) -> AsyncIterator[Lease]:
    """Wait until the lease ``name`` is free, hold it inside the block, then release it."""
    if engine.dialect.name != "postgresql":
        yield Lease(name, None, every)
        return
    key = lease_key(name)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        taken = text("SELECT pg_try_advisory_lock(:key)")
        for tries in itertools.count():
            if await conn.scalar(taken, {"key": key}):
                break
            if tries == 0:
                log.info("waiting for the lease: another process holds it", extra={"lease": name})
            await asyncio.sleep(every)
        log.info("lease taken", extra={"lease": name})
        try:
            yield Lease(name, conn, every)
        finally:
            with contextlib.suppress(Exception):
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
