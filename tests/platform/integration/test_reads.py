"""A hot path's ``Read`` on both engines: the row a query's parameters choose, as a tuple, or
None (``all``: every row, in the query's order); values bound by name, whatever order the
compiled statement wants them in."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.clock import utcnow
from paycore.platform.messaging.consumer import inbox
from paycore.platform.persistence.reads import Read


async def test_a_read_finds_its_row_or_none(each_engine: AsyncEngine) -> None:
    async with each_engine.begin() as conn:
        await conn.execute(
            insert(inbox),
            [
                {"consumer": "a", "message_id": "m1", "processed_at": utcnow()},
                {"consumer": "b", "message_id": "m1", "processed_at": utcnow()},
            ],
        )
    query = select(inbox.c.consumer, inbox.c.message_id).where(
        inbox.c.message_id == bindparam("message"), inbox.c.consumer == bindparam("consumer")
    )
    read = Read(each_engine, query)

    assert await read.one(consumer="b", message="m1") == ("b", "m1")
    assert await read.one(message="m1", consumer="a") == ("a", "m1")
    assert await read.one(consumer="c", message="m1") is None


async def test_a_read_of_all_gives_every_row(each_engine: AsyncEngine) -> None:
    async with each_engine.begin() as conn:
        await conn.execute(
            insert(inbox),
            [{"consumer": c, "message_id": "m1", "processed_at": utcnow()} for c in "abc"],
        )
    query = (
        select(inbox.c.consumer)
        .where(inbox.c.message_id == bindparam("message"))
        .order_by(inbox.c.consumer)
    )
    read = Read(each_engine, query)

    assert await read.all(message="m1") == [("a",), ("b",), ("c",)]
    assert await read.all(message="m2") == []
