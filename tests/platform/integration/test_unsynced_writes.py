"""Writers of their own whose commits need not wait for the disk (``ByKey(synced=False)``: the
payments' processed marks, the relay's deletes), on both engines: they set what the database
offers for it, on their connection only, and write what they are asked to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.payments import store
from paycore.platform.persistence.batch import ByKey


async def durability(writer: ByKey) -> Any:
    """The commit setting the writer's own connection has."""
    if writer._direct is not None:
        return (await writer._direct.fetch("SHOW synchronous_commit"))[0][0]
    connection = await writer._sqlite_connection()
    cursor = await connection.execute("PRAGMA synchronous")
    return (await cursor.fetchone())[0]


async def test_only_the_unsynced_writer_leaves_its_commits_to_the_disk_later(
    each_engine: AsyncEngine,
) -> None:
    engine = each_engine
    synced = ByKey(engine, store.payments.c.correlation_id, {"processed": True})
    marks = store.processed_marks(engine)
    try:
        postgres = engine.dialect.name == "postgresql"
        assert await durability(synced) == ("on" if postgres else 2)  # FULL
        assert await durability(marks) == ("off" if postgres else 1)  # NORMAL
    finally:
        await synced.close()
        await marks.close()


async def test_unsynced_marks_are_written(each_engine: AsyncEngine) -> None:
    engine = each_engine
    async with engine.begin() as conn:
        await conn.execute(
            store.payments.insert(),
            [
                {"correlation_id": f"p{n}", "amount_cents": 100, "received_at_ms": 1}
                for n in range(3)
            ],
        )
    marks = store.processed_marks(engine)
    try:
        await marks(["p0", "p2"])
    finally:
        await marks.close()
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(store.payments.c.correlation_id, store.payments.c.processed)
        )
        assert sorted(rows.all()) == [("p0", True), ("p1", False), ("p2", True)]
