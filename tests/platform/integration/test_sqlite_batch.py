"""SQLite batch writes: several tables in one transaction on the writer's own connection (set
up as the engine's are), values processed as through SQLAlchemy, refusals leaving nothing
behind."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.commerce.orders import store as order_store
from paycore.platform.clock import utcnow
from paycore.platform.messaging import outbox
from paycore.platform.messaging.bus import Envelope
from paycore.platform.persistence.db import create_engine
from paycore.platform.persistence.sqlite_batch import (
    InOneTransaction,
    ManyInserts,
    next_ids,
    processed_rows,
)
from paycore.schema import upgrade


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'batch.db'}"
    await asyncio.to_thread(upgrade, url)
    eng = create_engine(url)
    yield eng
    await eng.dispose()


def _customer(n: int, at: datetime | None = None) -> dict[str, object]:
    return {"email": f"c{n}@example.com", "username": f"c{n}", "created_at": at or utcnow()}


class Customers:
    """A batch writer of customers with one event each, recording its hand-offs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.handed: list[list[Envelope]] = []
        self.insert = ManyInserts(
            engine,
            (order_store.customers, ("id", "email", "username", "created_at")),
            (outbox.outbox, outbox.ROW_COLUMNS),
        )
        self.writer = InOneTransaction(engine, self.write, self.handed.append)

    def write(
        self, db: sqlite3.Connection, rows: Sequence[dict[str, object]]
    ) -> tuple[list[int], list[Envelope]]:
        ids = next_ids(db, order_store.customers.c.id, len(rows))
        customers = [{**row, "id": i} for row, i in zip(rows, ids, strict=True)]
        events = outbox.rows("customers", [(str(i).encode(), str(i), "") for i in ids])
        self.insert(db, customers, events)
        return list(ids), [outbox.envelope(e) for e in events]


async def _count(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        return (
            (
                await conn.execute(select(func.count()).select_from(order_store.customers))
            ).scalar_one(),
            (await conn.execute(select(func.count()).select_from(outbox.outbox))).scalar_one(),
        )


async def test_a_batch_writes_every_table_then_hands_its_events_over(engine: AsyncEngine) -> None:
    customers = Customers(engine)
    assert await customers.writer([_customer(1), _customer(2)]) == [1, 2]
    assert await customers.writer([_customer(3)]) == [3]  # ids follow what the table holds
    assert await _count(engine) == (3, 3)
    assert [[e.body for e in batch] for batch in customers.handed] == [[b"1", b"2"], [b"3"]]
    async with engine.connect() as conn:
        names = (await conn.execute(select(order_store.customers.c.username))).scalars().all()
    assert sorted(names) == ["c1", "c2", "c3"]


async def test_a_refused_row_leaves_every_table_unchanged(engine: AsyncEngine) -> None:
    customers = Customers(engine)
    await customers.writer([_customer(1)])
    with pytest.raises(IntegrityError):  # the second repeats the first customer's e-mail
        await customers.writer([_customer(2), _customer(1)])
    assert await _count(engine) == (1, 1)
    assert len(customers.handed) == 1  # nothing handed over for the refused batch
    assert await customers.writer([_customer(3)]) == [2]  # the connection goes on working


async def test_values_go_through_the_column_types(engine: AsyncEngine) -> None:
    customers = Customers(engine)
    with pytest.raises(ValueError, match="naive datetime"):
        await customers.writer([_customer(1, at=datetime(2026, 1, 1))])
    assert await _count(engine) == (0, 0)
    at = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
    await customers.writer([_customer(2, at=at)])
    async with engine.connect() as conn:  # read back through SQLAlchemy: the same value
        stored = (await conn.execute(select(order_store.customers.c.created_at))).scalar_one()
        raw = (await conn.exec_driver_sql("SELECT created_at FROM commerce_customers")).scalar()
    assert stored == at
    assert raw == "2026-03-01 12:30:15.250000"  # SQLAlchemy's own text form for SQLite


async def test_rows_are_needed_for_every_table(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="at least one table"):
        ManyInserts(engine)
    with pytest.raises(ValueError, match="rows for 2 tables"):
        Customers(engine).insert(sqlite3.connect(":memory:"), [_customer(1)])


async def test_the_writer_connection_is_set_up_as_the_engines(engine: AsyncEngine) -> None:
    def settings(db: sqlite3.Connection, items: Sequence[str]) -> tuple[list[int], list[Envelope]]:
        return [db.execute(f"PRAGMA {name}").fetchone()[0] for name in items], []

    writer = InOneTransaction(engine, settings, lambda events: None)
    durable = await writer(["synchronous", "foreign_keys", "journal_mode"])
    assert durable == [2, 1, "wal"]  # synchronous=FULL: each commit is fsynced
    async with engine.connect() as conn:
        seen = [(await conn.exec_driver_sql(f"PRAGMA {n}")).scalar() for n in ("synchronous",)]
    assert seen == [2]
    await writer.close()
    assert await writer(["synchronous"]) == [2]  # closed, then opened again on use
    await writer.close()


async def test_a_batch_waits_for_the_engines_write_transaction(engine: AsyncEngine) -> None:
    customers = Customers(engine)
    async with engine.begin() as conn:  # holds SQLite's write lock in this process
        await conn.execute(insert(order_store.customers).values(_customer(1)))
        batch = asyncio.create_task(customers.writer([_customer(2)]))
        await asyncio.sleep(0.05)  # the loop runs on while the batch waits for the lock
        assert not batch.done()
    assert await batch == [2]
    assert await _count(engine) == (2, 1)
    await customers.writer.close()


def test_a_value_shared_by_consecutive_rows_is_processed_once() -> None:
    calls: list[object] = []

    def stamp(value: object) -> str:
        calls.append(value)
        return f"<{value}>"

    shared, other = ["stamp"], ["another"]  # lists: compared by identity, not value
    rows = [(1, shared), (2, shared), (3, other), (4, shared)]
    assert processed_rows([None, stamp], rows) == [
        [1, "<['stamp']>"],
        [2, "<['stamp']>"],
        [3, "<['another']>"],
        [4, "<['stamp']>"],
    ]
    assert calls == [shared, other, shared]  # once per run of the same object
    with pytest.raises(ValueError, match="expected 2 values, got 1"):
        processed_rows([None, stamp], [(1,)])
