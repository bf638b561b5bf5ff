"""Bulk writes inside the caller's transaction, on SQLite and PostgreSQL: what they store is
what SQLAlchemy stores, only new keys go in, and they refuse to run outside a transaction."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.clock import utcnow
from paycore.platform.messaging.consumer import inbox
from paycore.platform.persistence import bulk
from paycore.platform.persistence.db import create_engine, metadata
from paycore.platform.persistence.outbox import outbox
from paycore.platform.persistence.uow import Database

COLUMNS = ("consumer", "message_id", "processed_at")
KEYS = ("consumer", "message_id")


async def _inbox(engine: AsyncEngine) -> list[tuple[str, str, datetime]]:
    async with engine.connect() as conn:
        query = select(inbox.c.consumer, inbox.c.message_id, inbox.c.processed_at)
        return [tuple(r) for r in await conn.execute(query.order_by(inbox.c.message_id))]


async def test_rows_read_back_as_through_sqlalchemy(each_engine: AsyncEngine) -> None:
    at = utcnow()
    async with each_engine.begin() as conn:
        await bulk.bulk_insert(conn, inbox, COLUMNS, [("c", "m-1", at)])
        await conn.execute(
            insert(inbox), [{"consumer": "c", "message_id": "m-2", "processed_at": at}]
        )
    (_, _, first), (_, _, second) = await _inbox(each_engine)
    assert first == second == at  # same stored form: equal, and compared the same in queries
    async with each_engine.connect() as conn:
        query = select(inbox.c.message_id).where(inbox.c.processed_at >= at)
        assert sorted(await conn.scalars(query)) == ["m-1", "m-2"]


async def test_insert_new_returns_only_the_keys_it_inserted(each_engine: AsyncEngine) -> None:
    at = utcnow()
    async with each_engine.begin() as conn:
        assert await bulk.insert_new(
            conn, inbox, KEYS, COLUMNS, [("c", "a", at), ("c", "b", at)], returning=("message_id",)
        ) == [("a",), ("b",)]
    async with each_engine.begin() as conn:
        rows = [("c", "b", at), ("c", "c", at), ("other", "a", at)]
        new = await bulk.insert_new(conn, inbox, KEYS, COLUMNS, rows, returning=("message_id",))
    assert sorted(new) == [("a",), ("c",)]  # ("c", "b") was there; ("other", "a") is another key
    assert len(await _inbox(each_engine)) == 4


async def test_insert_new_returns_several_columns_as_tuples(each_engine: AsyncEngine) -> None:
    at = utcnow()
    rows = [("c", "a", at), ("c", "a", at), ("d", "a", at)]  # a key twice in one batch
    returning = ("consumer", "message_id")
    async with each_engine.begin() as conn:
        new = await bulk.insert_new(conn, inbox, KEYS, COLUMNS, rows, returning=returning)
        again = await bulk.insert_new(conn, inbox, KEYS, COLUMNS, rows, returning=returning)
    assert sorted(new) == [("c", "a"), ("d", "a")]
    assert all(type(row) is tuple for row in new)
    assert again == []


async def test_more_rows_than_one_statement_takes(each_engine: AsyncEngine) -> None:
    at = utcnow()
    count = bulk.ROWS_PER_STATEMENT * 2 + 7
    rows = [("c", f"m-{n:05d}", at) for n in range(count)]
    async with each_engine.begin() as conn:
        new = await bulk.insert_new(conn, inbox, KEYS, COLUMNS, rows, returning=("message_id",))
        again = await bulk.insert_new(conn, inbox, KEYS, COLUMNS, rows, returning=("message_id",))
    assert sorted(new) == [(m,) for _, m, _ in rows]
    assert again == []


async def test_a_failed_transaction_leaves_nothing(each_engine: AsyncEngine) -> None:
    async def write_then_fail() -> None:
        async with each_engine.begin() as conn:
            await bulk.bulk_insert(conn, inbox, COLUMNS, [("c", "m-1", utcnow())])
            await bulk.insert_new(
                conn, inbox, KEYS, COLUMNS, [("c", "m-2", utcnow())], returning=("message_id",)
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await write_then_fail()
    assert await _inbox(each_engine) == []


async def test_a_duplicate_key_in_a_plain_insert_fails_the_statement(
    each_engine: AsyncEngine,
) -> None:
    at = utcnow()

    async def insert_twice() -> None:
        async with each_engine.begin() as conn:
            await bulk.bulk_insert(conn, inbox, COLUMNS, [("c", "m-1", at), ("c", "m-1", at)])

    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await insert_twice()
    assert await _inbox(each_engine) == []


async def test_sqlite_refuses_a_naive_timestamp(tmp_path: Path) -> None:
    """(PostgreSQL's COPY takes the driver's values as they are: asyncpg refuses it there.)"""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'naive.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            with pytest.raises(ValueError, match="naive datetime"):
                await bulk.bulk_insert(conn, inbox, COLUMNS, [("c", "m-1", datetime(2026, 1, 1))])
    finally:
        await engine.dispose()


async def test_writes_join_the_connections_transaction(each_engine: AsyncEngine) -> None:
    async with each_engine.connect() as conn:  # begins at the first statement, never commits
        await bulk.bulk_insert(conn, inbox, COLUMNS, [("c", "m-1", utcnow())])
        assert len((await conn.execute(select(inbox))).all()) == 1
    assert await _inbox(each_engine) == []
    async with each_engine.connect() as conn:
        await bulk.bulk_insert(conn, inbox, COLUMNS, [("c", "m-1", utcnow())])
        await conn.commit()
    assert len(await _inbox(each_engine)) == 1


async def test_bytes_are_kept_as_bytes(each_engine: AsyncEngine) -> None:
    body = b"\xff\x00 not text"
    async with Database(each_engine).transaction() as tx:  # its event rows go in by bulk
        message_id = tx.publish("t", body)
    async with each_engine.connect() as conn:
        row = (await conn.execute(select(outbox))).one()
    assert (row.id, row.topic, row.body) == (message_id, "t", body)


counters = Table(
    "test_bulk_counters",
    MetaData(),
    Column("name", String(20), primary_key=True),
    Column("hits", BigInteger, nullable=False),
    Column("note", String(20), nullable=False),
)


async def test_update_rows_sets_each_rows_columns_by_its_key(each_engine: AsyncEngine) -> None:
    async with each_engine.begin() as conn:
        await conn.run_sync(counters.create, checkfirst=True)
        rows = [("a", 1, "x"), ("b", 2, "y"), ("c", 3, "z")]
        await bulk.bulk_insert(conn, counters, ("name", "hits", "note"), rows)
    async with each_engine.begin() as conn:
        changes = [("a", 10, "p"), ("c", 2**40, "q"), ("nobody", 5, "r")]
        await bulk.update_rows(conn, counters, "name", ("hits", "note"), changes)
    async with each_engine.connect() as conn, conn.begin() as tx:
        await bulk.update_rows(conn, counters, "name", ("hits", "note"), [("b", 99, "w")])
        await tx.rollback()
    async with each_engine.connect() as conn:
        found = [tuple(r) for r in await conn.execute(select(counters).order_by(counters.c.name))]
    assert found == [("a", 10, "p"), ("b", 2, "y"), ("c", 2**40, "q")]
