"""PostgreSQL batch writes: several tables in one statement, ids taken ahead in blocks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.commerce.orders import store as order_store
from paycore.platform.clock import utcnow
from paycore.platform.persistence import outbox
from paycore.platform.persistence.pg_batch import DirectConnection, IdBlocks, MultiInsert

insert = MultiInsert(
    (order_store.customers, ("email", "username", "created_at")),
    (outbox.outbox, outbox.ROW_COLUMNS),
)


@pytest.fixture
async def conn(engine: AsyncEngine) -> AsyncIterator[DirectConnection]:
    direct = DirectConnection(engine.url)
    yield direct
    await direct.close()


async def _count(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        return (
            (
                await conn.execute(select(func.count()).select_from(order_store.customers))
            ).scalar_one(),
            (await conn.execute(select(func.count()).select_from(outbox.outbox))).scalar_one(),
        )


def _events(*bodies: bytes) -> list[dict[str, object]]:
    """Outbox rows of events of topic "t"."""
    now = utcnow()
    return [outbox.row(outbox.event("t", body, at=now, key="k"), now) for body in bodies]


def _customer(n: int, at: datetime | None = None) -> dict[str, object]:
    return {"email": f"c{n}@example.com", "username": f"c{n}", "created_at": at or utcnow()}


async def test_rows_for_several_tables_go_in_together(
    engine: AsyncEngine, conn: DirectConnection
) -> None:
    assert insert.sql.count("INSERT INTO") == 2
    assert insert.sql.startswith("WITH ")
    await insert(conn, [_customer(1), _customer(2)], _events(b"x"))
    await insert(conn, [], _events(b"y"))  # a table may get no rows
    assert await _count(engine) == (2, 2)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(outbox.outbox).order_by(outbox.outbox.c.seq))).all()
    assert [(r.body, r.key) for r in stored] == [(b"x", "k"), (b"y", "k")]


async def test_one_refused_row_keeps_every_table_unchanged(
    engine: AsyncEngine, conn: DirectConnection
) -> None:
    await insert(conn, [_customer(1)], [])
    with pytest.raises(IntegrityError):  # the second customer repeats the first's e-mail
        await insert(conn, [_customer(2), _customer(1)], _events(b"x"))
    assert await _count(engine) == (1, 0)
    await insert(conn, [_customer(3)], [])  # the connection is still usable
    assert await _count(engine) == (2, 0)


async def test_a_broken_connection_is_replaced(engine: AsyncEngine, conn: DirectConnection) -> None:
    await insert(conn, [_customer(1)], [])
    async with engine.connect() as other:  # the server ends the writer's session
        await other.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    # The writer learns its session is gone either before the next statement or from it.
    with contextlib.suppress(
        OSError, asyncpg.PostgresError, asyncpg.exceptions.InternalClientError
    ):
        await insert(conn, [_customer(2)], [])
    await insert(conn, [_customer(3)], [])
    async with engine.connect() as check:
        names = (await check.execute(select(order_store.customers.c.username))).scalars().all()
    assert {"c1", "c3"} <= set(names)


async def test_a_value_the_column_refuses_is_a_data_error(
    engine: AsyncEngine, conn: DirectConnection
) -> None:
    too_long = {**_customer(1), "username": "x" * 101}  # VARCHAR(100)
    with pytest.raises(DataError):
        await insert(conn, [_customer(2), too_long], [])
    assert await _count(engine) == (0, 0)


async def test_values_go_through_the_column_types(
    engine: AsyncEngine, conn: DirectConnection
) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        await insert(conn, [_customer(1, at=datetime(2026, 1, 1))], [])
    assert await _count(engine) == (0, 0)


async def test_rows_are_needed_for_every_table(conn: DirectConnection) -> None:
    with pytest.raises(ValueError, match="at least one table"):
        MultiInsert()
    with pytest.raises(ValueError, match="rows for 2 tables"):
        await insert(conn, [_customer(1)])


async def test_id_blocks_never_hand_out_an_id_twice(conn: DirectConnection) -> None:
    a = IdBlocks(order_store.orders.c.id, block=5)
    b = IdBlocks(order_store.orders.c.id, block=5)
    taken = [
        *await a.take(conn, 3),
        *await b.take(conn, 4),
        *await a.take(conn, 4),
        *await b.take(conn, 12),
    ]
    assert len(taken) == len(set(taken)) == 23
    assert all(isinstance(i, int) and i > 0 for i in taken)
