"""SQLite engines: writes take the write lock up front, reads take none (WAL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from paycore.platform.db import create_engine


async def test_a_reader_is_not_blocked_by_an_open_write_in_another_process(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lock.db'}"
    writer, reader = create_engine(url), create_engine(url)  # two processes' engines
    async with writer.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    try:
        async with writer.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))  # holds the write lock

            async def read() -> list[int]:
                async with reader.connect() as rconn:
                    return [r[0] for r in await rconn.execute(text("SELECT n FROM t"))]

            # A reader that wanted the write lock would wait out the 30 s busy timeout here.
            assert await asyncio.wait_for(read(), timeout=10) == [1]
        async with reader.connect() as rconn:
            assert [r[0] for r in await rconn.execute(text("SELECT n FROM t ORDER BY n"))] == [1, 2]
    finally:
        await writer.dispose()
        await reader.dispose()


async def test_write_transactions_begin_immediate(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'begin.db'}"
    first, second = create_engine(url), create_engine(url)
    async with first.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    order: list[str] = []
    try:
        async with first.begin():  # holds the write lock before any statement
            task = asyncio.create_task(_write(second, order))
            await asyncio.sleep(0.3)
            order.append("first commits")
        await asyncio.wait_for(task, timeout=10)
    finally:
        await first.dispose()
        await second.dispose()
    assert order == ["first commits", "second wrote"]


async def _write(engine: object, order: list[str]) -> None:
    async with engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    order.append("second wrote")
