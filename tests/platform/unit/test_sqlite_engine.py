"""SQLite engines: writes take the write lock up front, reads take none (WAL); statements run
on the event loop's thread, and a wait for the lock does not hold the loop."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from paycore.platform.persistence import sqlite_driver
from paycore.platform.persistence.db import create_engine


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


async def test_waiting_for_the_write_lock_leaves_the_event_loop_free(tmp_path: Path) -> None:
    path = tmp_path / "wait.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        writing = asyncio.create_task(_write(engine, []))
        await asyncio.sleep(0.3)
        assert not writing.done()  # still waiting for the lock...
        assert ticks >= 20  # ...while the loop went on serving (a sleeping busy handler: 0)
        other.execute("COMMIT")
        await asyncio.wait_for(writing, timeout=5)
    finally:
        ticker.cancel()
        other.close()
        await engine.dispose()


@contextlib.asynccontextmanager
async def two_connections(
    path: Path, *setup: str
) -> AsyncIterator[tuple[sqlite3.Connection, sqlite_driver.Connection]]:
    """Another process's plain connection (which first runs ``setup``) and one of ours."""
    other = sqlite3.connect(path, isolation_level=None)
    for sql in setup:
        other.execute(sql)
    mine = await sqlite_driver.connect(str(path))
    try:
        yield other, mine
    finally:
        other.close()
        await mine.close()


async def test_a_lock_held_too_long_fails_the_statement_clearly(tmp_path: Path) -> None:
    setup = ("CREATE TABLE t (n INTEGER)", "BEGIN IMMEDIATE")
    async with two_connections(tmp_path / "held.db", *setup) as (_, mine):
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            await sqlite_driver.patiently(
                lambda: mine._open().execute("BEGIN IMMEDIATE"), timeout=0.05
            )


async def test_work_that_fails_in_a_write_is_rolled_back(tmp_path: Path) -> None:
    mine = await sqlite_driver.connect(str(tmp_path / "undo.db"))
    try:
        await mine.write(lambda db: db.execute("CREATE TABLE t (n INTEGER)"))

        def fails(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await mine.write(fails)
        await mine.write(lambda db: db.execute("INSERT INTO t VALUES (2)"))
        rows = await (await mine.execute("SELECT n FROM t")).fetchall()
        assert rows == [(2,)]
    finally:
        await mine.close()


async def test_a_stale_snapshot_fails_at_once_instead_of_waiting(tmp_path: Path) -> None:
    """A read transaction that then writes after another connection committed can never get
    the lock (SQLITE_BUSY_SNAPSHOT): only a new transaction helps, so no retrying."""
    setup = ("PRAGMA journal_mode=WAL", "CREATE TABLE t (n INTEGER)")
    async with two_connections(tmp_path / "stale.db", *setup) as (other, mine):
        await mine.execute("BEGIN")
        await (await mine.execute("SELECT count(*) FROM t")).fetchall()  # snapshot taken
        other.execute("INSERT INTO t VALUES (1)")  # another connection commits meanwhile
        tries = 0

        def insert() -> object:
            nonlocal tries
            tries += 1
            return mine._open().execute("INSERT INTO t VALUES (2)")

        with pytest.raises(sqlite3.OperationalError) as refused:
            await sqlite_driver.patiently(insert)
        assert refused.value.sqlite_errorcode == sqlite3.SQLITE_BUSY_SNAPSHOT
        assert tries == 1  # not tried again for the 30 s a lock wait may take
        await mine.rollback()
